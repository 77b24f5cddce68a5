"""Shared tag blocks: a span that shares one holds exactly the tags set_tags would give it,
and keeps ``shared`` only while its first tags are still the block's, unchanged."""

import pytest

from gatetrace.runtime import span, spancontext, tracer
from gatetrace.runtime.sampling import base as sampling_base
from gatetrace.runtime.sampling import const

_SAMPLER_TAGS = ("gatetrace.sampler.type", "gatetrace.sampler.param")


def _span(
    limits: span.SpanLimits | None = None, sampled: bool = True
) -> tuple[span.Span, tracer.Tracer]:
    t = tracer.Tracer(span.Resource("svc"), sampler=const.ConstSampler(sampled), limits=limits)
    return t.start_span("op", parent=None), t


def _block() -> span.TagBlock:
    return span.TagBlock([("http.request.method", "GET"), ("server.port", 8080), ("tls", False)])


def test_a_block_keeps_order_and_the_later_of_a_repeated_key() -> None:
    block = span.TagBlock([("a", "1"), ("b", 2), ("a", "3")])
    assert block.items == (("a", "3"), ("b", 2))
    assert block.keys == frozenset({"a", "b"})
    assert block.longest == 1
    assert len(block) == 2


@pytest.mark.parametrize(
    ("items", "named"),
    [([(1, "x")], "1"), ([("k", [1])], "'k'"), ([("k", None)], "'k'"), ([("k", b"x")], "'k'")],
)
def test_a_block_refuses_what_every_encoder_cannot_write_and_names_the_tag(
    items: list[tuple[object, object]], named: str
) -> None:
    with pytest.raises(TypeError, match=f"tag {named}"):
        span.TagBlock(items)  # type: ignore[arg-type]


def _bare(limits: span.SpanLimits | None = None) -> tuple[span.Span, tracer.TracerMetrics]:
    """A recording span with no tags and no block (built as a reporter test would)."""
    counts = tracer.TracerMetrics()
    ctx = spancontext.SpanContext(1, 2, True)
    made = span.Span(
        ctx,
        "op",
        span.SpanKind.SERVER,
        None,
        span.Resource("svc"),
        (),
        True,
        True,
        1,
        limits or span.SpanLimits(),
        counts,
        None,
    )
    return made, counts


def test_a_tracer_span_starts_sharing_the_block_of_its_sampling_decision() -> None:
    first, t = _span()
    second = t.start_span("op", parent=None)
    assert first.shared is not None and first.shared is second.shared
    assert first.shared.items == (
        ("gatetrace.sampler.type", "const"),
        ("gatetrace.sampler.param", True),
    )
    assert first.tags == dict(first.shared.items)


def test_a_block_after_the_sampler_block_is_shared_as_one_joined_block() -> None:
    first, t = _span()
    second = t.start_span("op", parent=None)
    block = _block()
    first.share(block)
    second.share(block)
    assert first.shared is not None and first.shared is second.shared  # joined once
    assert first.shared.items == tuple(first.tags.items())
    assert list(first.tags) == [*_SAMPLER_TAGS, "http.request.method", "server.port", "tls"]
    first.set_tag("url.path", "/x")  # a new key: still shared
    assert first.shared is second.shared


def test_sharing_puts_the_block_first_and_keeps_the_tags_the_span_had() -> None:
    s, _ = _bare()
    s.set_tag("url.path", "/x")
    block = _block()
    s.share(block)
    assert list(s.tags) == ["http.request.method", "server.port", "tls", "url.path"]
    assert s.shared is block
    s.set_tag("user_agent.original", "t/1")  # a new key: still shared
    assert s.shared is block
    assert block.tags == dict(_block().tags)  # the span's dict is its own copy
    assert "url.path" not in block.tags


def test_a_block_after_other_tags_than_a_shared_block_is_set_not_shared() -> None:
    s, _ = _span()
    sampler_block = s.shared
    s.set_tag("url.path", "/x")
    s.share(_block())
    assert s.shared is sampler_block  # still the start of the tags, unchanged
    assert set(_block().tags.items()) <= set(s.tags.items())


def test_setting_a_block_key_again_ends_the_sharing() -> None:
    s, _ = _span()
    s.share(_block())
    s.set_tag("server.port", 9090)
    assert s.shared is None
    assert s.tags["server.port"] == 9090
    other, _ = _span()
    other.set_tag("gatetrace.sampler.param", False)  # the sampler block's own key
    assert other.shared is None


def test_adopting_tags_over_a_block_key_ends_the_sharing_and_others_do_not() -> None:
    s, _ = _bare()
    block = _block()
    s.share(block)
    s.adopt_tags({"url.path": "/x"})
    assert s.shared is block
    s.adopt_tags({"tls": True})
    assert s.shared is None
    assert s.tags["tls"] is True


