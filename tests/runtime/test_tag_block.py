"""Shared tag blocks: a span that shares one holds exactly the tags set_tags would give it,
and keeps ``shared`` only while its first tags are still the block's, unchanged."""

import pytest

from gatetrace.runtime import span, tracer
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


def test_sharing_puts_the_block_first_and_keeps_the_tags_the_span_had() -> None:
    s, _ = _span()
    block = _block()
    s.share(block)
    assert list(s.tags)[:3] == ["http.request.method", "server.port", "tls"]
    assert list(s.tags)[3:] == list(_SAMPLER_TAGS)
    assert s.shared is block
    s.set_tag("url.path", "/x")  # a new key: still shared
    assert s.shared is block
    assert block.tags == dict(_block().tags)  # the span's dict is its own copy
    assert "url.path" not in block.tags


def test_setting_a_block_key_again_ends_the_sharing() -> None:
    s, _ = _span()
    s.share(_block())
    s.set_tag("server.port", 9090)
    assert s.shared is None
    assert s.tags["server.port"] == 9090


def test_adopting_tags_over_a_block_key_ends_the_sharing_and_others_do_not() -> None:
    s, _ = _span()
    block = _block()
    s.share(block)
    s.adopt_tags({"url.path": "/x"})
    assert s.shared is block
    s.adopt_tags({"tls": True})
    assert s.shared is None
    assert s.tags["tls"] is True


def test_a_block_over_a_tag_the_span_has_wins_as_set_tags_would_and_is_not_shared() -> None:
    s, _ = _span()
    s.set_tag("server.port", 1)
    s.share(_block())
    assert s.shared is None
    assert s.tags["server.port"] == 8080
    assert set(_block().tags.items()) <= set(s.tags.items())


def test_a_block_with_a_value_over_the_limit_is_cut_counted_and_not_shared() -> None:
    s, t = _span(span.SpanLimits(max_tag_value_length=4))
    s.share(span.TagBlock([("server.address", "db.example"), ("n", 1)]))
    assert s.shared is None
    assert s.tags["server.address"] == "db.e"
    assert t.metrics.limits.value(("value",)) == 1


def test_a_block_over_the_count_limit_is_dropped_as_counted_and_not_shared() -> None:
    s, t = _span(span.SpanLimits(max_tags=4))  # the two sampler tags are there already
    s.share(_block())
    assert s.shared is None
    assert len(s.tags) == 4
    assert t.metrics.limits.value(("tags",)) == 1


def test_a_second_block_is_set_but_the_first_stays_the_shared_one() -> None:
    s, _ = _span()
    first = _block()
    s.share(first)
    s.share(span.TagBlock([("gatetrace.route", "users")]))
    assert s.shared is first
    assert s.tags["gatetrace.route"] == "users"
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
    assert done.shared is None and "tls" not in done.tags
    fresh, _ = _span()
    fresh.share(span.TagBlock([]))
    assert fresh.shared is None and list(fresh.tags) == list(_SAMPLER_TAGS)


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
