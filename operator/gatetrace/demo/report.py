"""The demo's terminal report, rendered from what the gateway's admin port
serves (Jaeger-compatible query API and /metrics): trace waterfalls, the
service dependency graph, latency percentiles per route, sampler decisions
and per-reporter export counts."""

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Sample",
    "dependency_lines",
    "parse_metrics",
    "percentile_lines",
    "retro_services",
    "trace_is_error",
    "waterfall",
]

BAR_WIDTH = 40

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Prometheus text exposition samples (comments skipped)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        parsed = dict(_LABEL.findall(labels or ""))
        try:
            samples.append(Sample(name, parsed, float(value)))
        except ValueError:
            continue
    return samples


def _tags(span: Mapping[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def _service(trace: Mapping[str, Any], span: Mapping[str, Any]) -> str:
    process = trace.get("processes", {}).get(span.get("processID", ""), {})
    return str(process.get("serviceName", "?"))


def _parent(span: Mapping[str, Any]) -> str | None:
    for ref in span.get("references", []):
        if ref.get("refType") == "CHILD_OF":
            return str(ref["spanID"])
    return None


def _is_error(span: Mapping[str, Any]) -> bool:
    tags = _tags(span)
    return tags.get("error") in (True, "true") or str(tags.get("otel.status_code", "")) == "ERROR"


def trace_is_error(trace: Mapping[str, Any]) -> bool:
    return any(_is_error(s) for s in trace.get("spans", []))


def retro_services(trace: Mapping[str, Any]) -> list[str]:
    """The services whose spans of ``trace`` were kept from their retro buffers (tagged
    ``gatetrace.retro``), in order of appearance."""
    found: list[str] = []
    for span in trace.get("spans", []):
        if _tags(span).get("gatetrace.retro") is True:
            service = _service(trace, span)
            if service not in found:
                found.append(service)
    return found


def _fmt_ms(us: float) -> str:
    ms = us / 1000
    return f"{ms:8.1f}ms" if ms < 10_000 else f"{ms / 1000:7.2f}s "


def waterfall(trace: Mapping[str, Any], *, title: str = "") -> list[str]:
    """One trace as indented lines with bars drawn to scale."""
    spans = list(trace.get("spans", []))
    if not spans:
        return [f"{title}: (no spans)"]
    by_id = {s["spanID"]: s for s in spans}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for span in spans:
        parent = _parent(span)
        key = parent if parent in by_id else None
        children.setdefault(key, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s["startTime"])
    start = min(s["startTime"] for s in spans)
    end = max(s["startTime"] + s["duration"] for s in spans)
    total = max(end - start, 1)
    roots = children.get(None, [])
    root = roots[0] if roots else spans[0]
    kept = _tags(root).get("sampling.priority.reason")
    head = f"trace {trace.get('traceID', '?')}  {len(spans)} spans  {_fmt_ms(total).strip()}"
    if kept:
        head += f"  (kept by priority: {kept})"
    lines = [f"{title}  {head}" if title else head]
    width = max((len(_service(trace, s)) + len(s["operationName"]) for s in spans), default=20)
    width = min(width + 8, 64)

    def walk(span: Mapping[str, Any], depth: int) -> None:
        label = f"{'  ' * depth}{_service(trace, span)}: {span['operationName']}"
        offset = int((span["startTime"] - start) / total * BAR_WIDTH)
        length = max(1, round(span["duration"] / total * BAR_WIDTH))
        offset = min(offset, BAR_WIDTH - 1)
        length = min(length, BAR_WIDTH - offset)
        bar = " " * offset + ("!" if _is_error(span) else "=") * length
        lines.append(f"  {label[:width]:<{width}} |{bar:<{BAR_WIDTH}}| {_fmt_ms(span['duration'])}")
        for child in children.get(span["spanID"], []):
            walk(child, depth + 1)

    for top in roots:
        walk(top, 0)
    return lines


def dependency_lines(traces: Iterable[Mapping[str, Any]]) -> list[str]:
    """Service -> service edges with call and error counts, from parent/child spans."""
    calls: Counter[tuple[str, str]] = Counter()
    errors: Counter[tuple[str, str]] = Counter()
    for trace in traces:
        by_id = {s["spanID"]: s for s in trace.get("spans", [])}
        for span in trace.get("spans", []):
            parent_id = _parent(span)
            parent = by_id.get(parent_id) if parent_id else None
            if parent is None:
                continue
            edge = (_service(trace, parent), _service(trace, span))
            if edge[0] == edge[1]:
                continue
            calls[edge] += 1
            if _is_error(span):
                errors[edge] += 1
    if not calls:
        return ["  (no cross-service calls recorded)"]
    width = max(len(f"{a} -> {b}") for a, b in calls)
    return [
        f"  {f'{a} -> {b}':<{width}}  {n:5d} calls  {errors[(a, b)]:4d} errors"
        for (a, b), n in sorted(calls.items(), key=lambda item: (-item[1], item[0]))
    ]


def percentile_lines(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """``(operation, /api/stats answer)`` rows as a table."""
    lines = [
        f"  {'route':<28} {'count':>6} {'errors':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}"
    ]
    for operation, stats in rows:
        lines.append(
            f"  {operation[:28]:<28} {stats.get('count', 0):>6} {stats.get('errors', 0):>6} "
            + " ".join(f"{float(stats.get(k) or 0):>8.1f}" for k in ("p50", "p90", "p99", "max"))
        )
    return lines
