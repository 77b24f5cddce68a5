"""Span: tags, logs, limits (counted), status, finish, and pending (priority) groups."""

import pytest

from gatetrace.runtime import metrics, span, spancontext, tracer
from gatetrace.runtime.sampling import const, priority


class _Collect:
    def __init__(self) -> None:
        self.spans: list[span.Span] = []

    def on_end(self, finished: span.Span) -> None:
        self.spans.append(finished)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _tracer(
    sampled: bool = True, limits: span.SpanLimits | None = None
) -> tuple[tracer.Tracer, _Collect]:
    out = _Collect()
    t = tracer.Tracer(
        span.Resource("svc"), sampler=const.ConstSampler(sampled), processor=out, limits=limits
    )
    return t, out


def _pending_tracer(
    budget_per_second: float = 1, limits: span.SpanLimits | None = None
) -> tuple[tracer.Tracer, _Collect, priority.PriorityBudget]:
    out, clock = _Collect(), _Clock()
    budget = priority.PriorityBudget(budget_per_second, clock=clock)
    sampler = priority.PrioritySampler(const.ConstSampler(False), budget)
    t = tracer.Tracer(span.Resource("svc"), sampler=sampler, processor=out, limits=limits)
    return t, out, budget


# -- tags, logs, limits ---------------------------------------------------------


def test_tags_of_every_type_are_kept_and_overwritten() -> None:
    t, _ = _tracer()
    s = t.start_span("op", parent=None)
    s.set_tags({"s": "x", "b": True, "i": 3, "f": 1.5})
    s.set_tag("i", 4)
    assert {k: v for k, v in s.tags.items() if not k.startswith("gatetrace.sampler.")} == {
        "s": "x",
        "b": True,
        "i": 4,
        "f": 1.5,
    }


def test_tag_count_limit_drops_new_keys_and_counts_them() -> None:
    t, _ = _tracer(limits=span.SpanLimits(max_tags=4))
    s = t.start_span("op", parent=None)  # sampler.type and sampler.param take two slots
    for index in range(5):
        s.set_tag(f"k{index}", index)
    assert set(s.tags) == {"gatetrace.sampler.type", "gatetrace.sampler.param", "k0", "k1"}
    s.set_tag("k0", "replacing an existing key is always allowed")
    assert s.tags["k0"] == "replacing an existing key is always allowed"
    assert t.metrics.limits.value(("tags",)) == 3


def test_long_string_values_are_truncated_and_counted() -> None:
    t, _ = _tracer(limits=span.SpanLimits(max_tag_value_length=5))
    s = t.start_span("op", parent=None)
    s.set_tag("long", "abcdefgh")
    s.set_tag("short", "abc")
    s.set_tag("number", 123456789)
    assert (s.tags["long"], s.tags["short"], s.tags["number"]) == ("abcde", "abc", 123456789)
    s.log({"message": "0123456789"})
    assert s.logs[0].fields == {"message": "01234"}
    assert t.metrics.limits.value(("value",)) == 2


def test_adopted_tags_follow_the_same_limits_as_set_tag() -> None:
    t, _ = _tracer(limits=span.SpanLimits(max_tags=5, max_tag_value_length=5))
    s = t.start_span("op", parent=None)  # sampler.type and sampler.param take two slots
    s.adopt_tags({"long": "abcdefgh", "short": "abc", "n": 123456789})
    assert {k: s.tags[k] for k in ("long", "short", "n")} == {
        "long": "abcde",
        "short": "abc",
        "n": 123456789,
    }
    assert t.metrics.limits.value(("value",)) == 1
    s.adopt_tags({"k1": 1, "k2": 2, "long": "x"})  # one more key fits, replacing is free
    assert set(s.tags) == {
        "gatetrace.sampler.type",
        "gatetrace.sampler.param",
        "long",
        "short",
        "n",
    }
    assert s.tags["long"] == "x"
    assert t.metrics.limits.value(("tags",)) == 2


