"""Batches are encoded a slice at a time with the event loop running in between.

A batch encoded in slices must give exactly the bytes and truncation counts of
one :meth:`encode` call, whatever the slice size and wherever the uncommon spans
(logs, errors, values to cut, non-str keys) fall; and the loop must get a turn
between two slices, so requests are not held for the whole batch.
"""

import asyncio
import random
from collections.abc import Callable, Sequence

import pytest
from reportertools import RESOURCE, finished_span, gateway_spans

from gatetrace.runtime import span
from gatetrace.runtime.reporting import export, otlp_encoding, zipkin_encoding

_OTHER = span.Resource("other", (("ip", "::1"),))


def _mixed_spans(count: int, seed: int = 7) -> list[span.Span]:
    """Common spans with every ~5th one taking a slow path, over two resources."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        tags: dict[object, span.TagValue] = {"http.request.method": "GET", "n": i}
        logs: list[span.LogRecord] = []
        status = None
        shape = rng.randrange(5)
        if shape == 0:
            tags["long"] = "x" * 80  # cut to max_value_length
        elif shape == 1:
            logs.append(span.LogRecord(1_700_000_000_200_000_000, {"event": "retry"}))
        elif shape == 2:
            status = span.Status(span.StatusCode.ERROR, "upstream: timeout")
        elif shape == 3:
            tags[("tuple", "key")] = 1
        out.append(
            finished_span(
                f"op-{i % 3}",
                tags=tags,  # type: ignore[arg-type]
                logs=logs,
                status=status,
                resource=RESOURCE if rng.random() < 0.7 else _OTHER,
            )
        )
    return out


Encoder = zipkin_encoding.ZipkinEncoder | otlp_encoding.OtlpEncoder
_ENCODERS: dict[str, Callable[[], Encoder]] = {
    "zipkin": lambda: zipkin_encoding.ZipkinEncoder(max_value_length=50),
    "otlp": lambda: otlp_encoding.OtlpEncoder(max_value_length=50),
}


@pytest.mark.parametrize("kind", sorted(_ENCODERS))
@pytest.mark.parametrize("slice_size", [1, 7, 64, 500])
async def test_slices_give_the_bytes_of_one_encode(kind: str, slice_size: int) -> None:
    spans = _mixed_spans(150)
    whole, whole_cut = _ENCODERS[kind]().encode(spans)
    sliced, sliced_cut = await export.encode_in_slices(_ENCODERS[kind]().begin(), spans, slice_size)
    assert sliced == whole
    assert sliced_cut == whole_cut
    assert whole_cut.get("value_length", 0) > 0  # the slow shapes were really there


@pytest.mark.parametrize("kind", sorted(_ENCODERS))
async def test_empty_batch(kind: str) -> None:
    encoder = _ENCODERS[kind]()
    assert await export.encode_in_slices(encoder.begin(), []) == encoder.encode([])


class _Watched:
    """A real batch encoding that notes how often the loop ran before each slice."""

    def __init__(self, inner: export.BatchEncoding, ticks: list[int]) -> None:
        self.inner = inner
        self.ticks = ticks
        self.seen: list[int] = []

    def add(self, spans: Sequence[span.Span]) -> None:
        self.seen.append(self.ticks[0])
        self.inner.add(spans)

    def finish(self) -> tuple[bytes, dict[str, int]]:
        return self.inner.finish()


@pytest.mark.parametrize("kind", sorted(_ENCODERS))
async def test_the_loop_runs_between_slices(kind: str) -> None:
    ticks = [0]
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks[0] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    spans = gateway_spans(300)
    watched = _Watched(_ENCODERS[kind]().begin(), ticks)
    body, _ = await export.encode_in_slices(watched, spans, 64)
    stop.set()
    await task
    assert len(watched.seen) == 5  # 64 * 4 + 44
    assert all(b > a for a, b in zip(watched.seen, watched.seen[1:], strict=False))
    assert body == _ENCODERS[kind]().encode(spans)[0]


async def test_a_batch_within_one_slice_never_yields() -> None:
    ticks = [0]

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks[0]
    await export.encode_in_slices(zipkin_encoding.ZipkinEncoder().begin(), gateway_spans(64), 64)
    assert ticks[0] == before  # no turn of the loop for a batch that fits one slice
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_map_in_slices_maps_in_order_and_yields_between_slices() -> None:
    ticks = [0]
    seen: list[int] = []

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    def square(x: int) -> int:
        seen.append(ticks[0])
        return x * x

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    assert await export.map_in_slices(square, range(10), 4) == [x * x for x in range(10)]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # one tick count per slice of 4 (4, 4, 2), rising from one slice to the next
    assert seen[0] == seen[3] < seen[4] == seen[7] < seen[8] == seen[9]
