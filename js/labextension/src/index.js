// jupyter-pipelines-sync: the notebook side of the pipeline editor's "cells" channel.
//
// The editor (an anywidget in a cell's output, see docs/editor-protocol.md, "Cells (kernel →
// notebook)") cannot edit notebook cells itself. It dispatches, on its own element,
//   new CustomEvent("jupyter-pipelines:cells",
//                   {bubbles: true, cancelable: true, detail: {revision, cells, removed, force, respond}})
// This plugin calls preventDefault() on it (so the editor knows a notebook front end is there),
// applies the edits to the model of the notebook whose panel holds the event's target, as one
// transaction, and answers with respond({revision, applied: [keys], conflicts: [keys]}).
//
// Only cells that define the pipeline are ever touched: a code cell whose first line is
// `%%step NAME` (NAME followed by whitespace or the end of the line) has key "step:NAME", one whose
// first line is `%%parameters` has key "parameters". A cell is rewritten only if its text is the
// revision's `previous` (or already its `text`); otherwise it was edited meanwhile, is left alone
// and reported as a conflict, unless the revision says `force`.
//
// Plain JavaScript (no TypeScript step); it needs only INotebookTracker, which JupyterLab 4 and
// Notebook 7 both provide.

import { INotebookTracker } from '@jupyterlab/notebook';

import { applyRevision, EVENT } from './apply.js';

function respondLater(detail, answer) {
  if (typeof detail.respond !== 'function') {
    return;
  }
  // After dispatchEvent has returned, as the editor expects an answer "later".
  Promise.resolve().then(() => {
    try {
      detail.respond(answer);
    } catch (error) {
      console.error('jupyter-pipelines-sync: respond() failed', error);
    }
  });
}

const plugin = {
  id: 'jupyter-pipelines-sync:plugin',
  description: 'Applies the jupyter_pipelines editor\'s cell edits to the notebook holding it.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app, tracker) => {
    const onCells = event => {
      const detail = event.detail;
      const target = event.target;
      if (!detail || typeof detail !== 'object' || !(target instanceof Node)) {
        return;
      }
      const panel = tracker.find(widget => widget.node.contains(target));
      const model = panel && panel.content && panel.content.model;
      if (!model) {
        // Not inside a notebook we know (e.g. an output opened in its own view): leave the event
        // alone, so the editor offers "Save as notebook" / "Copy cells" instead.
        return;
      }
      event.preventDefault();
      const revision = detail.revision;
      let answer;
      try {
        const holder = panel.content.widgets.find(cell => cell.node.contains(target));
        const home = holder ? holder.model.sharedModel : null;
        answer = { revision, ...applyRevision(model.sharedModel, detail, home) };
      } catch (error) {
        console.error('jupyter-pipelines-sync: could not apply revision', revision, error);
        const keys = [
          ...(Array.isArray(detail.cells) ? detail.cells : []),
          ...(Array.isArray(detail.removed) ? detail.removed : [])
        ].map(entry => entry && entry.key);
        answer = { revision, applied: [], conflicts: keys, error: String(error) };
      }
      respondLater(detail, answer);
    };
    document.addEventListener(EVENT, onCells, true);
  }
};

export default plugin;