def test_checked_tags_keep_the_count_limit_and_skip_the_value_pass() -> None:
    """``checked=True``: the caller vouches for the lengths, so values are not looked at;
    the count limit still holds."""
    t, _ = _tracer(limits=span.SpanLimits(max_tags=4, max_tag_value_length=5))
    s = t.start_span("op", parent=None)  # two sampler tags
    s.adopt_tags({"a": "abc", "b": "de"}, checked=True)
    assert {k: s.tags[k] for k in ("a", "b")} == {"a": "abc", "b": "de"}
    s.adopt_tags({"c": "x", "d": "y"}, checked=True)  # over the count: one by one, counted
    assert "c" not in s.tags and "d" not in s.tags
    assert t.metrics.limits.value(("tags",)) == 2
    assert t.metrics.limits.value(("value",)) == 0


def test_finish_counts_each_outcome_once() -> None:
    t, _ = _tracer()
    finished = t.metrics.finished
    s = t.start_span("op", parent=None)
    child = t.start_child(s, "child", span.SpanKind.CLIENT)
    child.finish()
    child.finish()  # idempotent: counted once
    s.finish()
    assert finished.value(("exported",)) == 2
    t2, _ = _tracer(sampled=False)
    t2.start_span("op", parent=None).finish()
    assert t2.metrics.finished.value(("not_sampled",)) == 1


def test_adopting_tags_into_an_empty_span_takes_the_dict_over() -> None:
    t, _ = _tracer()
    s = t.start_span("op", parent=None)
    s.tags.clear()  # as a span whose sampler adds no tags
    mine: dict[str, span.TagValue] = {"a": "1"}
    s.adopt_tags(mine)
    assert s.tags is mine


def test_adopted_tags_are_ignored_when_not_recording_or_finished() -> None:
    t, _ = _tracer(sampled=False)
    unsampled = t.start_span("op", parent=None)
    unsampled.adopt_tags({"a": "1"})
    assert "a" not in unsampled.tags
    t2, _ = _tracer()
    done = t2.start_span("op", parent=None)
    done.finish()
    done.adopt_tags({"a": "1"})
    assert "a" not in done.tags


def test_logs_are_timestamped_and_limited() -> None:
    t, _ = _tracer(limits=span.SpanLimits(max_logs=2, max_log_fields=2))
    s = t.start_span("op", parent=None)
    s.log({"event": "a"}, timestamp_ns=123)
    s.log({"event": "b", "x": 1, "y": 2, "z": 3})
    s.log({"event": "c"})
    assert [log.fields.get("event") for log in s.logs] == ["a", "b"]
    assert s.logs[0].timestamp_ns == 123
    assert s.logs[1].timestamp_ns > 1_600_000_000 * 10**9
    assert s.logs[1].fields == {"event": "b", "x": 1}
    assert t.metrics.limits.value(("log_fields",)) == 1
    assert t.metrics.limits.value(("logs",)) == 1


def test_status_error_and_exceptions() -> None:
    t, _ = _tracer()
    s = t.start_span("op", parent=None)
    assert not s.is_error
    s.record_exception(ValueError("bad input"))
    assert s.is_error
    assert s.status == span.Status(span.StatusCode.ERROR, "ValueError: bad input")
    assert "error" not in s.tags  # a status, not a tag: each reporter writes it its way
    assert s.tags["error.type"] == "ValueError"
    assert s.logs[-1].fields == {
        "event": "exception",
        "exception.type": "ValueError",
        "exception.message": "bad input",
    }


class _DeclinedError(Exception):
    pass


def test_an_exception_event_names_a_non_builtin_class_with_its_module() -> None:
    t, _ = _tracer()
    s = t.start_span("op", parent=None)
    s.record_exception(_DeclinedError("card"))
    expected = f"{__name__}._DeclinedError"
    assert s.tags["error.type"] == expected
    assert s.logs[-1].fields["exception.type"] == expected
    assert s.status.description == "_DeclinedError: card"


