"""The ``log`` reporter: one JSON line per finished span, for debugging.

Each line is the span's Zipkin v2 JSON object (the same mapping as the
``zipkin`` reporter: hex ids, µs times, string tags, annotations), written
to a text stream (stderr by default) or, when given, a :mod:`logging`
logger at INFO.
"""

import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from gatetrace.runtime import span as _span
from gatetrace.runtime.reporting import export, zipkin_encoding

__all__ = ["LogExporter"]


class LogExporter:
    """Writes each span as one JSON line to ``stream`` or ``logger``."""

    name = "log"

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        logger: logging.Logger | None = None,
        max_value_length: int = 4096,
    ) -> None:
        self.stream = stream
        self.logger = logger
        self.encoder = zipkin_encoding.ZipkinEncoder(max_value_length=max_value_length)

    async def export(self, spans: Sequence[_span.Span], timeout: float) -> export.ExportOutcome:
        lines: list[str] = []
        truncated: dict[str, int] = {}
        try:
            for span in spans:
                body, cut = self.encoder.encode([span])
                for what, amount in cut.items():
                    truncated[what] = truncated.get(what, 0) + amount
                lines.append(body[1:-1].decode())  # strip the array brackets
            if self.logger is not None:
                for line in lines:
                    self.logger.info("%s", line)
            else:
                stream = self.stream if self.stream is not None else sys.stderr
                stream.write("".join(f"{line}\n" for line in lines))
                stream.flush()
        except (OSError, ValueError) as error:
            return export.ExportOutcome(
                export.ExportResult.FAILURE, type(error).__name__, truncated=truncated
            )
        return export.ExportOutcome.success(truncated=truncated)

    async def close(self) -> None:
        return None
