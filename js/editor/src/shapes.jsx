import { SHAPE_ICON as VIEW_ICONS } from "../../../jupyter_pipelines/view/static/widget.js";

// The kinds' shapes, as in the DAG view (Graphviz shapes), drawn to fill a w x h box.
export const SHAPES = {
  processing: "box", training: "box3d", condition: "hexagon", fail: "octagon",
  "register-model": "cylinder", "create-model": "component", transform: "parallelogram",
};

// Small legend/palette icons: the DAG view's (24 x 20), plus the parameter's note.
export const SHAPE_ICON = {
  ...VIEW_ICONS,
  note: '<path d="M3 2h13l5 5v11H3z"/><path d="M16 2v5h5"/>',
};

export function ShapeIcon({ shape }) {
  return <svg viewBox="0 0 24 20" width="22" height="18" className="jp-editor-icon"
    dangerouslySetInnerHTML={{ __html: SHAPE_ICON[shape] || SHAPE_ICON.box }} />;
}

// The node's outline in its own w x h coordinates (1 unit = 1 px at zoom 1).
export function NodeShape({ shape, w, h, dashed }) {
  const p = 1.5; // half the stroke, so the outline stays inside the box
  const W = w - p, H = h - p;
  let fill = null, lines = null;
  switch (shape) {
    case "box3d": {
      const d = Math.min(8, w / 10);
      fill = <path d={`M${p} ${p + d}H${W - d}V${H}H${p}Z`} />;
      lines = <path className="jp-editor-line" fill="none" d={`M${p} ${p + d}L${p + d} ${p}H${W}V${H - d}L${W - d} ${H}M${W - d} ${p + d}L${W} ${p}`} />;
      break;
    }
    case "hexagon": {
      const d = Math.min(h / 2, w / 6);
      fill = <path d={`M${p + d} ${p}H${W - d}L${W} ${h / 2}L${W - d} ${H}H${p + d}L${p} ${h / 2}Z`} />;
      break;
    }
    case "octagon": {
      const d = Math.min(h / 3.5, w / 6);
      fill = <path d={`M${p + d} ${p}H${W - d}L${W} ${p + d}V${H - d}L${W - d} ${H}H${p + d}L${p} ${H - d}V${p + d}Z`} />;
      break;
    }
    case "cylinder": {
      const r = Math.min(8, h / 6);
      fill = <path d={`M${p} ${p + r}A${(W - p) / 2} ${r} 0 0 1 ${W} ${p + r}V${H - r}A${(W - p) / 2} ${r} 0 0 1 ${p} ${H - r}Z`} />;
      lines = <path className="jp-editor-line" fill="none" d={`M${p} ${p + r}A${(W - p) / 2} ${r} 0 0 0 ${W} ${p + r}`} />;
      break;
    }
    case "component": {
      const t = 8;
      fill = <path d={`M${p + t / 2} ${p}H${W}V${H}H${p + t / 2}Z`} />;
      lines = <g className="jp-editor-tabs">
        <rect x={p} y={h * 0.22} width={t} height={6} />
        <rect x={p} y={h * 0.66} width={t} height={6} />
      </g>;
      break;
    }
    case "parallelogram": {
      const d = Math.min(h / 2, w / 8);
      fill = <path d={`M${p + d} ${p}H${W}L${W - d} ${H}H${p}Z`} />;
      break;
    }
    default:
      fill = <rect x={p} y={p} width={W - p} height={H - p} rx={6} />;
  }
  return (
    <svg className="jp-editor-shape" width={w} height={h} viewBox={`0 0 ${w} ${h}`}
      data-dashed={dashed ? "true" : undefined} aria-hidden="true">
      {fill}{lines}
    </svg>
  );
}
