"""Helpers of the Jaeger reporter tests: spans, a real UDP agent socket, independent decoders.

Decoding never uses gatetrace code: the Apache ``thrift`` library's own
compact/binary protocol classes read what we send into the Jaeger types
generated for ``jaeger-client`` 4.8.0. Those types predate ``Batch.seqNo``
and ``Batch.stats``, so :func:`_batch_extras` reads those two fields with
the same thrift protocol primitives (field by field, by id and type).
"""

import asyncio
import socket
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import reportertools
from thrift.protocol import TBinaryProtocol, TCompactProtocol, TProtocol
from thrift.Thrift import TMessageType, TType
from thrift.transport import TTransport

from gatetrace.runtime import span

with warnings.catch_warnings():
    # jaeger-client 4.8.0 is no longer maintained; importing its generated
    # types may warn on newer Pythons/tornado. Only this import is excused.
    warnings.simplefilter("ignore", DeprecationWarning)
    from jaeger_client.thrift_gen.agent import Agent
    from jaeger_client.thrift_gen.jaeger import ttypes as jaeger_types

__all__ = [
    "RESOURCE",
    "Decoded",
    "UdpAgent",
    "decode_binary_batch",
    "decode_emit_batch",
    "make_span",
    "tag_dict",
    "u64",
]

RESOURCE = span.Resource(
    "api-gateway", (("hostname", "gw-7c9"), ("ip", "10.1.2.3"), ("replica", 3), ("ratio", 0.5))
)


def make_span(
    name: str = "GET /api/users/{id}",
    *,
    trace_id: int = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210,
    span_id: int = 0x1111_2222_3333_4444,
    parent_id: int | None = None,
    kind: span.SpanKind = span.SpanKind.SERVER,
    tags: Mapping[Any, Any] | None = None,
    logs: list[span.LogRecord] | None = None,
    references: tuple[span.Reference, ...] = (),
    debug: bool = False,
    status: span.Status | None = None,
    start_ns: int = 1_700_000_000_123_456_789,
    duration_ns: int = 12_345_678,
    resource: span.Resource = RESOURCE,
) -> span.Span:
    """A finished, sampled span holding exactly what is given (tags unchecked)."""
    return reportertools.finished_span(
        name,
        kind=kind,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        tags=tags,
        logs=logs,
        references=references,
        debug=debug,
        random_flag=False,
        status=status,
        start_ns=start_ns,
        duration_ns=duration_ns,
        resource=resource,
    )


def u64(signed: int) -> int:
    """A decoded signed i64 back to the unsigned id."""
    return signed & 0xFFFF_FFFF_FFFF_FFFF


@dataclass
class Decoded:
    batch: Any
    """jaeger-client's ``ttypes.Batch``."""
    seq_no: int | None
    stats: tuple[int, int, int] | None


def _batch_extras(protocol: TProtocol.TProtocolBase) -> tuple[int | None, Any]:
    """Read a Batch struct, keeping only field 3 (i64 seqNo) and 4 (ClientStats)."""
    seq_no: int | None = None
    stats: tuple[int, int, int] | None = None
    protocol.readStructBegin()
    while True:
        _, ftype, fid = protocol.readFieldBegin()
        if ftype == TType.STOP:
            break
        if fid == 3 and ftype == TType.I64:
            seq_no = protocol.readI64()
        elif fid == 4 and ftype == TType.STRUCT:
            values: dict[int, int] = {}
            protocol.readStructBegin()
            while True:
                _, stype, sid = protocol.readFieldBegin()
                if stype == TType.STOP:
                    break
                assert stype == TType.I64
                values[sid] = protocol.readI64()
                protocol.readFieldEnd()
            protocol.readStructEnd()
            stats = (values[1], values[2], values[3])
        else:
            protocol.skip(ftype)
        protocol.readFieldEnd()
    protocol.readStructEnd()
    return seq_no, stats


def decode_emit_batch(datagram: bytes) -> Decoded:
    """An ``Agent.emitBatch`` oneway message in the compact protocol."""
    protocol = TCompactProtocol.TCompactProtocol(TTransport.TMemoryBuffer(datagram))
    name, mtype, _ = protocol.readMessageBegin()
    assert (name, mtype) == ("emitBatch", TMessageType.ONEWAY)
    args = Agent.emitBatch_args()
    args.read(protocol)
    protocol.readMessageEnd()
    buffer = TTransport.TMemoryBuffer(datagram)
    protocol = TCompactProtocol.TCompactProtocol(buffer)
    protocol.readMessageBegin()
    protocol.readStructBegin()
    _, ftype, fid = protocol.readFieldBegin()
    assert (ftype, fid) == (TType.STRUCT, 1)
    seq_no, stats = _batch_extras(protocol)
    protocol.readFieldEnd()
    _, ftype, _ = protocol.readFieldBegin()
    assert ftype == TType.STOP
    assert buffer._buffer.tell() == len(datagram), "trailing bytes after the message"
    return Decoded(args.batch, seq_no, stats)


def decode_binary_batch(body: bytes) -> Decoded:
    """A bare ``Batch`` struct in the binary protocol (the collector's HTTP body)."""
    batch = jaeger_types.Batch()
    batch.read(TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(body)))
    buffer = TTransport.TMemoryBuffer(body)
    seq_no, stats = _batch_extras(TBinaryProtocol.TBinaryProtocol(buffer))
    assert buffer._buffer.tell() == len(body), "trailing bytes after the batch"
    return Decoded(batch, seq_no, stats)


def tag_dict(tags: list[Any] | None) -> dict[str, Any]:
    """Decoded Jaeger tags as {key: (vType name, value)}."""
    out: dict[str, Any] = {}
    names = jaeger_types.TagType._VALUES_TO_NAMES
    for tag in tags or []:
        value = {0: tag.vStr, 1: tag.vDouble, 2: tag.vBool, 3: tag.vLong, 4: tag.vBinary}
        out[tag.key] = (names[tag.vType], value[tag.vType])
    return out


class UdpAgent:
    """A UDP socket on 127.0.0.1 standing in for the Jaeger agent: it only receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # room for a whole split batch: the test reads after the export returns
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    async def receive(self, timeout: float = 2.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sock, 70_000), timeout)

    def drain(self) -> list[bytes]:
        """Every datagram already delivered, without waiting."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(70_000))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.sock.close()
