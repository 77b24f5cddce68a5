// The service dependency graph as SVG: services in columns by call depth (callers on the
// left), calls as arrows labelled with their counts. An edge that skips a column or goes
// back runs in a lane of its own above the boxes instead of crossing them.

import { colourClass, svg } from "./dom.js";

const [BOX_W, BOX_H, GAP_X, GAP_Y, PAD, LANE, LOOP] = [150, 34, 90, 26, 12, 22, 16];

// longest call path from a service nobody calls; bounded so a cycle cannot loop forever.
// A service calling itself (e.g. back through the gateway) stays in its column: its edge
// is a small loop under its box.
function levels(names, edges) {
  const level = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    for (const e of edges) {
      if (e.parent === e.child) continue;
      if (level.get(e.child) < level.get(e.parent) + 1 && level.get(e.parent) < names.length) {
        level.set(e.child, level.get(e.parent) + 1);
      }
    }
  }
  return level;
}

// edges: [{parent, child, callCount}] as GET /api/dependencies answers
export function dependencyGraph(edges) {
  const names = [...new Set(edges.flatMap((e) => [e.parent, e.child]))].sort();
  const level = levels(names, edges);
  const columns = new Map();
  for (const name of names) {
    columns.set(level.get(name), [...(columns.get(level.get(name)) || []), name]);
  }
  const looped = edges.map((e) => e.parent === e.child);
  const laned = edges.map((e, i) => !looped[i] && level.get(e.child) - level.get(e.parent) !== 1);
  const top = PAD + LANE * (laned.filter(Boolean).length + 0.5);
  const position = new Map();
  for (const [column, members] of columns) {
    members.forEach((name, row) => {
      position.set(name, { x: PAD + column * (BOX_W + GAP_X), y: top + row * (BOX_H + GAP_Y) });
    });
  }
  const rows = Math.max(...[...columns.values()].map((m) => m.length));
  const width = PAD * 2 + (Math.max(...columns.keys()) + 1) * (BOX_W + GAP_X) - GAP_X;
  const height = top + PAD + rows * (BOX_H + GAP_Y) - GAP_Y + (looped.some(Boolean) ? LOOP : 0);
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
  let lanes = 0;
  edges.forEach((e, i) => {
    const from = position.get(e.parent);
    const to = position.get(e.child);
    let d;
    let label;
    if (looped[i]) {
      // out of the box's bottom, round, and back in
      const [x1, y1] = [from.x + BOX_W * 0.6, from.y + BOX_H];
      d = `M${x1},${y1} v${LOOP} h${-BOX_W * 0.2} v${-LOOP}`;
      label = { x: x1 + 6, y: y1 + LOOP - 2 };
    } else if (laned[i]) {
      // up from the caller to its lane, along it, then down onto a callee at the top of its
      // column, or down the free gap left of the callee's column and into its side
      lanes += 1;
      const lane = PAD + LANE * lanes;
      const x1 = from.x + BOX_W / 2 + (lanes % 3) * 10 - 10;
      const xGap = to.x - GAP_X / 2 + (lanes % 3) * 8 - 8;
      d =
        to.y === top
          ? `M${x1},${from.y} V${lane} H${to.x + BOX_W / 2} V${to.y}`
          : `M${x1},${from.y} V${lane} H${xGap} V${to.y + BOX_H / 2} H${to.x}`;
      label = { x: (x1 + xGap) / 2, y: lane - 4 };
    } else {
      const [x1, y1, x2, y2] = [from.x + BOX_W, from.y + BOX_H / 2, to.x, to.y + BOX_H / 2];
      d = `M${x1},${y1} L${x2},${y2}`;
      label = { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 5 };
    }
    graph.append(
      svg("path", {
        d,
        class: "edge",
        "marker-end": "url(#arrow)",
        "data-edge": `${e.parent}>${e.child}`,
      }),
      svg("text", { ...label, class: "count" }, e.callCount),
    );
  });
  for (const [name, { x, y }] of position) {
    graph.append(
      svg(
        "g",
        { class: `node ${colourClass(name)}`, "data-service": name },
        svg("rect", { x, y, width: BOX_W, height: BOX_H, rx: 5 }),
        svg("text", { x: x + BOX_W / 2, y: y + BOX_H / 2 + 4 }, name),
      ),
    );
  }
  return graph;
}
