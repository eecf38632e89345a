// The jupyter_pipelines pipeline editor: an anywidget front end (React Flow canvas, CodeMirror).
// The kernel's Pipeline is the one truth (docs/editor-protocol.md): this canvas never changes the
// pipeline itself; it sends commands and redraws from the synced traits.
//
// DOM contract (tests rely on it): the edit canvas `[data-pipeline-editor]`; step nodes
// `[data-step][data-kind][data-status]` (+ `data-outcome` for an evaluated condition); handles
// `[data-handle="in"|"out"|"True"|"False"]`; palette items `[data-palette-kind]`; the side panel
// `[data-editor-for="<step>"]` with its code editor `[data-editor-code]`; the message bar
// `[data-editor-message]`; buttons `[data-action=...]`.
import "@xyflow/react/dist/style.css";
import "../../../jupyter_pipelines/view/static/widget.css";
import "./editor.css";
import { createRoot } from "react-dom/client";
import { createContext, memo, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import {
  Background, Controls, Handle, MarkerType, MiniMap, Position, ReactFlow, ReactFlowProvider,
  applyEdgeChanges, applyNodeChanges, useReactFlow, useUpdateNodeInternals,
} from "@xyflow/react";
import { makeClient, useTrait } from "./model.js";
import { NodeShape, SHAPES, ShapeIcon } from "./shapes.jsx";
import { StepPanel } from "./panel.jsx";
import { Header } from "./header.jsx";
import { ParametersPanel } from "./parameters.jsx";
import { CellsButtons, CellsNotices, useCells } from "./cells.jsx";

const PALETTE_MIME = "application/x-jupyter-pipelines-kind";
const MINIMAP_AFTER = 30;
const STATUSES = ["Pending", "Executing", "Succeeded", "Cached", "Failed", "Stopped", "Skipped"];
const EDGE_COLOURS = { True: "#15803d", False: "#b91c1c", data: "#64748b", order: "#94a3b8" };

const Ctx = createContext(null);

// Does a step of ``graph`` (Graphviz's centres and sizes) lie outside the canvas's visible pane?
function outOfView(root, graph, { x, y, zoom }) {
  const pane = root && root.querySelector(".react-flow__pane");
  if (!pane) return false;
  const { width, height } = pane.getBoundingClientRect();
  return (graph.nodes || []).some((n) => {
    const left = (n.x - n.w / 2) * zoom + x, top = (n.y - n.h / 2) * zoom + y;
    return left < 0 || top < 0 || left + n.w * zoom > width || top + n.h * zoom > height;
  });
}

function typingIn(target) {
  return !!(target && target.closest && target.closest("input, textarea, select, [contenteditable='true'], .cm-editor"));
}

const StepNode = memo(function StepNode({ data, selected }) {
  const { steps, editable } = useContext(Ctx);
  const n = data.node;
  const state = steps[n.name] || { status: "Pending", label: "Pending" };
  const condition = n.kind === "condition";
  const kindLabel = (n.label || "").split("\n")[1] || n.kind;
  const title = `${n.name} (${kindLabel}): ${state.failure || state.status}`;
  // As many text lines as Graphviz made room for (a structure layout has only the name's).
  const lines = n.h >= 66 ? 4 : n.h >= 50 ? 3 : 2;
  const outcome = condition && state.outcome_text;
  return (
    <div className={`jp-editor-node${selected ? " jp-selected" : ""}`} data-step={n.name} data-kind={n.kind}
      data-status={state.status} data-outcome={state.outcome || undefined} title={title}
      style={{ width: n.w, height: n.h }}>
      <NodeShape shape={n.shape || SHAPES[n.kind] || "box"} w={n.w} h={n.h} dashed={n.kind === "aws"} />
      <Handle type="target" position={Position.Top} id="in" data-handle="in" isConnectable={editable} />
      <div className="jp-editor-node-text" data-lines={lines}>
        <div className="jp-editor-node-name">{n.name}</div>
        {lines >= 3 && <div className="jp-editor-node-kind">{kindLabel}</div>}
        {!(outcome && lines < 4) && <div className="jp-editor-node-status" data-role="status">{state.label || state.status}</div>}
        {outcome && <div className="jp-editor-node-outcome" data-role="outcome">{state.outcome_text}</div>}
      </div>
      {n.unknown && <span className="jp-editor-node-warn" title={n.unknown}>!</span>}
      {condition ? (
        <>
          <Handle type="source" position={Position.Bottom} id="True" data-handle="True" isConnectable={editable}
            className="jp-editor-handle-true" style={{ left: "30%" }} title="True: drag to a step run when the condition holds" />
          <Handle type="source" position={Position.Bottom} id="False" data-handle="False" isConnectable={editable}
            className="jp-editor-handle-false" style={{ left: "70%" }} title="False: drag to a step run otherwise" />
        </>
      ) : (
        <Handle type="source" position={Position.Bottom} id="out" data-handle="out" isConnectable={editable}
          title="Drag to a step that reads these outputs or runs after this one" />
      )}
    </div>
  );
});
const NODE_TYPES = { step: StepNode };

function buildNodes(graph, selected) {
  return (graph?.nodes || []).map((n) => ({
    id: n.name,
    type: "step",
    position: { x: n.x - n.w / 2, y: n.y - n.h / 2 },
    width: n.w,
    height: n.h,
    data: { node: n },
    selected: n.name === selected,
  }));
}

// One edge per pair of steps, as the DAG view draws them: a branch beats data beats order.
function buildEdges(graph, kindOf) {
  const merged = new Map();
  for (const e of graph?.edges || []) {
    const key = `${e.source}->${e.target}`;
    if (!merged.has(key)) merged.set(key, []);
    merged.get(key).push(e);
  }
  const edges = [];
  for (const [id, list] of merged) {
    const { source, target } = list[0];
    const branch = list.find((e) => e.kind === "True" || e.kind === "False");
    const data = list.filter((e) => e.kind === "data");
    const kind = branch ? branch.kind : data.length ? "data" : "order";
    const names = [...new Set(data.flatMap((e) => e.names || []).map((x) => (x.includes(".") ? x.split(".").slice(1).join(".") : x)))].sort();
    const label = branch ? branch.kind : data.length ? names.join(", ") : "after";
    const colour = EDGE_COLOURS[kind];
    const fromCondition = kindOf(source) === "condition";
    edges.push({
      id, source, target,
      sourceHandle: branch ? branch.kind : fromCondition ? undefined : "out",
      targetHandle: "in",
      label,
      className: `jp-editor-edge jp-editor-edge-${kind}`,
      style: { stroke: colour, strokeWidth: branch ? 2.2 : 1.4, strokeDasharray: kind === "order" ? "5 4" : undefined },
      labelStyle: { fill: colour, fontWeight: branch ? 700 : 400, fontSize: 10 },
      labelBgStyle: { fill: "#ffffff", fillOpacity: 0.85 },
      labelBgPadding: [3, 1],
      markerEnd: { type: MarkerType.ArrowClosed, color: colour, width: 16, height: 16 },
      data: { kind, names },
    });
  }
  return edges;
}

function Palette({ kinds, editable, add }) {
  const items = [...kinds.map((k) => ({ kind: k.kind, shape: k.shape, title: `SageMaker ${k.type} step` })),
    { kind: "parameter", shape: "note", title: "A pipeline parameter" }];
  return (
    <div className="jp-editor-palette" aria-label="Step palette">
      <div className="jp-pipeline-legend-title">Add</div>
      {items.map((item) => (
        <div key={item.kind} className="jp-editor-palette-item" data-palette-kind={item.kind} title={`${item.title}: drag onto the canvas, or click`}
          draggable={editable} role="button" tabIndex={0} aria-disabled={!editable}
          onDragStart={(e) => { e.dataTransfer.setData(PALETTE_MIME, item.kind); e.dataTransfer.setData("text/plain", item.kind); e.dataTransfer.effectAllowed = "copy"; }}
          onClick={() => editable && add(item.kind)}
          onKeyDown={(e) => { if (editable && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); add(item.kind); } }}>
          <ShapeIcon shape={item.shape} /><span>{item.kind}</span>
        </div>
      ))}
    </div>
  );
}

