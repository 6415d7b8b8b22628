// sqlsynth docs: draws the lineage graph (plain SVG), the node details, dataset statistics and the
// evaluation report from the JSON block the generator embedded. No network, no libraries.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("docs-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const TYPES = ["source", "seed", "model", "test", "unit_test", "export"];
  const CHECKS = ["test", "unit_test"];  // data tests and unit tests: hidden until asked for

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "onclick") node.addEventListener("click", value);
      else if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function fill(container, ...children) {
    container.replaceChildren(...children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false));
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    return node;
  }
  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") {
      return Number.isInteger(value) ? value.toLocaleString("en-US")
        : value.toLocaleString("en-US", { maximumFractionDigits: Math.abs(value) < 1 ? 6 : 2 });
    }
    return String(value);
  }
  function kv(rows) {
    const shown = rows.filter(([, v]) => v !== null && v !== undefined && v !== "");
    if (!shown.length) return null;
    return el("table", { class: "kv" }, shown.map(([k, v]) =>
      el("tr", {}, el("th", {}, k), el("td", { class: typeof v === "number" ? "num" : null },
        v instanceof Node ? v : fmt(v)))));
  }
  function statusText(status) {
    return el("span", { class: "status-" + (status || "none") }, status ? "● " + status : "● not run");
  }

  // ---- page frame -------------------------------------------------------------------------------
  const tabs = [["lineage", "Lineage"], ["datasets", "Datasets"]];
  if (DATA.evaluation) tabs.push(["evaluation", "Evaluation"]);
  const nav = el("nav", {});
  const header = el("header", {}, el("h1", {}, DATA.project),
    el("div", { class: "meta" }, `generated ${DATA.generated_at} · database ${DATA.database}` +
      (DATA.last_run ? ` · last run: ${DATA.last_run.command} (${fmt(DATA.last_run.elapsed_time)} s)` : "")), nav);
  const main = el("main", {});
  document.body.append(header, main);
  const panes = {};
  for (const [id, label] of tabs) {
    panes[id] = el("section", { id: id, class: "tab" + (id === "lineage" ? "" : " page") });
    main.append(panes[id]);
    nav.append(el("button", { "data-tab": id, onclick: () => showTab(id) }, label));
  }
  function showTab(id) {
    for (const [other] of tabs) {
      panes[other].classList.toggle("active", other === id);
      nav.querySelector(`[data-tab=${other}]`).classList.toggle("active", other === id);
    }
  }

  // ---- lineage graph ------------------------------------------------------------------------------
  const G = DATA.graph;
  const W = G.node_width, H = G.node_height, PAD = 20;
  const search = el("input", { type: "search", placeholder: "find a node…", id: "node-search" });
  const filters = TYPES.map(t => el("label", {}, el("input", { type: "checkbox", "data-type": t,
    checked: CHECKS.includes(t) ? null : "" }), " " + t.replace("_", " ") + "s"));
  const legend = el("span", { class: "legend" }, TYPES.map(t => el("span", { class: "node " + t }, t)));
  const graph = svg("svg", { id: "graph" });
  const details = el("div", { id: "details" });
  panes.lineage.append(el("div", { id: "graph-pane" },
    el("div", { class: "toolbar" }, search, filters, el("span", { class: "note" }, "drag to pan, wheel to zoom")),
    graph), details);

  const view = {};
  function applyView() { graph.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`); }
  const edgeLayer = svg("g", {}), nodeLayer = svg("g", {});
  graph.append(edgeLayer, nodeLayer);
  const byId = {}, shapes = {}, edges = [];
  for (const n of G.nodes) byId[n.id] = n;
  for (const [from, to] of G.edges) {
    const path = svg("path", { class: "edge" });
    edgeLayer.append(path);
    edges.push({ from, to, path });
  }
  for (const n of G.nodes) {
    const g = svg("g", { class: "node " + n.type, "data-id": n.id });
    const title = svg("title", {});
    title.textContent = `${n.type}: ${n.name}`;
    const label = svg("text", { x: 20, y: H / 2 + 4 });
    label.textContent = n.name.length > 24 ? n.name.slice(0, 23) + "…" : n.name;
    g.append(title, svg("rect", { width: W, height: H, rx: 5 }),
      svg("circle", { cx: 10, cy: H / 2, r: 4.5, class: "status-" + (n.status || "none") }), label);
    g.addEventListener("click", (event) => { event.stopPropagation(); select(n.id); });
    nodeLayer.append(g);
    shapes[n.id] = g;
  }
  let mode = null;
  // Place nodes and edges for the "plain" layout (no data tests) or the "full" one.
  function place(which) {
    if (which === mode) return;
    mode = which;
    const [width, height] = G.size[which];
    Object.assign(view, { x: -PAD, y: -PAD, w: width + 2 * PAD, h: height + 2 * PAD });
    applyView();
    for (const n of G.nodes) if (n[which]) shapes[n.id].setAttribute("transform", `translate(${n[which][0]},${n[which][1]})`);
    for (const e of edges) {
      const a = byId[e.from][which], b = byId[e.to][which];
      if (!a || !b) continue;
      const x1 = a[0] + W / 2, y1 = a[1] + H, x2 = b[0] + W / 2, y2 = b[1], mid = (y1 + y2) / 2;
      e.path.setAttribute("d", `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`);
    }
  }

  let drag = null;
  graph.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y }; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const scale = view.w / graph.clientWidth;
    view.x = drag.vx - (e.clientX - drag.x) * scale;
    view.y = drag.vy - (e.clientY - drag.y) * scale;
    applyView();
  });
  graph.addEventListener("wheel", (e) => {
    e.preventDefault();
    const factor = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    const box = graph.getBoundingClientRect();
    const px = view.x + (e.clientX - box.left) / box.width * view.w;
    const py = view.y + (e.clientY - box.top) / box.height * view.h;
    view.w *= factor; view.h *= factor;
    view.x = px - (px - view.x) * factor; view.y = py - (py - view.y) * factor;
    applyView();
  }, { passive: false });

  function hiddenTypes() {
    return new Set(filters.map(f => f.querySelector("input")).filter(i => !i.checked).map(i => i.dataset.type));
  }
  function refresh(selected) {
    const hidden = hiddenTypes(), term = search.value.trim().toLowerCase();
    place(CHECKS.every(t => hidden.has(t)) ? "plain" : "full");
    const near = new Set(selected ? [selected] : []);
    for (const e of edges) if (e.from === selected || e.to === selected) { near.add(e.from); near.add(e.to); }
    for (const n of G.nodes) {
      const shape = shapes[n.id];
      shape.style.display = hidden.has(n.type) ? "none" : "";
      shape.classList.toggle("dim", (term && !n.name.toLowerCase().includes(term)) ||
        (!term && selected && !near.has(n.id)));
      shape.classList.toggle("selected", n.id === selected);
    }
    for (const e of edges) {
      e.path.style.display = hidden.has(byId[e.from].type) || hidden.has(byId[e.to].type) ? "none" : "";
      e.path.classList.toggle("hl", !!selected && (e.from === selected || e.to === selected));
      e.path.classList.toggle("dim", !!selected && !(e.from === selected || e.to === selected));
    }
  }
  let current = null;
  search.addEventListener("input", () => refresh(current));
  for (const f of filters) f.addEventListener("change", () => refresh(current));
  graph.addEventListener("click", () => { current = null; refresh(null); overview(); });

  // ---- details panel ------------------------------------------------------------------------------
  function nodeLink(id, text) { return el("a", { class: "link", onclick: () => select(id) }, text || DATA.nodes[id].name); }
  function neighbours(id, upstream) {
    return G.edges.filter(([a, b]) => (upstream ? b : a) === id).map(([a, b]) => (upstream ? a : b));
  }
  function llmSection(n) {
    const log = n.llm_calls, run = n.llm_last_run;
    if (!log && !run) return null;
    const parts = [el("h3", {}, "LLM calls")];
    if (log) {
      parts.push(kv([["calls (all runs, sqlsynth.calls)", log.calls], ["errors", log.errors],
        ["truncated (max_tokens reached)", log.truncated], ["prompt tokens", log.prompt_tokens],
        ["completion tokens", log.completion_tokens], ["estimated cost", log.cost]]));
      parts.push(el("table", {}, el("tr", {}, el("th", {}, "endpoint"), el("th", {}, "calls"), el("th", {}, "mean latency ms")),
        log.endpoints.map(e => el("tr", {}, el("td", {}, e.endpoint), el("td", { class: "num" }, fmt(e.calls)),
          el("td", { class: "num" }, fmt(e.mean_latency_ms))))));
    }
    if (run) {
      const paid = Object.entries(run.answered_by || {}).map(([m, r]) => `${m}: ${r}`).join(", ");
      parts.push(el("div", { class: "note" }, "last run"), kv([["rows answered", run.rows], ["cache hits", run.cached],
        ["shared with an identical request", run.shared], ["calls made", run.calls], ["retries", run.retries],
        ["errors", run.errors], ["tokens in / out", `${fmt(run.prompt_tokens)} / ${fmt(run.completion_tokens)}`],
        ["cost", run.cost], ["answered by calls of", paid || null]]));
    }
    return parts;
  }
  function columnsSection(n) {
    if (!n.columns || !n.columns.length) return null;
    return [el("h3", {}, `Columns (${n.columns.length})`), el("table", { class: "columns" },
      el("tr", {}, el("th", {}, "name"), el("th", {}, "type"), el("th", {}, "description")),
      n.columns.map(c => el("tr", {}, el("td", {}, c.name), el("td", {}, c.type), el("td", {}, c.description))))];
  }
  function show(n) {
    const run = n.run || {};
    const ups = neighbours(n.id, true), downs = neighbours(n.id, false);
    fill(details, 
      el("h2", {}, n.name), el("div", {}, el("span", { class: "badge" }, n.type),
        n.materialized ? el("span", { class: "badge" }, n.materialized) : null,
        (n.tags || []).map(t => el("span", { class: "badge" }, "#" + t))),
      n.description ? el("p", {}, n.description) : null,
      kv([["file", n.path], ["relation", n.relation], ["export file", n.export_file],
        ["location", n.external_location],
        ["last run", n.type === "export" ? null : statusText(run.status)], ["message", run.message],
        ["rows (last run)", run.rows_affected], ["failures", run.failures],
        ["time s", run.execution_time], ["finished", run.completed_at],
        ["rows now", n.rows], ["in the database", n.built === false ? "not built yet" : null]]),
      ups.length ? el("div", {}, "upstream: ", ups.map((u, i) => [i ? ", " : "", nodeLink(u)])) : null,
      downs.length ? el("div", {}, "downstream: ", downs.map((d, i) => [i ? ", " : "", nodeLink(d)])) : null,
      n.dataset ? datasetBlock(n.dataset, null) : null,
      llmSection(n), columnsSection(n),
      n.tests && n.tests.length ? [el("h3", {}, `Tests (${n.tests.length})`),
        el("ul", {}, n.tests.map(t => el("li", {}, nodeLink(t.id, t.name), " ", statusText(t.status))))] : null,
      n.sql ? [el("h3", {}, "SQL"), el("pre", { class: "sql" }, n.sql)] : null,
      n.compiled_sql ? el("details", {}, el("summary", {}, "compiled SQL"), el("pre", {}, n.compiled_sql)) : null);
    details.scrollTop = 0;
  }
  function select(id) {
    current = id;
    showTab("lineage");
    refresh(id);
    show(DATA.nodes[id]);
  }
  function overview() {
    const counts = {};
    for (const n of G.nodes) counts[n.type] = (counts[n.type] || 0) + 1;
    const usage = DATA.last_run && DATA.last_run.usage;
    fill(details, el("h2", {}, "Project " + DATA.project),
      el("p", { class: "note" }, "Click a node for its SQL, columns, tests, last run and LLM calls."),
      kv(TYPES.map(t => [t.replace("_", " ") + "s", counts[t] || 0])),
      DATA.last_run ? [el("h3", {}, "Last run"), kv([["command", DATA.last_run.command],
        ["at", DATA.last_run.generated_at], ["elapsed s", DATA.last_run.elapsed_time]])] : el("p", {}, "No run yet."),
      usage ? [el("h3", {}, "LLM usage of the last run"), kv([["calls", usage.calls], ["cache hits", usage.cached],
        ["tokens in", usage.prompt_tokens], ["tokens out", usage.completion_tokens], ["cost", usage.cost],
        ["errors", usage.errors]])] : null,
      DATA.notes.map(t => el("p", { class: "note" }, t)));
  }

  // ---- datasets -----------------------------------------------------------------------------------
  function card(label, value, bad) { return el("div", { class: "card" + (bad ? " bad" : "") }, el("b", {}, fmt(value)), el("span", {}, label)); }
  function spreadTable(rows) {
    return el("table", {}, el("tr", {}, ["", "min", "mean", "median", "p95", "max", "total"].map(h => el("th", {}, h))),
      rows.filter(([, s]) => s).map(([name, s]) => el("tr", {}, el("th", {}, name),
        ["min", "mean", "median", "p95", "max", "total"].map(k => el("td", { class: "num" }, fmt(s[k]))))));
  }
  function datasetBlock(d, title) {
    const head = el("h3", {}, title || "Dataset");
    if (d.kind === "missing") return el("div", { class: "dataset" }, head, el("p", { class: "note" }, d.error));
    if (d.kind === "table") {
      return el("div", { class: "dataset" }, head, el("div", { class: "cards" }, card("rows", d.rows),
        card("columns", d.columns.length), card("duplicate rows", d.duplicate_rows, d.duplicate_rows > 0)),
        spreadTable(Object.entries(d.text_lengths).map(([c, s]) => [c + " (chars)", s])));
    }
    const roleRows = [];
    for (const [role, r] of Object.entries(d.roles)) {
      roleRows.push([`${role} turn chars`, r.chars], [`${role} turn tokens`, r.tokens]);
    }
    return el("div", { class: "dataset" }, head,
      el("div", { class: "cards" }, card("conversations", d.conversations),
        card("turns per conversation (mean)", d.turns ? d.turns.mean : null),
        card("tokens (total)", d.tokens_per_conversation ? d.tokens_per_conversation.total : 0),
        card("duplicate conversations", d.duplicate_conversations, d.duplicate_conversations > 0),
        card("duplicate questions", d.duplicate_questions, d.duplicate_questions > 0),
        card("truncated answers", d.truncated_answers, d.truncated_answers > 0),
        card("empty answers", d.empty_answers, d.empty_answers > 0)),
      spreadTable([["turns", d.turns], ...roleRows, ["tokens per conversation", d.tokens_per_conversation]]),
      el("p", { class: "note" }, DATA.token_label + "; truncated = the answer's LLM call stopped at max_tokens" +
        (d.unreadable_lines ? `; ${d.unreadable_lines} line(s) were not JSON` : "")));
  }
  const exports = Object.values(DATA.nodes).filter(n => n.type === "export");
  fill(panes.datasets, el("h2", {}, "Exported datasets"),
    exports.length ? exports.map(n => datasetBlock(n.dataset, [n.path + " (from ", nodeLink(n.model), ")"])) :
      el("p", {}, "No exports: models with materialized='external' write files; their statistics appear here."));

  // ---- evaluation ---------------------------------------------------------------------------------
  if (DATA.evaluation) {
    fill(panes.evaluation, el("p", {}, el("a", { href: DATA.evaluation }, "open the evaluation report on its own")),
      el("iframe", { class: "evaluation", src: DATA.evaluation, title: "evaluation report" }));
  }

  const wanted = location.hash.slice(1);
  showTab(tabs.some(([id]) => id === wanted) ? wanted : "lineage");
  overview();
  refresh(null);
})();
