"""A real OTLP/gRPC collector in the test's event loop: opentelemetry-proto's generated
``TraceService`` served by ``grpc.aio``, recording what it receives; and a TCP relay
that counts the bytes a client sends (to see gzip on the wire).

Imported as a plain module, like :mod:`reportertools`.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pb2_grpc

Request = pb2.ExportTraceServiceRequest
Response = pb2.ExportTraceServiceResponse
Answer = Callable[[Any, int], Awaitable[Response | None]]
"""``answer(context, attempt)``: a response, None for the default, or ``context.abort``."""


@dataclass
class GrpcCollector(pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """Records every ``Export`` request and its metadata; ``answer`` decides the reply."""

    answer: Answer | None = None
    requests: list[Any] = field(default_factory=list)
    metadata: list[dict[str, str | bytes]] = field(default_factory=list)
    attempts: int = 0
    port: int = 0

    async def Export(self, request: Any, context: Any) -> Any:
        self.attempts += 1
        response = None
        if self.answer is not None:
            response = await self.answer(context, self.attempts)
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        return response if response is not None else Response()

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@contextlib.asynccontextmanager
async def serving(
    collector: GrpcCollector, credentials: Any = None
) -> AsyncIterator[GrpcCollector]:
    """Serve ``collector`` on a free 127.0.0.1 port (TLS with ``credentials``)."""
    server = grpc.aio.server()
    pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    if credentials is None:
        collector.port = server.add_insecure_port("127.0.0.1:0")
    else:
        collector.port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield collector
    finally:
        await server.stop(0)


@dataclass
class ByteCounter:
    """A TCP relay on 127.0.0.1 in front of ``target_port``; counts client->server bytes."""

    target_port: int
    sent: int = 0
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                if count:
                    self.sent += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        for task in (
            asyncio.create_task(self._pipe(reader, upstream_writer, True)),
            asyncio.create_task(self._pipe(upstream_reader, writer, False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["ByteCounter"]:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()