function Legend({ legend }) {
  return (
    <div className="jp-pipeline-legend jp-editor-legend">
      {legend.length > 0 && <div className="jp-pipeline-legend-title">Step kinds</div>}
      {legend.map((item) => (
        <div key={item.kind} className="jp-pipeline-legend-item" title={`SageMaker ${item.type} step`}>
          <span className="jp-pipeline-legend-icon"><ShapeIcon shape={item.shape} /></span><span>{item.kind}</span>
        </div>
      ))}
      <div className="jp-pipeline-legend-statuses">
        {STATUSES.map((s) => <span key={s} className="jp-pipeline-chip" data-status={s}>{s}</span>)}
      </div>
    </div>
  );
}

function Chooser({ chooser, onDone }) {
  const [picked, setPicked] = useState([]);
  const [orderOnly, setOrderOnly] = useState(false);
  const toggle = (name) => { setOrderOnly(false); setPicked((p) => (p.includes(name) ? p.filter((x) => x !== name) : [...p, name])); };
  const ok = () => onDone(orderOnly ? [] : chooser.outputs.filter((o) => picked.includes(o)));
  return (
    <div className="jp-editor-dialog" data-editor-chooser="" role="dialog" aria-label="What flows along this edge"
      onKeyDown={(e) => { if (e.key === "Escape") onDone(null); }}>
      <div className="jp-editor-dialog-title"><b>{chooser.source}</b> → <b>{chooser.target}</b>: what does {chooser.target} read?</div>
      {chooser.outputs.map((name) => (
        <label key={name} className="jp-editor-check">
          <input type="checkbox" data-output={name} checked={!orderOnly && picked.includes(name)} onChange={() => toggle(name)} />
          <code>{name}</code>
        </label>
      ))}
      <label className="jp-editor-check">
        <input type="checkbox" data-output="" data-order-only="" checked={orderOnly} onChange={(e) => { setOrderOnly(e.target.checked); if (e.target.checked) setPicked([]); }} />
        <span>order only (run after, read nothing)</span>
      </label>
      <div className="jp-editor-dialog-buttons">
        <button data-action="connect-ok" disabled={!orderOnly && picked.length === 0} onClick={ok} autoFocus>Connect</button>
        <button data-action="connect-cancel" onClick={() => onDone(null)}>Cancel</button>
      </div>
    </div>
  );
}

