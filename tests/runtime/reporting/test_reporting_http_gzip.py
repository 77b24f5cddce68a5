"""The transport's gzip: one valid gzip member, small bodies on the loop, large in a thread."""

import gzip
import io

import pytest
from reportertools import Collector

from gatetrace.runtime.reporting import export, http


@pytest.mark.parametrize("size", [0, 1, 1000, 32 * 1024 - 1, 32 * 1024, 300_000])
async def test_compressed_body_is_one_gzip_member_of_the_same_bytes(size: int) -> None:
    transport = http.HttpTransport("http://127.0.0.1:9/x", content_type="a/b", gzip=True)
    body = (b'{"traceId":"0af7651916cd43dd8448eb211c80319c","tags":{"k":"\xc3\xbc"}},' * 5000)[
        :size
    ]
    compressed = await transport._compress(body)
    assert compressed[:3] == b"\x1f\x8b\x08"  # gzip magic, deflate
    assert gzip.decompress(compressed) == body
    with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as member:
        assert member.read() == body
    await transport.close()


async def test_zipkin_sized_batch_arrives_decoded(collector: Collector) -> None:
    transport = http.HttpTransport(
        f"{collector.base}/api/v2/spans", content_type="application/json", gzip=True, gzip_level=1
    )
    body = b"[" + b",".join(b'{"id":"%016x","name":"GET"}' % i for i in range(5000)) + b"]"
    try:
        response = await transport.post(body, timeout=5)
    finally:
        await transport.close()
    assert response.outcome.result is export.ExportResult.SUCCESS
    assert collector.received[0].headers["Content-Encoding"] == "gzip"
    assert collector.received[0].body == body
    assert collector.received[0].wire_size < len(body) // 4
