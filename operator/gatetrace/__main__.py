"""``python -m gatetrace``: the ``gatetrace`` command (see :mod:`gatetrace.cli`)."""

import sys

from gatetrace import cli

if __name__ == "__main__":
    sys.exit(cli.main())