function ConfirmDialog({ question, onAnswer }) {
  return (
    <div className="jp-editor-overlay">
      <div className="jp-editor-dialog" data-editor-confirm="" role="alertdialog" aria-label="Confirm"
        onKeyDown={(e) => { if (e.key === "Escape") onAnswer(false); }}>
        <div className="jp-editor-dialog-title">{question}</div>
        <div className="jp-editor-dialog-buttons">
          <button data-action="confirm" className="jp-editor-danger" onClick={() => onAnswer(true)} autoFocus>Yes, go ahead</button>
          <button data-action="cancel" onClick={() => onAnswer(false)}>Cancel</button>
        </div>
      </div>
    </div>
  );
}

function RunForm({ parameters, values, setValues, onRun, onClose }) {
  return (
    <div className="jp-editor-dialog jp-editor-run-form" data-editor-run-form="" role="dialog" aria-label="Run with parameters">
      <div className="jp-editor-dialog-title">Run with parameter values (empty: the default)</div>
      {parameters.length === 0 && <div className="jp-pipeline-times">This pipeline has no parameters.</div>}
      {parameters.map((p) => (
        <label key={p.name} className="jp-editor-field">
          <span>{p.name} <small>{p.type}</small></span>
          {p.enum && p.enum.length ? (
            <select data-run-param={p.name} value={values[p.name] ?? ""} onChange={(e) => setValues({ ...values, [p.name]: e.target.value })}>
              <option value="">default ({String(p.default)})</option>
              {p.enum.map((v) => <option key={String(v)} value={String(v)}>{String(v)}</option>)}
            </select>
          ) : (
            <input type="text" data-run-param={p.name} value={values[p.name] ?? ""} placeholder={p.default == null ? "(required)" : String(p.default)}
              onChange={(e) => setValues({ ...values, [p.name]: e.target.value })}
              onKeyDown={(e) => { if (e.key === "Enter") onRun(); }} />
          )}
        </label>
      ))}
      <div className="jp-editor-dialog-buttons">
        <button data-action="run-start" onClick={onRun}>Run</button>
        <button data-action="run-close" onClick={onClose}>Close</button>
      </div>
    </div>
  );
}