def test_a_block_over_a_tag_the_span_has_wins_as_set_tags_would_and_is_not_shared() -> None:
    s, _ = _bare()
    s.set_tag("server.port", 1)
    s.share(_block())
    assert s.shared is None
    assert s.tags["server.port"] == 8080
    assert set(_block().tags.items()) <= set(s.tags.items())
    joined, _ = _span()
    joined.share(span.TagBlock([("gatetrace.sampler.type", "mine")]))  # over the sampler's
    assert joined.shared is None and joined.tags["gatetrace.sampler.type"] == "mine"


def test_a_block_with_a_value_over_the_limit_is_cut_counted_and_not_shared() -> None:
    s, counts = _bare(span.SpanLimits(max_tag_value_length=4))
    s.share(span.TagBlock([("server.address", "db.example"), ("n", 1)]))
    assert s.shared is None
    assert s.tags["server.address"] == "db.e"
    assert counts.limits.value(("value",)) == 1


def test_a_block_over_the_count_limit_is_dropped_as_counted_and_not_shared() -> None:
    s, t = _span(span.SpanLimits(max_tags=4))  # the two sampler tags are there already
    sampler_block = s.shared
    s.share(_block())
    assert s.shared is sampler_block
    assert len(s.tags) == 4
    assert t.metrics.limits.value(("tags",)) == 1


def test_a_second_block_is_set_but_the_first_stays_the_shared_one() -> None:
    s, _ = _bare()
    first = _block()
    s.share(first)
    s.share(span.TagBlock([("gatetrace.route", "users")]))
    assert s.shared is not None and s.shared.items == (
        *first.items,
        ("gatetrace.route", "users"),
    )  # nothing else yet: the two are joined
    joined = s.shared
    s.set_tag("url.path", "/x")
    s.share(span.TagBlock([("http.route", "/users")]))  # after a tag of its own: set
    assert s.shared is joined
    assert s.tags["http.route"] == "/users"
    s.share(span.TagBlock([("tls", True)]))  # over the first block's key
    assert s.shared is None
    assert s.tags["tls"] is True


def test_unrecorded_finished_and_empty_cases_change_nothing() -> None:
    dropped, _ = _span(sampled=False)
    dropped.share(_block())
    assert dropped.tags == {} and dropped.shared is None
    done, _ = _span()
    done.finish()
    done.share(_block())
    assert "tls" not in done.tags
    fresh, _ = _span()
    sampler_block = fresh.shared
    fresh.share(span.TagBlock([]))
    assert fresh.shared is sampler_block and list(fresh.tags) == list(_SAMPLER_TAGS)


def test_joined_blocks_are_cached_and_bounded() -> None:
    first = _block()
    others = [span.TagBlock([("n", i)]) for i in range(100)]
    assert first.followed_by(others[0]) is first.followed_by(others[0])
    assert first.followed_by(span.TagBlock([("tls", True)])) is None  # a key in common
    for other in others:
        first.followed_by(other)
    assert len(first._followed) <= 512


def test_a_sampler_param_a_block_does_not_take_is_set_one_by_one() -> None:
    class _Odd(const.ConstSampler):
        def should_sample(
            self, params: sampling_base.SamplingParams
        ) -> sampling_base.SamplingResult:
            return super().should_sample(params)._replace(sampler_param=[1])  # type: ignore[arg-type]

    t = tracer.Tracer(span.Resource("svc"), sampler=_Odd(True))
    s = t.start_span("op", parent=None)
    assert s.shared is None
    assert s.tags["gatetrace.sampler.param"] == [1]


def test_a_zero_float_sampler_param_keeps_its_sign() -> None:
    """``0.0 == -0.0``: a cached block of one must not stand for the other."""

    class _Fixed(const.ConstSampler):
        param = 0.0

        def should_sample(
            self, params: sampling_base.SamplingParams
        ) -> sampling_base.SamplingResult:
            return super().should_sample(params)._replace(sampler_param=self.param)

    sampler = _Fixed(True)
    t = tracer.Tracer(span.Resource("svc"), sampler=sampler)
    recorded = []
    for param in (0.0, -0.0, 0.0, float("nan"), 0.25, 0.25):
        sampler.param = param
        recorded.append(t.start_span("op", parent=None).tags["gatetrace.sampler.param"])
    assert [repr(p) for p in recorded] == ["0.0", "-0.0", "0.0", "nan", "0.25", "0.25"]


def test_a_restored_span_shares_nothing() -> None:
    s, _ = _span()
    s.share(_block())
    s.finish()
    copy = span.Span.restored(
        s.context,
        s.name,
        s.kind,
        s.parent_id,
        s.resource,
        s.start_ns,
        s.end_ns or 0,
        dict(s.tags),
        [],
        s.status,
        (),
        True,
    )
    assert copy.shared is None
