"""A span's status starts UNSET (one shared value) and changes only on that span."""

from gatetrace.runtime import span, tracer


def test_status_starts_unset_and_set_status_touches_only_its_span() -> None:
    t = tracer.Tracer(span.Resource("svc"))
    first, second = t.start_span("first"), t.start_span("second")
    assert first.status == span.Status(span.StatusCode.UNSET, "") == second.status
    first.set_status(span.StatusCode.ERROR, "boom")
    assert first.status == span.Status(span.StatusCode.ERROR, "boom")
    assert second.status == span.Status()
    assert not second.is_error and first.is_error
