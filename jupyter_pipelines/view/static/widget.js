// The jupyter_pipelines DAG widget (anywidget front end).
// Python lays the graph out once per structure (trait `svg`); this file repaints it from the
// synced `steps` and `header` state, so status changes never re-run the layout.
// DOM contract (tests rely on it): every step node is `g[data-step][data-kind][data-status]`,
// a condition node also has `data-outcome` once evaluated; the details panel has
// `data-details-for="<step>"`.

const STATUS_LABEL = { NotRun: "Not run" };
// (Also the editor's palette and legend icons: js/editor imports them from here.)
export const SHAPE_ICON = {
  box: '<rect x="2" y="4" width="20" height="12" rx="3"/>',
  box3d: '<rect x="2" y="6" width="16" height="11"/><path d="M2 6l4-4h16v11l-4 4M18 6l4-4"/>',
  hexagon: '<path d="M6 3h12l5 7-5 7H6L1 10z"/>',
  octagon: '<path d="M7 2h10l5 5v6l-5 5H7l-5-5V7z"/>',
  cylinder: '<ellipse cx="12" cy="5" rx="9" ry="3"/><path d="M3 5v10c0 1.7 4 3 9 3s9-1.3 9-3V5"/>',
  component: '<rect x="4" y="3" width="18" height="14"/><rect x="1" y="5" width="6" height="3"/><rect x="1" y="12" width="6" height="3"/>',
  parallelogram: '<path d="M6 3h17l-5 14H1z"/>',
};

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function formatSeconds(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m ${String(Math.floor(seconds % 60)).padStart(2, "0")}s`;
}

function render({ model, el }) {
  const root = h("div", { class: "jp-pipeline" });
  const header = h("div", { class: "jp-pipeline-header" });
  const failure = h("div", { class: "jp-pipeline-failure", role: "alert" });
  const graph = h("div", { class: "jp-pipeline-graph" });
  const legend = h("div", { class: "jp-pipeline-legend" });
  const details = h("div", { class: "jp-pipeline-details" });
  root.append(header, failure, h("div", { class: "jp-pipeline-body" }, graph, legend), details);
  el.append(root);
  let ticker = null;

  function drawSvg() {
    graph.innerHTML = model.get("svg");
    const svg = graph.querySelector("svg");
    if (svg) {
      const box = (svg.getAttribute("viewBox") || "").split(/\s+/).map(Number);
      if (box.length === 4 && box[2] > 0) svg.style.maxWidth = `${Math.ceil(box[2] * 1.2)}px`;
    }
    paintSteps();
    paintParameters();
  }

  // The layout's "Parameters" note lists each parameter's declared default; once there is an
  // execution, show the values it ran with instead (overridden ones in bold).
  function paintParameters() {
    const note = graph.querySelector("g#parameters");
    if (!note) return;
    const values = (model.get("header") || {}).parameters || {};
    const shape = note.querySelector("polygon, path");
    const overridden = [];
    for (const text of note.querySelectorAll("text")) {
      if (text.dataset.declared == null) text.dataset.declared = text.textContent;
      const match = /^(.+?): (\S+) = (.*)$/.exec(text.dataset.declared);
      if (!match) continue;
      const [, name, type, declared] = match;
      const value = Object.hasOwn(values, name) ? values[name] : declared;
      text.textContent = `${name}: ${type} = ${value}`;
      text.classList.toggle("jp-param-overridden", value !== declared);
      if (value !== declared) overridden.push(`${name} (default ${declared})`);
      // Keep a longer value inside the note (the layout sized it for the default).
      text.removeAttribute("textLength");
      text.removeAttribute("lengthAdjust");
      try {
        const room = shape ? shape.getBBox().x + shape.getBBox().width - 10 - text.getBBox().x : 0;
        if (room > 0 && text.getComputedTextLength() > room) {
          text.setAttribute("textLength", String(room));
          text.setAttribute("lengthAdjust", "spacingAndGlyphs");
        }
      } catch (err) { /* not rendered yet: no geometry */ }
    }
    const title = note.querySelector("title");
    if (title) {
      title.textContent = overridden.length ? `Parameters; overridden: ${overridden.join(", ")}` : "Parameters";
    }
  }

  function paintSteps() {
    const steps = model.get("steps") || {};
    const selected = model.get("selected");
    for (const node of graph.querySelectorAll("g[data-step]")) {
      const name = node.getAttribute("data-step");
      const state = steps[name] || { status: "Pending", label: "Pending" };
      if (node.getAttribute("data-status") !== state.status) node.setAttribute("data-status", state.status);
      if (state.outcome) node.setAttribute("data-outcome", state.outcome);
      else node.removeAttribute("data-outcome");
      const status = node.querySelector('text[data-role="status"]');
      if (status) status.textContent = state.label || STATUS_LABEL[state.status] || state.status;
      const outcome = node.querySelector('text[data-role="outcome"]');
      if (outcome) outcome.textContent = state.outcome_text || "";
      const title = node.querySelector("title");
      if (title) title.textContent = state.failure ? `${name}: ${state.failure}` : `${name} (${state.status})`;
      node.classList.toggle("jp-selected", name === selected);
    }
  }

  function drawHeader() {
    const info = model.get("header") || {};
    const status = info.status || "Not run";
    const done = info.done || 0;
    const total = info.total || 0;
    const bar = h("div", { class: "jp-pipeline-progress", title: `${done} of ${total} steps done` },
      h("div", { class: "jp-pipeline-progress-fill", style: `width:${total ? (100 * done) / total : 0}%` }));
    const elapsed = h("span", { class: "jp-pipeline-elapsed", text: formatSeconds(info.elapsed) });
    const params = h("span", { class: "jp-pipeline-params" });
    for (const [key, value] of Object.entries(info.parameters || {})) {
      params.append(h("code", { class: "jp-pipeline-param", text: `${key}=${value}` }));
    }
    header.replaceChildren(
      h("span", { class: "jp-pipeline-name", text: model.get("name") }),
      h("span", { class: "jp-pipeline-badge", "data-status": status, text: status }),
      bar, h("span", { class: "jp-pipeline-count", text: `${done}/${total} steps` }), elapsed, params,
    );
    if (info.dashboard) {
      header.append(h("a", { class: "jp-pipeline-dashboard", href: info.dashboard, target: "_blank",
                             rel: "noopener", title: "the Dask cluster's dashboard", text: "Dask dashboard ↗" }));
    }
    paintParameters();
    failure.textContent = info.failure ? `Failure reason: ${info.failure}` : "";
    failure.hidden = !info.failure;
    clearInterval(ticker);
    if (status === "Executing" && info.start) {
      ticker = setInterval(() => { elapsed.textContent = formatSeconds(Date.now() / 1000 - info.start); }, 250);
    }
  }

  function drawLegend() {
    legend.replaceChildren(h("div", { class: "jp-pipeline-legend-title", text: "Step kinds" }));
    for (const item of model.get("legend") || []) {
      const icon = h("span", { class: "jp-pipeline-legend-icon" });
      icon.innerHTML = `<svg viewBox="0 0 24 20" width="22" height="18">${SHAPE_ICON[item.shape] || ""}</svg>`;
      legend.append(h("div", { class: "jp-pipeline-legend-item", title: `SageMaker ${item.type} step` },
        icon, h("span", { text: item.kind })));
    }
    const statuses = h("div", { class: "jp-pipeline-legend-statuses" });
    for (const s of ["Pending", "Executing", "Succeeded", "Cached", "Failed", "Stopped", "Skipped"]) {
      statuses.append(h("span", { class: "jp-pipeline-chip", "data-status": s, text: s }));
    }
    legend.append(statuses);
  }

  function section(title, ...body) {
    return h("section", {}, h("h4", { text: title }), ...body);
  }

  function valueTable(items) {
    const table = h("table", { class: "jp-pipeline-values" });
    for (const item of items) {
      const preview = h("div", { class: "jp-pipeline-preview" });
      if (item.html) preview.innerHTML = item.html;
      else if (item.text) preview.append(h("pre", { text: item.text }));
      table.append(h("tr", {},
        h("th", { text: item.name }),
        h("td", {}, h("div", { class: "jp-pipeline-type", text: [item.type, item.summary, item.from && `from ${item.from}`].filter(Boolean).join(" · ") }), preview)));
    }
    return table;
  }

  function drawDetails() {
    const info = model.get("details") || {};
    if (!info.step) {
      details.replaceChildren();
      details.removeAttribute("data-details-for");
      details.hidden = true;
      return;
    }
    details.hidden = false;
    details.setAttribute("data-details-for", info.step);
    const close = h("button", { class: "jp-pipeline-close", title: "Close", text: "×" });
    close.addEventListener("click", () => { model.set("selected", ""); model.save_changes(); });
    const times = [info.start && `started ${info.start}`, info.end && `ended ${info.end}`, info.duration && `took ${info.duration}`]
      .filter(Boolean).join(" · ");
    const parts = [
      h("div", { class: "jp-pipeline-details-head" },
        h("strong", { text: info.step }), h("span", { class: "jp-pipeline-kind", text: info.kind }),
        h("span", { class: "jp-pipeline-badge", "data-status": info.status, text: info.status }), close),
    ];
    if (times) parts.push(h("div", { class: "jp-pipeline-times", text: times }));
    if (info.reused_from) parts.push(h("div", { class: "jp-pipeline-times", text: `reused from ${info.reused_from}` }));
    if (info.worker) parts.push(h("div", { class: "jp-pipeline-times", "data-worker": info.worker, text: `ran on Dask worker ${info.worker}` }));
    if (info.failure) parts.push(h("div", { class: "jp-pipeline-error", text: info.failure }));
    if (info.condition) parts.push(section("Condition", h("div", { class: "jp-pipeline-outcome", "data-outcome": info.condition.outcome, text: info.condition.text })));
    if (info.register_model) {
      const r = info.register_model;
      parts.push(section("Model package", h("div", { text: `${r.Group} version ${r.Version} (${r.ModelApprovalStatus})` })));
    }
    if (info.transform) parts.push(section("Transform", h("div", { text: `${info.transform.Rows} rows in batches of ${info.transform.BatchSize}` })));
    if (info.inputs && info.inputs.length) parts.push(section("Inputs", valueTable(info.inputs)));
    if (info.outputs && info.outputs.length) parts.push(section("Outputs", valueTable(info.outputs)));
    if (info.stdout) parts.push(section("stdout", h("pre", { class: "jp-pipeline-stream", text: info.stdout })));
    if (info.stderr) parts.push(section("stderr", h("pre", { class: "jp-pipeline-stream", text: info.stderr })));
    if (info.traceback) parts.push(section("Traceback", h("pre", { class: "jp-pipeline-traceback", text: info.traceback })));
    if (info.code) parts.push(section("Code", h("pre", { class: "jp-pipeline-code", text: info.code })));
    details.replaceChildren(...parts);
  }

  graph.addEventListener("click", (event) => {
    const node = event.target.closest("g[data-step]");
    if (!node) return;
    const name = node.getAttribute("data-step");
    model.set("selected", model.get("selected") === name ? "" : name);
    model.save_changes();
    paintSteps();
  });

  const listeners = {
    "change:svg": drawSvg, "change:steps": paintSteps, "change:header": drawHeader,
    "change:legend": drawLegend, "change:details": drawDetails, "change:selected": paintSteps,
  };
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);
  drawSvg();
  drawHeader();
  drawLegend();
  drawDetails();
  // `el` may not be in the page yet: fit the parameter note once there is geometry.
  requestAnimationFrame(paintParameters);
  // A display update re-creates the view: the old one must stop listening and ticking.
  return () => {
    clearInterval(ticker);
    for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
  };
}

export default { render };