def test_not_recording_span_ignores_writes_but_keeps_its_context() -> None:
    t, out = _tracer(sampled=False)
    s = t.start_span("op", parent=None)
    assert not s.recording
    assert not s.sampled
    s.set_tag("k", "v")
    s.log({"event": "x"})
    s.set_status(span.StatusCode.ERROR)
    assert (s.tags, s.logs) == ({}, [])
    assert s.context.is_valid
    assert s.context.sampled is False
    s.finish()
    assert out.spans == []


# -- finish ---------------------------------------------------------------------


def test_finish_is_idempotent_and_freezes_the_span() -> None:
    t, out = _tracer()
    s = t.start_span("op", parent=None, start_ns=1_000)
    s.finish(end_ns=5_000)
    s.finish(end_ns=9_000)
    s.finish()
    assert out.spans == [s]
    assert (s.end_ns, s.duration_ns, s.is_finished) == (5_000, 4_000, True)
    s.set_tag("late", 1)
    s.log({"event": "late"})
    s.set_operation_name("renamed")
    s.set_status(span.StatusCode.ERROR)
    assert "late" not in s.tags
    assert s.logs == []
    assert s.name == "op"
    assert s.status.code is span.StatusCode.UNSET
    assert t.metrics.sampled.value() == 1


def test_duration_comes_from_the_monotonic_clock() -> None:
    t, _ = _tracer()
    s = t.start_span("op", parent=None)
    assert s.duration_ns is None
    s.finish()
    assert s.duration_ns is not None
    assert s.duration_ns >= 0


def test_baggage_set_on_a_span_is_inherited_by_later_children() -> None:
    t, _ = _tracer()
    root = t.start_span("root", parent=None)
    before = t.start_span("before", parent=root)
    root.set_baggage_item("tenant", "acme")
    after = t.start_span("after", parent=root)
    assert dict(root.context.baggage) == {"tenant": "acme"}
    assert dict(after.context.baggage) == {"tenant": "acme"}
    assert dict(before.context.baggage) == {}
    assert root.span_id == root.context.span_id  # the id survives the context replacement


def test_references_are_kept() -> None:
    t, _ = _tracer()
    other = spancontext.SpanContext(1, 2, True)
    ref = span.Reference(span.ReferenceType.FOLLOWS_FROM, other)
    s = t.start_span("op", parent=None, references=[ref])
    assert s.references == (ref,)


# -- pending groups (error/latency priority) ----------------------------------


def test_upgrade_within_budget_exports_the_whole_local_trace() -> None:
    t, out, budget = _pending_tracer()
    root = t.start_span("GET /", parent=None, kind=span.SpanKind.SERVER)
    child = t.start_span("upstream", parent=root, kind=span.SpanKind.CLIENT)
    grandchild = t.start_span("dns", parent=child)
    grandchild.finish()
    child.finish()
    assert out.spans == []  # nothing leaves before the root decides
    assert root.pending
    assert child.upgrade("error")  # any span of the group may ask
    assert root.upgrade("error")  # already sampled: no second charge
    root.finish()
    assert out.spans == [grandchild, child, root]
    assert all(s.sampled for s in out.spans)
    assert not root.pending
    assert root.tags["sampling.priority.reason"] == "error"  # asked by a finished child
    assert budget.granted == 1


def test_no_upgrade_exports_nothing() -> None:
    t, out, _ = _pending_tracer()
    root = t.start_span("GET /", parent=None)
    t.start_span("child", parent=root).finish()
    root.finish()
    late = t.start_span("late child", parent=root)
    late.finish()
    assert out.spans == []
    assert t.metrics.sampled.value() == 0


def test_budget_exhausted_means_not_exported() -> None:
    t, out, budget = _pending_tracer(budget_per_second=1)
    first = t.start_span("a", parent=None)
    assert first.upgrade("slow")
    first.finish()
    second = t.start_span("b", parent=None)
    t.start_span("b-child", parent=second).finish()
    assert not second.upgrade("slow")
    second.finish()
    assert [s.name for s in out.spans] == ["a"]
    assert (budget.granted, budget.denied) == (1, 1)