function Editor({ model, flowId }) {
  const client = useMemo(() => makeClient(model), [model]);
  useEffect(() => () => client.close(), [client]);
  const name = useTrait(model, "name") || "";
  const graph = useTrait(model, "graph") || { nodes: [], edges: [] };
  const parameters = useTrait(model, "parameters") || [];
  const steps = useTrait(model, "steps") || {};
  const header = useTrait(model, "header") || {};
  const legend = useTrait(model, "legend") || [];
  const details = useTrait(model, "details") || {};
  const selected = useTrait(model, "selected") || "";
  const kinds = useTrait(model, "kinds") || [];
  const mode = useTrait(model, "mode") || "edit";
  const canUndo = !!useTrait(model, "can_undo");
  const canRedo = !!useTrait(model, "can_redo");
  const source = useTrait(model, "source") || "notebook";
  const editable = mode !== "view";

  const rootRef = useRef(null);
  const canvasRef = useRef(null);
  const flow = useReactFlow();
  const [message, setMessage] = useState(null);
  const [confirm, setConfirm] = useState(null);
  const [chooser, setChooser] = useState(null);
  const [runOpen, setRunOpen] = useState(false);
  const [runValues, setRunValues] = useState({});
  const [selectedEdge, setSelectedEdge] = useState(null);
  const [nodes, setNodes] = useState(() => buildNodes(graph, selected));
  const [edges, setEdges] = useState([]);

  const showMessage = useCallback((kind, text) => setMessage(text ? { kind, text, at: Date.now() } : null), []);
  useEffect(() => {
    if (!message || message.kind === "error") return undefined;
    const timer = setTimeout(() => setMessage((m) => (m === message ? null : m)), 5000);
    return () => clearTimeout(timer);
  }, [message]);

  const askConfirm = useCallback((question) => new Promise((resolve) => setConfirm({ question, resolve })), []);

  // A command; a `confirm` reply asks in-page and sends it again with `confirm: true`.
  const cmd = useCallback(async (op, fields = {}, opts = {}) => {
    let reply = await client.send(op, fields);
    if (!reply.ok && reply.confirm) {
      const yes = await askConfirm(reply.confirm);
      if (!yes) return reply;
      reply = await client.send(op, { ...fields, confirm: true });
    }
    if (!opts.quiet) {
      if (!reply.ok && reply.error) showMessage("error", reply.error);
      else if (reply.ok) setMessage((m) => (m && m.kind === "error" ? null : m));
    }
    return reply;
  }, [client, askConfirm, showMessage]);

  const select = useCallback((step) => {
    if (model.get("selected") !== step) {
      model.set("selected", step);
      model.save_changes();
    }
  }, [model]);

  const add = useCallback((kind) => {
    if (kind === "parameter") return cmd("add_parameter");
    return cmd("add_step", { kind }).then((reply) => { if (reply.ok && reply.step) select(reply.step); });
  }, [cmd, select]);

  // Redraw from the kernel's graph: nodes at Graphviz's places; fit when the set of steps changed.
  const shapeKey = useRef("");
  const builtFrom = useRef(graph);  // the graph the nodes were built from (the first render's)
  const updateNodeInternals = useUpdateNodeInternals();
  useEffect(() => {
    if (builtFrom.current !== graph) {
      builtFrom.current = graph;
      // Keep what React Flow measured of a node whose size did not change, so its edges stay drawn.
      setNodes((old) => {
        const prev = new Map(old.map((n) => [n.id, n]));
        return buildNodes(graph, model.get("selected")).map((n) => {
          const p = prev.get(n.id);
          return p && p.measured && p.width === n.width && p.height === n.height ? { ...n, measured: p.measured } : n;
        });
      });
    }
    const ids = (graph.nodes || []).map((n) => n.name);
    requestAnimationFrame(() => updateNodeInternals(ids));
    const byName = new Map((graph.nodes || []).map((n) => [n.name, n.kind]));
    setEdges((old) => {
      const chosen = new Set(old.filter((e) => e.selected).map((e) => e.id));
      return buildEdges(graph, (s) => byName.get(s)).map((e) => ({ ...e, selected: chosen.has(e.id) }));
    });
    setSelectedEdge((e) => (e && (graph.edges || []).some((x) => x.source === e.source && x.target === e.target) ? e : null));
    // Fit again when the steps change, or when Graphviz's new layout put a step out of view (a
    // connect can make the drawing taller); otherwise keep the view the user chose.
    const key = (graph.nodes || []).map((n) => n.name).sort().join("\u0000");
    const fit = () => flow.fitView({ padding: 0.12, maxZoom: 1.25 });
    if (key !== shapeKey.current) {
      shapeKey.current = key;
      requestAnimationFrame(fit);
    } else {
      requestAnimationFrame(() => { if (outOfView(rootRef.current, graph, flow.getViewport())) fit(); });
    }
  }, [graph]);
  useEffect(() => {
    setNodes((nds) => nds.map((n) => (n.selected === (n.id === selected) ? n : { ...n, selected: n.id === selected })));
    if (selected) setSelectedEdge(null);
  }, [selected]);

  const onNodesChange = useCallback((changes) => setNodes((nds) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), nds)), []);
  const onEdgesChange = useCallback((changes) => setEdges((eds) => applyEdgeChanges(changes.filter((c) => c.type !== "remove"), eds)), []);

  const onConnect = useCallback((conn) => {
    const { source, target, sourceHandle } = conn;
    if (sourceHandle === "True" || sourceHandle === "False") {
      cmd("connect", { source, target, handle: sourceHandle });
      return;
    }
    const node = (model.get("graph")?.nodes || []).find((n) => n.name === source);
    const outputs = node?.outputs || [];
    if (outputs.length) setChooser({ source, target, outputs });
    else cmd("connect", { source, target, handle: "out", names: [] });
  }, [cmd, model]);

  const deleteSelection = useCallback(() => {
    if (!editable) return;
    if (selectedEdge) {
      cmd("disconnect", { source: selectedEdge.source, target: selectedEdge.target });
    } else if (model.get("selected")) {
      const step = model.get("selected");
      cmd("delete_step", { step }).then((reply) => { if (reply.ok && model.get("selected") === step) select(""); });
    }
  }, [cmd, editable, model, select, selectedEdge]);

  const onKeyDown = useCallback((e) => {
    if (typingIn(e.target) || confirm || chooser) return;
    const mod = e.ctrlKey || e.metaKey;
    if ((e.key === "Delete" || e.key === "Backspace") && !mod) {
      // Only on the canvas: a Backspace on a panel's button must not delete the step.
      if (!e.target.closest("[data-pipeline-editor]")) return;
      if (!selectedEdge && !model.get("selected")) return;
      e.preventDefault(); e.stopPropagation();
      deleteSelection();
    } else if (mod && !e.altKey && (e.key === "z" || e.key === "Z")) {
      e.preventDefault(); e.stopPropagation();
      if (e.shiftKey) { if (model.get("can_redo")) cmd("redo"); } else if (model.get("can_undo")) cmd("undo");
    } else if (mod && !e.altKey && (e.key === "y" || e.key === "Y")) {
      e.preventDefault(); e.stopPropagation();
      if (model.get("can_redo")) cmd("redo");
    }
  }, [cmd, confirm, chooser, deleteSelection, model, selectedEdge]);

  const onDragOver = useCallback((e) => {
    if (!editable || !e.dataTransfer.types.includes(PALETTE_MIME)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  }, [editable]);
  const onDrop = useCallback((e) => {
    const kind = e.dataTransfer.getData(PALETTE_MIME);
    if (!kind || !editable) return;
    e.preventDefault();
    add(kind);
  }, [add, editable]);

  const byName = useMemo(() => new Map((graph.nodes || []).map((n) => [n.name, n])), [graph]);
  const current = selected ? byName.get(selected) : null;
  const ctx = useMemo(() => ({ steps, editable }), [steps, editable]);
  const height = Math.round(Math.min(680, Math.max(360, (graph.height || 300) * 1.05 + 60)));
  const cells = useCells({ model, rootRef, cmd, name, showMessage });
  const definition = source.startsWith("definition:") ? source.slice("definition:".length) : "";

  return (
    <Ctx.Provider value={ctx}>
      <div className="jp-pipeline jp-pipeline-editor" ref={rootRef} data-mode={mode} onKeyDown={onKeyDown}>
        <Header name={name} header={header} />
        <div className="jp-editor-toolbar" role="toolbar">
          <button data-action="undo" disabled={!editable || !canUndo} onClick={() => cmd("undo")} title="Undo (Ctrl+Z)">↶ Undo</button>
          <button data-action="redo" disabled={!editable || !canRedo} onClick={() => cmd("redo")} title="Redo (Ctrl+Shift+Z)">↷ Redo</button>
          <button data-action="delete" disabled={!editable || (!selected && !selectedEdge)} onClick={deleteSelection}
            title="Delete the selected step or edge (Delete)">✕ Delete</button>
          <button data-action="fit" onClick={() => flow.fitView({ padding: 0.12, maxZoom: 1.25, duration: 200 })} title="Fit the graph in view">⤢ Fit</button>
          <CellsButtons cells={cells} />
          <span className="jp-editor-spacer" />
          {definition && <button data-action="save-definition" title={`Validate and write back ${definition}`}
            onClick={() => cmd("save_definition").then((r) => r.ok && showMessage("info", `Saved ${definition}`))}>Save definition</button>}
          <button data-action="run" className="jp-editor-primary" disabled={header.status === "Executing"}
            onClick={() => {
              const overrides = Object.fromEntries(Object.entries(runValues).filter(([k, v]) => v !== "" && parameters.some((p) => p.name === k)));
              cmd("run", { parameters: overrides });
            }} title="Run the pipeline">▶ Run</button>
          <button data-action="run-options" aria-expanded={runOpen} onClick={() => setRunOpen(!runOpen)} title="Parameter values for the run">⚙{Object.values(runValues).some(Boolean) ? " •" : ""}</button>
        </div>
        {runOpen && <RunForm parameters={parameters} values={runValues} setValues={setRunValues}
          onClose={() => setRunOpen(false)}
          onRun={() => {
            const overrides = Object.fromEntries(Object.entries(runValues).filter(([k, v]) => v !== "" && parameters.some((p) => p.name === k)));
            cmd("run", { parameters: overrides });
            setRunOpen(false);
          }} />}
        <div className="jp-editor-body">
          <div className="jp-editor-left">
            {editable && <Palette kinds={kinds} editable={editable} add={add} />}
            <Legend legend={legend.length ? legend : kinds} />
          </div>
          <div className="jp-editor-canvas" data-pipeline-editor="" data-lm-suppress-shortcuts="true" ref={canvasRef}
            tabIndex={-1} style={{ height }} onDragOver={onDragOver} onDrop={onDrop}
            onPointerDownCapture={(e) => { if (!typingIn(e.target) && !e.target.closest("button")) canvasRef.current?.focus({ preventScroll: true }); }}>
            <div className="jp-editor-notices">
              {message && (
                <div className="jp-editor-message" data-editor-message="" data-kind={message.kind} role={message.kind === "error" ? "alert" : "status"}>
                  <span>{message.text}</span>
                  <button className="jp-pipeline-close" title="Dismiss" onClick={() => setMessage(null)}>×</button>
                </div>
              )}
              <CellsNotices cells={cells} />
            </div>
            <ReactFlow
              id={flowId}
              nodes={nodes} edges={edges} nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={onConnect}
              isValidConnection={(c) => editable && c.source !== c.target && c.targetHandle === "in"}
              onNodeClick={(_, node) => { setSelectedEdge(null); select(node.id); }}
              onEdgeClick={(_, edge) => { setSelectedEdge({ source: edge.source, target: edge.target }); select(""); }}
              onPaneClick={() => { setSelectedEdge(null); select(""); }}
              deleteKeyCode={null} selectionKeyCode={null} multiSelectionKeyCode={null}
              nodesConnectable={editable} nodesDraggable={false} edgesFocusable elementsSelectable
              minZoom={0.1} maxZoom={2.5} fitView fitViewOptions={{ padding: 0.12, maxZoom: 1.25 }}
              connectionRadius={28}
            >
              <Background gap={16} size={1} color="#e5e7eb" />
              <Controls showInteractive={false} />
              {nodes.length > MINIMAP_AFTER && <MiniMap pannable zoomable nodeStrokeWidth={2} />}
            </ReactFlow>
            {chooser && (
              <div className="jp-editor-overlay">
                <Chooser chooser={chooser} onDone={(names) => {
                  const c = chooser;
                  setChooser(null);
                  if (names) cmd("connect", { source: c.source, target: c.target, handle: "out", names });
                }} />
              </div>
            )}
          </div>
          <div className="jp-editor-side">
            {current ? (
              <StepPanel key={current.name} node={current} kinds={kinds} parameters={parameters} details={details}
                state={steps[current.name] || { status: "Pending", label: "Pending" }} editable={editable}
                cmd={cmd} select={select} showMessage={showMessage} />
            ) : (
              <div className="jp-editor-hint">
                {selectedEdge
                  ? <span data-editor-edge={`${selectedEdge.source}->${selectedEdge.target}`}>Edge <b>{selectedEdge.source}</b> → <b>{selectedEdge.target}</b> selected: Delete removes what it declares.</span>
                  : editable ? "Drag a kind from the palette onto the canvas; drag from a step's bottom handle to another's top handle to connect them; click a step to edit it." : "Click a step to see its last run."}
              </div>
            )}
          </div>
        </div>
        <ParametersPanel parameters={parameters} editable={editable} cmd={cmd} showMessage={showMessage} />
        {confirm && <ConfirmDialog question={confirm.question} onAnswer={(yes) => { const c = confirm; setConfirm(null); c.resolve(yes); }} />}
      </div>
    </Ctx.Provider>
  );
}

let views = 0;  // each view's React Flow gets its own id (its SVG markers' ids derive from it)

function render({ model, el }) {
  const container = document.createElement("div");
  container.className = "jp-pipeline-editor-host";
  el.append(container);
  const root = createRoot(container);
  const flowId = `jp-pipeline-editor-${++views}`;
  root.render(<ReactFlowProvider><Editor model={model} flowId={flowId} /></ReactFlowProvider>);
  return () => {
    root.unmount();
    container.remove();
  };
}

export default { render };
