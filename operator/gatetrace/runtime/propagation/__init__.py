"""Propagation formats, one module per wire format (see :mod:`.base`)."""
