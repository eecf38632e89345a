// The notebook's cells follow the pipeline: each `cells` revision goes to the notebook front end
// (the JupyterLab / Notebook 7 extension) as a DOM event on the widget's element. Without one
// (nobody called preventDefault), the canvas offers "Save as notebook" and "Copy cells".
import { useEffect, useRef, useState } from "react";

export function useCells({ model, rootRef, cmd, name, showMessage }) {
  const [claimed, setClaimed] = useState(false);     // a notebook front end took a revision
  const [conflicts, setConflicts] = useState(null);  // {revision, keys}
  const [saving, setSaving] = useState(null);        // the file name being asked for
  const [fallback, setFallback] = useState(null);    // text the clipboard refused
  const latest = useRef(null);

  const dispatch = (cells, force) => {
    const root = rootRef.current;
    if (!cells || !root) return;
    const revision = cells.revision;
    latest.current = revision;
    const respond = (result) => {
      if (!result || result.revision !== latest.current) return;  // a stale revision's answer
      const keys = result.conflicts || [];
      setConflicts(keys.length ? { revision: result.revision, keys } : null);
    };
    const event = new CustomEvent("jupyter-pipelines:cells", {
      bubbles: true, cancelable: true,
      detail: { revision, cells: cells.cells || [], removed: cells.removed || [], force, respond },
    });
    const unclaimed = root.dispatchEvent(event);
    setClaimed(!unclaimed);
    if (!force) setConflicts(null);
  };

  // Is a notebook front end there? Ask it once the canvas is in the page, with an empty
  // revision 0 (a probe: nothing to apply), so "Save as notebook" / "Copy cells" show only where
  // nobody follows the canvas, from the start, not after the first edit.
  useEffect(() => {
    let frame = 0, tries = 0;
    const probe = () => {
      const root = rootRef.current;
      if (!root || !root.isConnected) {
        if (tries++ < 600) frame = requestAnimationFrame(probe);  // not attached yet (~10 s)
        return;
      }
      const event = new CustomEvent("jupyter-pipelines:cells", {
        bubbles: true, cancelable: true,
        detail: { revision: 0, cells: [], removed: [], force: false, respond: () => {} },
      });
      if (latest.current === null) setClaimed(!root.dispatchEvent(event));
    };
    probe();
    return () => cancelAnimationFrame(frame);
  }, [model]);

  useEffect(() => {
    const onCells = () => dispatch(model.get("cells"), false);
    model.on("change:cells", onCells);
    return () => model.off("change:cells", onCells);
  }, [model]);

  const copy = () => cmd("copy_cells").then(async (reply) => {
    if (!reply.ok) return;
    const text = reply.text || "";
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      setFallback(null);
      showMessage("info", "The cells are on the clipboard.");
    } catch (err) {
      setFallback(text);
    }
  });

  const save = () => {
    const path = (saving || "").trim();
    if (!path) return;
    setSaving(null);
    cmd("save_notebook", { path }).then((reply) => { if (reply.ok) showMessage("info", `Saved ${reply.path || path}`); });
  };

  const overwrite = () => {
    const cells = model.get("cells");
    if (conflicts && cells && cells.revision === conflicts.revision) dispatch(cells, true);
    else setConflicts(null);
  };

  return { claimed, conflicts, setConflicts, saving, setSaving, fallback, setFallback, copy, save, overwrite, name };
}

// In the toolbar (no layout shift when they come and go).
export function CellsButtons({ cells }) {
  const { claimed, saving, setSaving, copy, save, name } = cells;
  if (claimed) return null;
  return (
    <span className="jp-editor-cellsbar" data-editor-cells="" title="No notebook front end follows this editor">
      <button data-action="save-notebook" onClick={() => setSaving(`${name || "pipeline"}-edited.ipynb`)}>Save as notebook…</button>
      <button data-action="copy-cells" onClick={copy}>Copy cells</button>
      {saving != null && (
        <span className="jp-editor-saveas" data-editor-saveas="">
          <input type="text" aria-label="Notebook file name" value={saving} autoFocus spellCheck={false}
            onChange={(e) => setSaving(e.target.value)}
            onKeyDown={(e) => { if (e.key === "Enter") save(); if (e.key === "Escape") setSaving(null); }} />
          <button data-action="save-notebook-ok" onClick={save}>Save</button>
          <button data-action="save-notebook-cancel" onClick={() => setSaving(null)}>Cancel</button>
        </span>
      )}
    </span>
  );
}

// Over the canvas's top edge, with the message bar.
export function CellsNotices({ cells }) {
  const { conflicts, setConflicts, fallback, setFallback, overwrite } = cells;
  return (
    <>
      {conflicts && (
        <div className="jp-editor-conflicts" data-editor-conflicts="" role="alert">
          <span>These cells were edited in the notebook meanwhile and were not updated: {conflicts.keys.map((k) => <code key={k}>{k}</code>)}</span>
          <button data-action="overwrite" className="jp-editor-danger" onClick={overwrite}>Overwrite</button>
          <button data-action="keep" onClick={() => setConflicts(null)}>Keep the notebook's</button>
        </div>
      )}
      {fallback != null && (
        <div className="jp-editor-copy-fallback" data-editor-copy-fallback="">
          <div>The browser refused the clipboard: select and copy the cells here.
            <button className="jp-pipeline-close" title="Close" onClick={() => setFallback(null)}>×</button></div>
          <textarea readOnly value={fallback} rows={8} ref={(t) => t && t.select()} />
        </div>
      )}
    </>
  );
}
