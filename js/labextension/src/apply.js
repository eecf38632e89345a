// The rules of docs/editor-protocol.md, "Cells (kernel → notebook)", on a shared notebook model
// (a YNotebook: `cells`, `insertCell`, `deleteCell`, `transact`). No imports, so that
// `node --test test/` can check it without a browser.

export const EVENT = 'jupyter-pipelines:cells';

const STEP_LINE = /^%%step[ \t]+(\S+)(?:\s|$)/;
const PARAMETERS_LINE = /^%%parameters(?:\s|$)/;

/** The pipeline key a cell's source defines ("parameters", "step:NAME"), or null. */
export function cellKey(source) {
  const newline = source.indexOf('\n');
  const line = newline < 0 ? source : source.slice(0, newline);
  if (PARAMETERS_LINE.test(line)) {
    return 'parameters';
  }
  const step = STEP_LINE.exec(line);
  return step ? `step:${step[1]}` : null;
}

function sourceOf(cell) {
  return cell.getSource();
}

// Texts compare without their trailing newlines: the kernel keeps a cell's text that way
// (`Editor.cell_ran` strips them), a notebook cell may end with one.
const trimEnd = text => text.replace(/\n+$/, '');

function same(a, b) {
  return typeof a === 'string' && typeof b === 'string' && trimEnd(a) === trimEnd(b);
}

/**
 * Apply one revision to a shared notebook model (a YNotebook: `cells`, `insertCell`,
 * `deleteCell`, `transact`). `home` is the cell holding the editor (or null): the first cells
 * of a pipeline that has none yet go right after it. Returns {applied, conflicts}, lists of keys.
 */
export function applyRevision(sharedModel, detail, home = null) {
  const force = detail.force === true;
  const wanted = Array.isArray(detail.cells) ? detail.cells : [];
  const removed = Array.isArray(detail.removed) ? detail.removed : [];
  const applied = [];
  const conflicts = [];

  const run = () => {
    // The pipeline's cells as they are now: key -> cells (a key can be there twice if a user
    // copied a cell; the one matching the revision wins, else the first).
    const byKey = new Map();
    for (const cell of sharedModel.cells) {
      if (cell.cell_type !== 'code') {
        continue;
      }
      const key = cellKey(sourceOf(cell));
      if (key !== null) {
        if (!byKey.has(key)) {
          byKey.set(key, []);
        }
        byKey.get(key).push(cell);
      }
    }
    const claimed = new Set(); // cells a key of this revision is settled on
    const placed = new Map(); // key -> its cell after this revision (for insert positions)

    const find = (key, previous, text) => {
      const candidates = (byKey.get(key) || []).filter(cell => !claimed.has(cell));
      const exact = candidates.find(cell => {
        const now = sourceOf(cell);
        return same(now, text) || same(now, previous);
      });
      if (exact || candidates.length) {
        return exact || candidates[0];
      }
      // A renamed step: its cell still has the old first line, and exactly its previous text.
      if (typeof previous === 'string') {
        return sharedModel.cells.find(
          cell =>
            cell.cell_type === 'code' &&
            !claimed.has(cell) &&
            cellKey(sourceOf(cell)) !== null &&
            same(sourceOf(cell), previous)
        );
      }
      return undefined;
    };

    const insertIndex = position => {
      // After the cell of the nearest earlier key that has one; else before the first step cell;
      // else right after the editor's cell (below `%load_ext`, the imports...); else at the end.
      for (let i = position - 1; i >= 0; i--) {
        const anchor = placed.get(wanted[i].key);
        if (anchor) {
          return sharedModel.cells.indexOf(anchor) + 1;
        }
      }
      const firstStep = sharedModel.cells.findIndex(
        cell =>
          cell.cell_type === 'code' && (cellKey(sourceOf(cell)) || '').startsWith('step:')
      );
      if (firstStep >= 0) {
        return firstStep;
      }
      const at = home ? sharedModel.cells.indexOf(home) : -1;
      return at >= 0 ? at + 1 : sharedModel.cells.length;
    };

    wanted.forEach((entry, position) => {
      const { key, text } = entry;
      const previous = entry.previous === undefined ? null : entry.previous;
      if (typeof key !== 'string' || typeof text !== 'string') {
        return;
      }
      const cell = find(key, previous, text);
      if (cell) {
        claimed.add(cell);
        placed.set(key, cell);
        const now = sourceOf(cell);
        if (same(now, text)) {
          applied.push(key);
        } else if (same(now, previous) || force) {
          cell.setSource(text);
          applied.push(key);
        } else {
          conflicts.push(key);
        }
      } else if (previous === null || force) {
        // A new cell (or, forced, one the user deleted meanwhile).
        const created = sharedModel.insertCell(insertIndex(position), {
          cell_type: 'code',
          source: text,
          metadata: {}
        });
        claimed.add(created);
        placed.set(key, created);
        applied.push(key);
      } else {
        // The cell was there at the last revision and has gone: the user deleted it.
        conflicts.push(key);
      }
    });

    for (const entry of removed) {
      const { key } = entry;
      const previous = entry.previous === undefined ? null : entry.previous;
      if (typeof key !== 'string') {
        continue;
      }
      const candidates = (byKey.get(key) || []).filter(cell => !claimed.has(cell));
      if (!candidates.length) {
        applied.push(key); // already gone
        continue;
      }
      const cell = candidates.find(c => same(sourceOf(c), previous)) || (force ? candidates[0] : null);
      if (cell) {
        sharedModel.deleteCell(sharedModel.cells.indexOf(cell));
        applied.push(key);
      } else {
        conflicts.push(key);
      }
    }
  };

  // One transaction, one undo step: its own, not merged with the user's typing just before or
  // after it, nor with a revision that follows within the undo manager's capture timeout.
  const undoManager = sharedModel.undoManager;
  const stopCapturing = () => {
    if (undoManager && typeof undoManager.stopCapturing === 'function') {
      undoManager.stopCapturing();
    }
  };
  stopCapturing();
  if (typeof sharedModel.transact === 'function') {
    sharedModel.transact(run);
  } else {
    run();
  }
  stopCapturing();
  return { applied, conflicts };
}
