// gatetrace trace page: log in with the admin token, then recent traces (filtered), one
// trace's waterfall and span details, the service dependencies, the applied tracing config.
// Views are chosen by the URL fragment (#/traces, #/trace/<id>, #/dependencies, #/config),
// which never holds the token.

import * as dom from "./dom.js";
import { dependencyGraph } from "./graph.js";
import * as session from "./session.js";
import * as traces from "./trace.js";

const { $, el, formatDuration, formatTime, plural } = dom;

// readOnly: served by the read-only query port (GET /ui/mode.json), which needs no token
// and serves no admin route: no login, no config view, no log out
const state = { servicesLoaded: false, baggageKeys: null, readOnly: false };

// -- views and their status lines ------------------------------------------------------------

function showOnly(sectionId) {
  for (const section of document.querySelectorAll("main > section")) {
    section.hidden = section.id !== sectionId;
  }
  const view = sectionId === "view-trace" ? "traces" : sectionId.replace(/^view-/, "");
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === view);
  }
}

function status(node, text) {
  node.textContent = text;
  node.classList.remove("error");
}

// a failed call: a 401 ends the session, a moot answer is dropped, the rest is reported
function failed(error, statusNode) {
  if (error instanceof session.Superseded) return;
  if (error instanceof session.AuthError) {
    logout("Your session ended: the admin token was refused (401).");
    return;
  }
  statusNode.textContent = `Error: ${error.message}`;
  statusNode.classList.add("error");
}

// -- session ---------------------------------------------------------------------------------

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
  dom.forgetColours();
}

function logout(message) {
  session.supersede();
  session.forgetToken();
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
    await session.api("/api/services", candidate);
  } catch (error) {
    if (error instanceof session.Superseded) return;
    $("login-error").textContent =
      error instanceof session.AuthError
        ? "That token was refused (401)."
        : `Error: ${error.message}`;
    return;
  }
  session.keepToken(candidate);
  $("token").value = "";
  $("login-error").textContent = "";
  route();
}

// -- recent traces -----------------------------------------------------------------------------

