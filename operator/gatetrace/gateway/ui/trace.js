// One trace in the Jaeger query JSON shape: its summary, the waterfall, a span's details.

import { colourClass, el, formatDuration, formatValue, keyValueTable } from "./dom.js";

// the span's parent within the trace (CHILD_OF first), or null for a root or an orphan
export function parentOf(span, byId) {
  const refs = span.references || [];
  const parent =
    refs.find((r) => r.refType === "CHILD_OF" && byId.has(r.spanID)) ||
    refs.find((r) => byId.has(r.spanID));
  return parent ? parent.spanID : null;
}

export function tagValue(span, key) {
  const found = (span.tags || []).find((t) => t.key === key);
  return found ? found.value : undefined;
}

const isError = (span) => [true, "true"].includes(tagValue(span, "error"));

const serviceOf = (trace, span) => (trace.processes[span.processID] || { serviceName: "?" }).serviceName;

// start/end (µs), the earliest root span and its service, the error count, spans by id
export function summarise(trace) {
  const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
  const roots = trace.spans.filter((s) => parentOf(s, byId) === null);
  const root = roots.sort((a, b) => a.startTime - b.startTime)[0] || trace.spans[0];
  return {
    byId,
    start: Math.min(...trace.spans.map((s) => s.startTime)),
    end: Math.max(...trace.spans.map((s) => s.startTime + s.duration)),
    root,
    service: serviceOf(trace, root),
    services: new Set(trace.spans.map((s) => serviceOf(trace, s))),
    errors: trace.spans.filter(isError).length,
  };
}

// depth-first: each span followed by its children by start time, with its depth
function ordered(trace, byId) {
  const children = new Map();
  const roots = [];
  for (const span of trace.spans) {
    const parent = parentOf(span, byId);
    if (parent === null) roots.push(span);
    else children.set(parent, [...(children.get(parent) || []), span]);
  }
  const rows = [];
  const visit = (span, depth) => {
    rows.push({ span, depth });
    const kids = (children.get(span.spanID) || []).sort((a, b) => a.startTime - b.startTime);
    for (const kid of kids) visit(kid, depth + 1);
  };
  roots.sort((a, b) => a.startTime - b.startTime).forEach((root) => visit(root, 0));
  return rows;
}

// the header (time ticks) and one row per span: label indented by depth, bar to scale;
// onSelect(span, row) runs when a row is clicked or activated from the keyboard
export function waterfall(trace, info, onSelect) {
  const total = Math.max(info.end - info.start, 1);
  const ticks = el("div", { class: "ticks" });
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const tick = el("span", {}, formatDuration(total * fraction));
    tick.style.left = `${fraction * 100}%`;
    ticks.append(tick);
  }
  const header = el("div", { class: "row head" }, el("div", { class: "label" }, "Span"), ticks);
  const rows = ordered(trace, info.byId).map(({ span, depth }) => {
    const service = serviceOf(trace, span);
    const bar = el("div", { class: `bar ${colourClass(service)}` });
    bar.style.left = `${((span.startTime - info.start) / total) * 100}%`;
    bar.style.width = `${Math.max((span.duration / total) * 100, 0.3)}%`;
    const label = el(
      "div",
      { class: "label", title: `${service}: ${span.operationName}` },
      el("span", { class: `svc ${colourClass(service)}` }, service),
      " ",
      span.operationName,
    );
    label.style.paddingLeft = `${0.4 + depth * 1.1}em`;
    const duration = el("span", { class: "dur" }, formatDuration(span.duration));
    const row = el(
      "div",
      {
        class: isError(span) ? "row span err" : "row span",
        "data-span-id": span.spanID,
        tabindex: "0",
      },
      label,
      el("div", { class: "track" }, bar, duration),
    );
    row.addEventListener("click", () => onSelect(span, row));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") onSelect(span, row);
    });
    return row;
  });
  return [header, ...rows];
}

// heading and tables of one span: ids and timing, tags, baggage (tags named by the config's
// baggage.tagKeys or prefixed "baggage."), logs, and the reporting process
export function spanDetails(trace, span, info, baggageKeys) {
  const isBaggage = (key) => baggageKeys.has(key) || key.startsWith("baggage.");
  const tags = span.tags || [];
  const process = trace.processes[span.processID] || { serviceName: "?", tags: [] };
  const parent = parentOf(span, info.byId);
  const pairs = (list) => list.map((t) => [t.key, formatValue(t.value)]);
  const logs = (span.logs || []).map((log) => [
    `+${formatDuration(log.timestamp - info.start)}`,
    log.fields.map((f) => `${f.key}=${formatValue(f.value)}`).join("  "),
  ]);
  const otherRefs = (span.references || []).filter((r) => r.spanID !== parent);
  return [
    el("h3", {}, `${process.serviceName}: ${span.operationName}`),
    keyValueTable(
      "Span",
      [
        ["span id", span.spanID],
        ["parent", parent || "(root)"],
        ["start", `+${formatDuration(span.startTime - info.start)}`],
        ["duration", formatDuration(span.duration)],
        ...otherRefs.map((r) => [r.refType.toLowerCase(), `${r.traceID}/${r.spanID}`]),
      ],
      "",
    ),
    keyValueTable("Tags", pairs(tags.filter((t) => !isBaggage(t.key))), "none"),
    keyValueTable("Baggage", pairs(tags.filter((t) => isBaggage(t.key))), "none recorded"),
    keyValueTable("Logs", logs, "none"),
    keyValueTable(
      "Process",
      [["service", process.serviceName], ...pairs(process.tags || [])],
      "",
    ),
  ];
}