def test_upgrade_after_the_root_finished_is_refused() -> None:
    t, out, _ = _pending_tracer()
    root = t.start_span("a", parent=None)
    child = t.start_span("child", parent=root)
    root.finish()
    assert not child.upgrade("error")
    child.finish()
    assert out.spans == []


def test_children_finishing_after_an_upgraded_root_are_exported() -> None:
    t, out, _ = _pending_tracer()
    root = t.start_span("a", parent=None)
    child = t.start_span("async work", parent=root)
    assert root.upgrade("error")
    root.finish()
    child.finish()
    assert out.spans == [root, child]
    assert child.sampled


def test_pending_buffer_is_bounded_and_counted() -> None:
    t, out, _ = _pending_tracer(limits=span.SpanLimits(max_pending_spans=2))
    root = t.start_span("a", parent=None)
    for index in range(4):
        t.start_span(f"c{index}", parent=root).finish()
    assert root.upgrade("error")
    root.finish()
    assert [s.name for s in out.spans] == ["c0", "c1", "a"]
    assert t.metrics.limits.value(("pending_spans",)) == 2


def test_upgrade_of_plain_spans_reports_their_sampling() -> None:
    sampled_tracer, _ = _tracer(sampled=True)
    dropped_tracer, _ = _tracer(sampled=False)
    assert sampled_tracer.start_span("a", parent=None).upgrade("error")
    assert not dropped_tracer.start_span("a", parent=None).upgrade("error")


def test_a_group_without_budget_always_upgrades() -> None:
    out = _Collect()
    group_exports: list[span.Span] = []
    group = span.PendingGroup(None, group_exports.append)
    ctx = spancontext.SpanContext(1, 2, False)
    root = span.Span(
        ctx,
        "root",
        kind=span.SpanKind.SERVER,
        parent_id=None,
        resource=span.Resource("svc"),
        references=(),
        sampled=False,
        recording=True,
        start_ns=0,
        limits=span.SpanLimits(),
        metrics=tracer.TracerMetrics(),
        end_hook=out.on_end,
        group=group,
        is_local_root=True,
    )
    assert root.upgrade("slow")
    root.finish(10)
    assert group_exports == [root]
    assert out.spans == []


@pytest.mark.parametrize("kind", list(span.SpanKind))
def test_every_kind_can_be_started(kind: span.SpanKind) -> None:
    t, out = _tracer()
    t.start_span("op", parent=None, kind=kind).finish()
    assert out.spans[0].kind is kind


def test_finish_outcomes_of_pending_groups_are_counted() -> None:
    t, _, _ = _pending_tracer(budget_per_second=1)
    kept = t.start_span("kept", parent=None)
    t.start_span("kept-child", parent=kept).finish()
    kept.upgrade("error")
    kept.finish()
    lost = t.start_span("lost", parent=None)
    late = t.start_span("late-child", parent=lost)
    lost.finish()
    late.finish()
    finished = t.metrics.finished
    assert finished.value(("pending",)) == 1
    assert finished.value(("exported",)) == 1
    assert finished.value(("discarded",)) == 2
    assert t.metrics.sampled.value() == 2  # the buffered child went out with its root


def test_an_upgrade_tells_the_budget_its_reason() -> None:
    registry = metrics.Registry()
    budget = priority.PriorityBudget(1, clock=_Clock(), registry=registry)
    t = tracer.Tracer(
        span.Resource("svc"),
        sampler=priority.PrioritySampler(const.ConstSampler(False), budget),
        processor=_Collect(),
    )
    first, second = t.start_span("a", parent=None), t.start_span("b", parent=None)
    assert first.upgrade("slow")
    assert not second.upgrade("error")  # the budget of 1/s is spent
    upgrades = registry.counter("gatetrace_priority_upgrades", "", ["reason"])
    exhausted = registry.counter("gatetrace_priority_budget_exhausted", "", ["reason"])
    assert (dict(upgrades.items()), dict(exhausted.items())) == ({("slow",): 1}, {("error",): 1})
