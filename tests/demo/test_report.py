"""The demo report's rendering from Jaeger-shaped JSON and Prometheus text."""

from gatetrace.demo import report


def _span(sid: str, parent: str | None, op: str, start: int, dur: int, pid: str, **tags: object):
    return {
        "traceID": "t",
        "spanID": sid,
        "operationName": op,
        "references": [{"refType": "CHILD_OF", "traceID": "t", "spanID": parent}] if parent else [],
        "startTime": start,
        "duration": dur,
        "processID": pid,
        "tags": [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
    }


TRACE = {
    "traceID": "t",
    "spans": [
        _span("a", None, "GET /x", 0, 10_000, "p1", **{"sampling.priority.reason": "error"}),
        _span("b", "a", "GET /y", 2_000, 5_000, "p2", error=True),
    ],
    "processes": {"p1": {"serviceName": "gw"}, "p2": {"serviceName": "svc"}},
}


def test_waterfall_indents_children_and_scales_bars() -> None:
    lines = report.waterfall(TRACE)
    assert "kept by priority: error" in lines[0]
    assert lines[1].lstrip().startswith("gw: GET /x")
    assert lines[2].lstrip().startswith("svc: GET /y")
    assert lines[2].index("svc") > lines[1].index("gw")
    bar = lines[2].split("|")[1]
    assert bar.startswith(" " * 8)  # starts 20% in: 8 of 40 columns
    assert bar.count("!") == 20  # half the trace, drawn as an error


def test_dependencies_count_calls_and_errors() -> None:
    assert report.dependency_lines([TRACE]) == ["  gw -> svc      1 calls     1 errors"]


def test_parse_metrics() -> None:
    text = '# HELP x y\n# TYPE x counter\nx_total{a="1",b="q\\"z"} 3\nplain 2.5\n'
    samples = report.parse_metrics(text)
    assert samples[0].name == "x_total"
    assert samples[0].labels == {"a": "1", "b": 'q\\"z'}
    assert samples[0].value == 3
    assert samples[1].value == 2.5