function options(select, values, blank) {
  const previous = select.value;
  select.replaceChildren();
  if (blank) select.append(el("option", { value: "" }, blank));
  for (const value of values) select.append(el("option", { value }, value));
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

async function loadServices() {
  const services = (await session.api("/api/services")).data || [];
  dom.learnColours(services);
  options($("f-service"), services);
  state.servicesLoaded = true;
  await loadOperations();
}

async function loadOperations() {
  const service = $("f-service").value;
  const path = `/api/services/${encodeURIComponent(service)}/operations`;
  options($("f-operation"), service ? (await session.api(path)).data || [] : [], "all");
}

function traceRow(trace) {
  const info = traces.summarise(trace);
  const code = traces.tagValue(info.root, "http.response.status_code");
  const badge = info.errors
    ? el("span", { class: "badge err" }, plural(info.errors, "error"))
    : el("span", { class: "badge ok" }, "ok");
  const link = el("a", { href: `#/trace/${encodeURIComponent(trace.traceID)}` }, trace.traceID);
  const row = el(
    "tr",
    { class: info.errors ? "trace err" : "trace", "data-trace-id": trace.traceID },
    el("td", {}, formatTime(info.start)),
    el(
      "td",
      {},
      el("span", { class: `swatch ${dom.colourClass(info.service)}` }),
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
  session.supersede();
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
    const found = (await session.api(`/api/traces?${params}`)).data || [];
    body.replaceChildren(...found.map(traceRow));
    status(note, plural(found.length, "trace"));
  } catch (error) {
    failed(error, note);
  }
}

async function changeService() {
  try {
    await loadOperations();
    await search();
  } catch (error) {
    failed(error, $("traces-status"));
  }
}

// -- one trace ---------------------------------------------------------------------------------

async function knownColours() {
  if (!dom.coloursKnown()) dom.learnColours((await session.api("/api/services")).data || []);
}

// the keys the applied config promotes from baggage to tags (shown as baggage)
async function baggageKeys() {
  if (state.baggageKeys === null && state.readOnly) state.baggageKeys = new Set();
  if (state.baggageKeys === null) {
    try {
      const applied = await session.api("/admin/v1/tracing");
      state.baggageKeys = new Set(((applied.config || {}).baggage || {}).tagKeys || []);
    } catch (error) {
      if (!(error instanceof session.ApiError)) throw error;
      state.baggageKeys = new Set(); // no config loaded yet
    }
  }
  return state.baggageKeys;
}

function selectSpan(trace, info, span, row) {
  for (const other of $("waterfall").querySelectorAll(".row.selected")) {
    other.classList.remove("selected");
  }
  row.classList.add("selected");
  const details = $("span-details");
  details.replaceChildren(...traces.spanDetails(trace, span, info, state.baggageKeys || new Set()));
  details.hidden = false;
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
    const path = `/api/traces/${encodeURIComponent(traceId)}`;
    const trace = (await session.api(path)).data[0];
    const info = traces.summarise(trace);
    status(
      note,
      `${info.service}: ${info.root.operationName} — ${formatDuration(info.end - info.start)}, ` +
        `${plural(trace.spans.length, "span")}, ${plural(info.services.size, "service")}, ` +
        `${plural(info.errors, "error")}, started ${formatTime(info.start)}`,
    );
    const select = (span, row) => selectSpan(trace, info, span, row);
    const rows = traces.waterfall(trace, info, select);
    $("waterfall").replaceChildren(...rows);
    select(info.root, rows.find((r) => r.dataset.spanId === info.root.spanID));
  } catch (error) {
    failed(error, note);
  }
}

// -- dependencies ------------------------------------------------------------------------------

async function showDependencies() {
  showOnly("view-dependencies");
  const note = $("deps-status");
  status(note, "Loading…");
  try {
    await knownColours();
    const edges = (await session.api("/api/dependencies")).data || [];
    $("deps").tBodies[0].replaceChildren(
      ...edges.map((e) =>
        el(
          "tr",
          {},
          el("td", {}, e.parent),
          el("td", {}, e.child),
          el("td", { class: "num" }, e.callCount),
        ),
      ),
    );
    $("deps-graph").replaceChildren(...(edges.length ? [dependencyGraph(edges)] : []));
    status(
      note,
      edges.length
        ? `${plural(edges.length, "caller → callee pair")} in the last 24 h`
        : "No calls between services recorded yet.",
    );
  } catch (error) {
    failed(error, note);
  }
}

// -- applied config ----------------------------------------------------------------------------

function sourcesTable(sources) {
  if (!sources.length) {
    return el("p", { class: "empty" }, "No sources reported (bootstrap config or a direct PUT).");
  }
  const columns = [...new Set(sources.flatMap((s) => Object.keys(s)))];
  const cell = (source, column) => (column in source ? dom.formatValue(source[column]) : "");
  return el(
    "table",
    { class: "list", id: "sources" },
    el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", {}, c)))),
    el(
      "tbody",
      {},
      ...sources.map((s) => el("tr", {}, ...columns.map((c) => el("td", {}, cell(s, c))))),
    ),
  );
}

async function showConfig() {
  showOnly("view-config");
  const note = $("config-status");
  status(note, "Loading…");
  try {
    const applied = await session.api("/admin/v1/tracing");
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
    if (!(error instanceof session.ApiError && error.status === 404)) {
      failed(error, note);
      return;
    }
    $("config-meta").replaceChildren();
    $("config-sources").replaceChildren();
    $("config-body").textContent = "";
    status(note, "No tracing config is loaded yet.");
  }
}

// -- routing -----------------------------------------------------------------------------------

function route() {
  session.supersede();
  if (!state.readOnly && !session.token()) {
    logout();
    return;
  }
  $("nav").hidden = false;
  let hash = location.hash.replace(/^#\/?/, "");
  if (state.readOnly && hash === "config") hash = "";
  if (hash.startsWith("trace/")) {
    let traceId = hash.slice("trace/".length);
    try {
      traceId = decodeURIComponent(traceId);
    } catch (_) {
      // a malformed escape: ask for it as typed, the API answers 400
    }
    showTrace(traceId);
  } else if (hash === "dependencies") {
    showDependencies();
  } else if (hash === "config") {
    showConfig();
  } else {
    showOnly("view-traces");
    search();
  }
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", () => logout("Logged out."));
$("filters").addEventListener("submit", search);
$("f-service").addEventListener("change", changeService);
window.addEventListener("hashchange", route);

async function start() {
  state.readOnly = await session.readOnlyPort();
  if (state.readOnly) {
    $("logout").hidden = true;
    document.querySelector('#nav a[data-view="config"]').hidden = true;
  }
  route();
}

start();
