// DOM building from text only, formatting, and the service palette.
//
// Every string from the API reaches the page through el()/svg(): text nodes and attribute
// values, never HTML parsing. Inline handlers and style attributes are refused (the
// Content-Security-Policy would block them anyway); styles are set through the CSSOM.

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE_SIZE = 8; // .svc-0 ... .svc-7 in app.css

export const $ = (id) => document.getElementById(id);

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") || name === "style") throw new Error(`not allowed: ${name}`);
    node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const el = (tag, attrs, ...children) =>
  fill(document.createElement(tag), attrs, children);

export const svg = (tag, attrs, ...children) =>
  fill(document.createElementNS(SVG_NS, tag), attrs, children);

// microseconds as 123µs, 4.56ms, 12.3ms or 1.23s
export function formatDuration(us) {
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)}ms`;
  return `${(us / 1e6).toFixed(2)}s`;
}

// microseconds since the epoch as local YYYY-MM-DD HH:MM:SS.mmm
export function formatTime(us) {
  const d = new Date(us / 1000);
  const two = (n) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return `${day} ${time}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function formatValue(value) {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// one colour per service, the same in every view: palette slots in the sorted order of
// /api/services (learnt at the first view after login), later newcomers take the next slots
const colours = new Map();

export function colourClass(service) {
  if (!colours.has(service)) colours.set(service, colours.size);
  return `svc-${colours.get(service) % PALETTE_SIZE}`;
}

export const coloursKnown = () => colours.size > 0;

export function learnColours(services) {
  if (colours.size === 0) [...services].sort().forEach(colourClass);
}

export const forgetColours = () => colours.clear();

// a two-column table (caption, rows of [key, value]) or a note when there are no rows
export function keyValueTable(caption, entries, emptyText) {
  if (!entries.length) return el("p", { class: "empty" }, `${caption}: ${emptyText}`);
  return el(
    "table",
    { class: "kv", "data-section": caption.toLowerCase() },
    el("caption", {}, caption),
    el("tbody", {}, ...entries.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
  );
}
