// gatetrace trace page: recent traces, a trace waterfall, dependencies and the applied config.
//
// The admin token lives in sessionStorage (this tab only) and travels solely in the
// Authorization header of same-origin fetch calls. Every string from the API reaches the
// page through text nodes or attributes (el/svg below), never through HTML parsing.
"use strict";

(() => {
  const TOKEN_KEY = "gatetrace.adminToken";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE_SIZE = 8;

  const $ = (id) => document.getElementById(id);

  // generation: bumped by every navigation, search and logout, so an answer that arrives
  // after the user moved on (or logged out) is dropped instead of drawn
  const state = { servicesLoaded: false, baggageKeys: null, generation: 0, colours: new Map() };

  // -- DOM helpers: text only, no HTML parsing ---------------------------------------------

  function fill(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.setAttribute("class", value);
      else if (name.startsWith("on") || name === "style") throw new Error("not allowed: " + name);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const el = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) =>
    fill(document.createElementNS(SVG_NS, tag), attrs, children);

  // -- formatting ---------------------------------------------------------------------------

  function formatDuration(us) {
    if (us < 1000) return `${Math.round(us)}µs`;
    if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)}ms`;
    return `${(us / 1e6).toFixed(2)}s`;
  }

  // local time as YYYY-MM-DD HH:MM:SS.mmm
  function formatTime(us) {
    const d = new Date(us / 1000);
    const two = (n) => String(n).padStart(2, "0");
    const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
    const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    return `${day} ${time}.${String(d.getMilliseconds()).padStart(3, "0")}`;
  }

  function formatValue(value) {
    return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
  }

  // one colour per service, the same in every view: palette slots in the sorted order of
  // /api/services (learnt at the first view), later newcomers take the next slots
  function colourClass(service) {
    if (!state.colours.has(service)) state.colours.set(service, state.colours.size);
    return `svc-${state.colours.get(service) % PALETTE_SIZE}`;
  }

  function learnColours(services) {
    if (state.colours.size === 0) [...services].sort().forEach(colourClass);
  }

  // -- API ------------------------------------------------------------------------------------

  class AuthError extends Error {}
  class Superseded extends Error {}

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  async function api(path, bearer = token()) {
    const generation = state.generation;
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${bearer}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (generation !== state.generation) throw new Superseded(path);
    if (response.status === 401) throw new AuthError("the admin token was refused");
    if (!response.ok) {
      const message =
        (body && body.errors && body.errors[0] && body.errors[0].msg) ||
        (body && body.error) ||
        response.statusText;
      const error = new Error(`${response.status}: ${message}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // a failed call: a 401 ends the session, anything else is shown where the view reports
  function failed(error, statusNode) {
    if (error instanceof Superseded) return;
    if (error instanceof AuthError) {
      logout("Your session ended: the admin token was refused (401).");
    } else {
      statusNode.textContent = `Error: ${error.message}`;
      statusNode.classList.add("error");
    }
  }

  function status(node, text) {
    node.textContent = text;
    node.classList.remove("error");
  }

  // -- session ----------------------------------------------------------------------------------

  function showOnly(sectionId) {
    for (const section of document.querySelectorAll("main > section")) {
      section.hidden = section.id !== sectionId;
    }
    const view = sectionId.replace(/^view-/, "").replace(/^trace$/, "traces");
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("active", link.dataset.view === view);
    }
  }

  function clearData() {
    for (const id of ["traces", "deps"]) $(id).tBodies[0].replaceChildren();
    for (const id of ["waterfall", "span-details", "deps-graph", "config-meta", "config-sources"]) {
      $(id).replaceChildren();
    }
    for (const id of ["config-body", "trace-title", "trace-summary"]) $(id).textContent = "";
    $("f-service").replaceChildren();
    $("f-operation").replaceChildren();
    state.servicesLoaded = false;
    state.baggageKeys = null;
    state.colours.clear();
  }

  function logout(message) {
    state.generation += 1;
    sessionStorage.removeItem(TOKEN_KEY);
    clearData();
    $("nav").hidden = true;
    $("login-error").textContent = message || "";
    showOnly("login");
    $("token").focus();
  }

  async function login(event) {
    event.preventDefault();
    const candidate = $("token").value.trim();
    if (!candidate) return;
    try {
      await api("/api/services", candidate);
    } catch (error) {
      if (error instanceof Superseded) return;
      $("login-error").textContent =
        error instanceof AuthError ? "That token was refused (401)." : `Error: ${error.message}`;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $("token").value = "";
    $("login-error").textContent = "";
    $("nav").hidden = false;
    route();
  }

  // -- traces list ------------------------------------------------------------------------------

  function options(select, values, { blank } = {}) {
    const previous = select.value;
    select.replaceChildren();
    if (blank) select.append(el("option", { value: "" }, blank));
    for (const value of values) select.append(el("option", { value }, value));
    if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  }

  async function loadServices() {
    const services = (await api("/api/services")).data || [];
    learnColours(services);
    options($("f-service"), services);
    state.servicesLoaded = true;
    await loadOperations();
  }

  async function loadOperations() {
    const service = $("f-service").value;
    if (!service) return options($("f-operation"), [], { blank: "all" });
    const path = `/api/services/${encodeURIComponent(service)}/operations`;
    options($("f-operation"), (await api(path)).data || [], { blank: "all" });
  }

  function parentOf(span, byId) {
    const refs = span.references || [];
    const parent =
      refs.find((r) => r.refType === "CHILD_OF" && byId.has(r.spanID)) ||
      refs.find((r) => byId.has(r.spanID));
    return parent ? parent.spanID : null;
  }

  const tagValue = (span, key) => {
    const found = (span.tags || []).find((t) => t.key === key);
    return found ? found.value : undefined;
  };
  const isError = (span) => tagValue(span, "error") === true || tagValue(span, "error") === "true";

  function summarise(trace) {
    const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
    const start = Math.min(...trace.spans.map((s) => s.startTime));
    const end = Math.max(...trace.spans.map((s) => s.startTime + s.duration));
    const roots = trace.spans.filter((s) => parentOf(s, byId) === null);
    const root = roots.sort((a, b) => a.startTime - b.startTime)[0] || trace.spans[0];
    const process = trace.processes[root.processID] || { serviceName: "?" };
    return {
      byId,
      start,
      end,
      root,
      service: process.serviceName,
      errors: trace.spans.filter(isError).length,
    };
  }

  function traceRow(trace) {
    const info = summarise(trace);
    const code = tagValue(info.root, "http.response.status_code");
    const badge = info.errors
      ? el("span", { class: "badge err" }, `${info.errors} error${info.errors > 1 ? "s" : ""}`)
      : el("span", { class: "badge ok" }, "ok");
    const link = el("a", { href: `#/trace/${encodeURIComponent(trace.traceID)}` }, trace.traceID);
    const row = el(
      "tr",
      { class: info.errors ? "trace err" : "trace", "data-trace-id": trace.traceID },
      el("td", {}, formatTime(info.start)),
      el(
        "td",
        {},
        el("span", { class: `swatch ${colourClass(info.service)}` }),
        `${info.service}: ${info.root.operationName}`,
      ),
      el("td", { class: "num" }, trace.spans.length),
      el("td", { class: "num" }, formatDuration(info.end - info.start)),
      el("td", {}, badge, code === undefined ? null : ` ${code}`),
      el("td", {}, el("code", {}, link)),
    );
    row.addEventListener("click", (event) => {
      if (event.target !== link) location.hash = link.getAttribute("href");
    });
    return row;
  }

  async function search(event) {
    if (event) event.preventDefault();
    state.generation += 1;
    const note = $("traces-status");
    const body = $("traces").tBodies[0];
    try {
      if (!state.servicesLoaded) await loadServices();
      const service = $("f-service").value;
      if (!service) {
        body.replaceChildren();
        status(note, "No traces yet: send some requests through the gateway.");
        return;
      }
      const params = new URLSearchParams({ service, limit: $("f-limit").value || "20" });
      if ($("f-operation").value) params.set("operation", $("f-operation").value);
      if ($("f-min").value.trim()) params.set("minDuration", $("f-min").value.trim());
      if ($("f-errors").checked) params.set("tags", JSON.stringify({ error: "true" }));
      status(note, "Loading…");
      const traces = (await api(`/api/traces?${params}`)).data || [];
      body.replaceChildren(...traces.map(traceRow));
      status(note, `${traces.length} trace${traces.length === 1 ? "" : "s"}`);
    } catch (error) {
      failed(error, note);
    }
  }

  // -- one trace ----------------------------------------------------------------------------------

  async function knownColours() {
    if (state.colours.size === 0) learnColours((await api("/api/services")).data || []);
  }

  async function baggageKeys() {
    if (state.baggageKeys === null) {
      try {
        const applied = await api("/admin/v1/tracing");
        const baggage = (applied.config && applied.config.baggage) || {};
        state.baggageKeys = new Set(baggage.tagKeys || []);
      } catch (error) {
        if (error instanceof AuthError || error instanceof Superseded) throw error;
        state.baggageKeys = new Set();
      }
    }
    return state.baggageKeys;
  }

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

  function waterfall(trace, info) {
    const total = Math.max(info.end - info.start, 1);
    const ticks = el("div", { class: "ticks" });
    for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
      const tick = el("span", {}, formatDuration(total * fraction));
      tick.style.left = `${fraction * 100}%`;
      ticks.append(tick);
    }
    const header = el("div", { class: "row head" }, el("div", { class: "label" }, "Span"), ticks);
    const rows = ordered(trace, info.byId).map(({ span, depth }) => {
      const service = (trace.processes[span.processID] || { serviceName: "?" }).serviceName;
      const bar = el("div", { class: `bar ${colourClass(service)}` });
      const offset = span.startTime - info.start;
      bar.style.left = `${(offset / total) * 100}%`;
      bar.style.width = `${Math.max((span.duration / total) * 100, 0.3)}%`;
      const label = el(
        "div",
        { class: "label", title: `${service}: ${span.operationName}` },
        el("span", { class: `svc ${colourClass(service)}` }, service),
        " ",
        span.operationName,
      );
      label.style.paddingLeft = `${0.4 + depth * 1.1}em`;
      const row = el(
        "div",
        {
          class: isError(span) ? "row span err" : "row span",
          "data-span-id": span.spanID,
          tabindex: "0",
        },
        label,
        el("div", { class: "track" }, bar, el("span", { class: "dur" }, formatDuration(span.duration))),
      );
      const select = () => showSpan(trace, span, info, row);
      row.addEventListener("click", select);
      row.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && select());
      return row;
    });
    return [header, ...rows];
  }

  function keyValueTable(caption, entries, emptyText) {
    if (!entries.length) return el("p", { class: "empty" }, `${caption}: ${emptyText}`);
    return el(
      "table",
      { class: "kv", "data-section": caption.toLowerCase() },
      el("caption", {}, caption),
      el("tbody", {}, ...entries.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
    );
  }

  function showSpan(trace, span, info, row) {
    for (const other of $("waterfall").querySelectorAll(".row.selected")) {
      other.classList.remove("selected");
    }
    row.classList.add("selected");
    const baggage = state.baggageKeys || new Set();
    const isBaggage = (key) => baggage.has(key) || key.startsWith("baggage.");
    const tags = span.tags || [];
    const process = trace.processes[span.processID] || { serviceName: "?", tags: [] };
    const parent = parentOf(span, info.byId);
    const logs = (span.logs || []).map((log) => [
      `+${formatDuration(log.timestamp - info.start)}`,
      log.fields.map((f) => `${f.key}=${formatValue(f.value)}`).join("  "),
    ]);
    $("span-details").replaceChildren(
      el("h3", {}, `${process.serviceName}: ${span.operationName}`),
      keyValueTable(
        "Span",
        [
          ["span id", span.spanID],
          ["parent", parent || "(root)"],
          ["start", `+${formatDuration(span.startTime - info.start)}`],
          ["duration", formatDuration(span.duration)],
          ...(span.references || [])
            .filter((r) => r.spanID !== parent)
            .map((r) => [r.refType.toLowerCase(), `${r.traceID}/${r.spanID}`]),
        ],
        "",
      ),
      keyValueTable(
        "Tags",
        tags.filter((t) => !isBaggage(t.key)).map((t) => [t.key, formatValue(t.value)]),
        "none",
      ),
      keyValueTable(
        "Baggage",
        tags.filter((t) => isBaggage(t.key)).map((t) => [t.key, formatValue(t.value)]),
        "none recorded",
      ),
      keyValueTable("Logs", logs, "none"),
      keyValueTable(
        "Process",
        [
          ["service", process.serviceName],
          ...(process.tags || []).map((t) => [t.key, formatValue(t.value)]),
        ],
        "",
      ),
    );
    $("span-details").hidden = false;
  }

  async function showTrace(traceId) {
    showOnly("view-trace");
    const note = $("trace-summary");
    $("trace-title").textContent = `Trace ${traceId}`;
    $("waterfall").replaceChildren();
    $("span-details").hidden = true;
    status(note, "Loading…");
    try {
      await knownColours();
      await baggageKeys();
      const trace = (await api(`/api/traces/${encodeURIComponent(traceId)}`)).data[0];
      const info = summarise(trace);
      const services = new Set(Object.values(trace.processes).map((p) => p.serviceName));
      status(
        note,
        `${info.service}: ${info.root.operationName} — ${formatDuration(info.end - info.start)}, ` +
          `${trace.spans.length} spans, ${services.size} service${services.size > 1 ? "s" : ""}, ` +
          `${info.errors} error${info.errors === 1 ? "" : "s"}, started ${formatTime(info.start)}`,
      );
      const rows = waterfall(trace, info);
      $("waterfall").replaceChildren(...rows);
      showSpan(trace, info.root, info, rows.find((r) => r.dataset.spanId === info.root.spanID));
    } catch (error) {
      failed(error, note);
    }
  }

  // -- dependencies --------------------------------------------------------------------------------

  // services in columns by call depth (callers left), edges as arrows labelled with counts;
  // an edge skipping columns or going back runs above the boxes instead of crossing them
  function dependencyGraph(edges) {
    const names = [...new Set(edges.flatMap((e) => [e.parent, e.child]))].sort();
    const level = new Map(names.map((n) => [n, 0]));
    // longest path from a caller-only service; bounded so a cycle cannot loop forever
    for (let round = 0; round < names.length; round++) {
      for (const e of edges) {
        if (level.get(e.child) < level.get(e.parent) + 1 && level.get(e.parent) < names.length) {
          level.set(e.child, level.get(e.parent) + 1);
        }
      }
    }
    const columns = new Map();
    for (const name of names) {
      columns.set(level.get(name), [...(columns.get(level.get(name)) || []), name]);
    }
    const [boxW, boxH, gapX, gapY, pad, arc] = [150, 34, 90, 26, 12, 22];
    const arcs = edges.map((e) => Math.abs(level.get(e.child) - level.get(e.parent)) !== 1);
    const top = pad + arc * (arcs.filter(Boolean).length + 0.5);
    const position = new Map();
    for (const [column, members] of columns) {
      members.forEach((name, row) => {
        position.set(name, { x: pad + column * (boxW + gapX), y: top + row * (boxH + gapY) });
      });
    }
    const rows = Math.max(...[...columns.values()].map((m) => m.length));
    const width = pad * 2 + (Math.max(...columns.keys()) + 1) * (boxW + gapX) - gapX;
    const height = top + pad + rows * (boxH + gapY) - gapY;
    const graph = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": "service dependency graph",
    });
    const marker = { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, orient: "auto" };
    graph.append(
      svg(
        "defs",
        {},
        svg(
          "marker",
          { ...marker, markerWidth: 7, markerHeight: 7 },
          svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }),
        ),
      ),
    );
    let arcsDrawn = 0;
    edges.forEach((e, i) => {
      const from = position.get(e.parent);
      const to = position.get(e.child);
      let d;
      let label;
      if (arcs[i]) {
        // up from the caller to a lane of its own above the boxes, along it, down the free
        // gap left of the callee's column, into the callee's left side
        arcsDrawn += 1;
        const lane = pad + arc * arcsDrawn;
        const [x1, y1] = [from.x + boxW / 2 + (arcsDrawn % 3) * 10 - 10, from.y];
        const xv = to.x - gapX / 2 + (arcsDrawn % 3) * 8 - 8;
        const [x2, y2] = [to.x, to.y + boxH / 2];
        // a callee at the top of its column is reached from above, others through the gap
        d =
          to.y === top
            ? `M${x1},${y1} V${lane} H${to.x + boxW / 2} V${to.y}`
            : `M${x1},${y1} V${lane} H${xv} V${y2} H${x2}`;
        label = { x: (x1 + xv) / 2, y: lane - 4 };
      } else {
        const [x1, y1, x2, y2] = [from.x + boxW, from.y + boxH / 2, to.x, to.y + boxH / 2];
        d = `M${x1},${y1} L${x2},${y2}`;
        label = { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 5 };
      }
      graph.append(
        svg("path", { d, class: "edge", "marker-end": "url(#arrow)", "data-edge": `${e.parent}>${e.child}` }),
        svg("text", { ...label, class: "count" }, e.callCount),
      );
    });
    for (const [name, { x, y }] of position) {
      graph.append(
        svg(
          "g",
          { class: `node ${colourClass(name)}`, "data-service": name },
          svg("rect", { x, y, width: boxW, height: boxH, rx: 5 }),
          svg("text", { x: x + boxW / 2, y: y + boxH / 2 + 4 }, name),
        ),
      );
    }
    return graph;
  }

  async function showDependencies() {
    showOnly("view-dependencies");
    const note = $("deps-status");
    status(note, "Loading…");
    try {
      await knownColours();
      const edges = (await api("/api/dependencies")).data || [];
      $("deps").tBodies[0].replaceChildren(
        ...edges.map((e) =>
          el("tr", {}, el("td", {}, e.parent), el("td", {}, e.child), el("td", { class: "num" }, e.callCount)),
        ),
      );
      $("deps-graph").replaceChildren(...(edges.length ? [dependencyGraph(edges)] : []));
      status(
        note,
        edges.length
          ? `${edges.length} caller → callee pair${edges.length > 1 ? "s" : ""} in the last 24 h`
          : "No calls between different services recorded yet.",
      );
    } catch (error) {
      failed(error, note);
    }
  }

  // -- applied config ------------------------------------------------------------------------------

  function sourcesTable(sources) {
    if (!sources.length) return el("p", { class: "empty" }, "No sources reported (bootstrap or a direct PUT).");
    const columns = [...new Set(sources.flatMap((s) => Object.keys(s)))];
    return el(
      "table",
      { class: "list", id: "sources" },
      el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", {}, c)))),
      el(
        "tbody",
        {},
        ...sources.map((s) =>
          el("tr", {}, ...columns.map((c) => el("td", {}, c in s ? formatValue(s[c]) : ""))),
        ),
      ),
    );
  }

  async function showConfig() {
    showOnly("view-config");
    const note = $("config-status");
    status(note, "Loading…");
    try {
      const applied = await api("/admin/v1/tracing");
      const meta = [
        ["revision", applied.revision],
        ["version", applied.version],
        ["applied at", applied.appliedAt],
      ];
      $("config-meta").replaceChildren(
        ...meta.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)]),
      );
      $("config-sources").replaceChildren(sourcesTable(applied.sources || []));
      $("config-body").textContent = JSON.stringify(applied.config, null, 2);
      status(note, "Secrets are redacted by the gateway.");
    } catch (error) {
      if (error.status === 404) {
        $("config-meta").replaceChildren();
        $("config-sources").replaceChildren();
        $("config-body").textContent = "";
        status(note, "No tracing config is loaded yet.");
      } else {
        failed(error, note);
      }
    }
  }

  // -- routing -------------------------------------------------------------------------------------

  function route() {
    state.generation += 1;
    if (!token()) {
      logout();
      return;
    }
    $("nav").hidden = false;
    const hash = location.hash.replace(/^#\/?/, "");
    if (hash.startsWith("trace/")) showTrace(decodeURIComponent(hash.slice("trace/".length)));
    else if (hash === "dependencies") showDependencies();
    else if (hash === "config") showConfig();
    else {
      showOnly("view-traces");
      search();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", () => logout("Logged out."));
    $("filters").addEventListener("submit", search);
    $("f-service").addEventListener("change", async () => {
      try {
        await loadOperations();
        await search();
      } catch (error) {
        failed(error, $("traces-status"));
      }
    });
    window.addEventListener("hashchange", route);
    route();
  });
})();
