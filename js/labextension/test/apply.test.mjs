// The cell rules without a browser: `npm test` (node --test). The browser test
// (tests/browser/test_cells_sync_browser.py) runs the built extension in JupyterLab and Notebook 7.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { applyRevision, cellKey } from '../src/apply.js';

// A stand-in for the shared notebook model (YNotebook): the members applyRevision uses.
function notebook(cells) {
  const cell = ([cell_type, source]) => ({
    cell_type,
    source,
    getSource() { return this.source; },
    setSource(text) { this.source = text; }
  });
  const model = {
    cells: cells.map(cell),
    transactions: 0,
    insertCell(index, { cell_type, source }) {
      const created = cell([cell_type, source]);
      this.cells.splice(index, 0, created);
      return created;
    },
    deleteCell(index) { this.cells.splice(index, 1); },
    transact(change) { this.transactions += 1; change(); }
  };
  return model;
}
const sources = model => model.cells.map(c => [c.cell_type, c.source]);

test('a cell key is read from the first line only', () => {
  assert.equal(cellKey('%%step Train'), 'step:Train');
  assert.equal(cellKey('%%step Train --kind training\nx = 1'), 'step:Train');
  assert.equal(cellKey('%%step  Train\tx'), 'step:Train');
  assert.equal(cellKey('%%step Train\r\nx'), 'step:Train');
  assert.equal(cellKey('%%step TrainMore --kind training'), 'step:TrainMore');
  assert.equal(cellKey('%%stepTrain'), null);
  assert.equal(cellKey(' %%step Train'), null);
  assert.equal(cellKey('x = 1\n%%step Train'), null);
  assert.equal(cellKey('%%parameters\na = 1'), 'parameters');
  assert.equal(cellKey('%%parameters  \na = 1'), 'parameters');
  assert.equal(cellKey('%%parametersX'), null);
});

test('rewrite, insert after the step before it, remove; other cells untouched; one transaction', () => {
  const nb = notebook([['markdown', '# Title'], ['code', 'import x'], ['code', '%%step TrainMore\na'],
                       ['code', '%%step Train\nb'], ['code', '%%step Old\no'], ['code', 'editor']]);
  const answer = applyRevision(nb, {
    revision: 1,
    cells: [{ key: 'parameters', text: '%%parameters\np = 1', previous: null },
            { key: 'step:Train', text: '%%step Train\nB', previous: '%%step Train\nb' },
            { key: 'step:New', text: '%%step New\nn', previous: null }],
    removed: [{ key: 'step:Old', previous: '%%step Old\no' }]
  });
  assert.deepEqual(answer, { applied: ['parameters', 'step:Train', 'step:New', 'step:Old'], conflicts: [] });
  assert.deepEqual(sources(nb), [['markdown', '# Title'], ['code', 'import x'], ['code', '%%parameters\np = 1'],
                                 ['code', '%%step TrainMore\na'], ['code', '%%step Train\nB'],
                                 ['code', '%%step New\nn'], ['code', 'editor']]);
  assert.equal(nb.transactions, 1);
});

test('a revision is its own undo step', () => {
  const nb = notebook([['code', '%%step A\nx']]);
  const calls = [];
  nb.undoManager = { stopCapturing: () => calls.push(nb.transactions) };
  applyRevision(nb, { revision: 1, cells: [{ key: 'step:A', text: '%%step A\ny', previous: '%%step A\nx' }] });
  assert.deepEqual(calls, [0, 1]);  // before and after the one transaction
});

test('a pipeline with no cells yet gets them right after the editor, in order', () => {
  const nb = notebook([['code', '%load_ext jupyter_pipelines'], ['code', '%pipeline edit'],
                       ['markdown', 'after']]);
  applyRevision(nb, {
    revision: 1,
    cells: [{ key: 'parameters', text: '%%parameters', previous: null },
            { key: 'step:A', text: '%%step A', previous: null },
            { key: 'step:B', text: '%%step B', previous: null }],
    removed: []
  }, nb.cells[1]);
  assert.deepEqual(sources(nb).map(c => c[1]), ['%load_ext jupyter_pipelines', '%pipeline edit',
                                                '%%parameters', '%%step A', '%%step B', 'after']);
  const empty = notebook([]);  // no editor cell known: at the end
  applyRevision(empty, { revision: 1, cells: [{ key: 'step:A', text: '%%step A', previous: null }] });
  assert.deepEqual(sources(empty).map(c => c[1]), ['%%step A']);
});

test('edited meanwhile: a conflict, untouched; forced: rewritten', () => {
  const nb = notebook([['code', '%%step A\nEDITED']]);
  const revision = { revision: 2, cells: [{ key: 'step:A', text: '%%step A\nnew', previous: '%%step A\nold' }],
                     removed: [] };
  assert.deepEqual(applyRevision(nb, revision), { applied: [], conflicts: ['step:A'] });
  assert.equal(nb.cells[0].source, '%%step A\nEDITED');
  assert.deepEqual(applyRevision(nb, { ...revision, force: true }), { applied: ['step:A'], conflicts: [] });
  assert.equal(nb.cells[0].source, '%%step A\nnew');
  // Already the new text: applied, nothing to do.
  assert.deepEqual(applyRevision(nb, revision), { applied: ['step:A'], conflicts: [] });
});

test('removed: only if still the previous text (or forced)', () => {
  const nb = notebook([['code', '%%step A\nEDITED']]);
  const revision = { revision: 3, cells: [], removed: [{ key: 'step:A', previous: '%%step A\nx' }] };
  assert.deepEqual(applyRevision(nb, revision), { applied: [], conflicts: ['step:A'] });
  assert.equal(nb.cells.length, 1);
  assert.deepEqual(applyRevision(nb, { ...revision, force: true }), { applied: ['step:A'], conflicts: [] });
  assert.equal(nb.cells.length, 0);
  assert.deepEqual(applyRevision(nb, revision), { applied: ['step:A'], conflicts: [] }); // already gone
});

test('a step cell the user deleted: a conflict; forced: inserted again', () => {
  const nb = notebook([['code', '%%step B\ny']]);
  const revision = { revision: 4, removed: [],
                     cells: [{ key: 'step:A', text: '%%step A\nz', previous: '%%step A\nx' },
                             { key: 'step:B', text: '%%step B\ny', previous: '%%step B\ny' }] };
  assert.deepEqual(applyRevision(nb, revision), { applied: ['step:B'], conflicts: ['step:A'] });
  applyRevision(nb, { ...revision, force: true });
  assert.deepEqual(sources(nb).map(c => c[1]), ['%%step A\nz', '%%step B\ny']);
});

test('a renamed step: its cell, found by its previous text, rewritten in place', () => {
  const nb = notebook([['code', '%%step A\nx'], ['code', '%%step B\ny']]);
  const answer = applyRevision(nb, {
    revision: 5,
    cells: [{ key: 'step:A2', text: '%%step A2\nx', previous: '%%step A\nx' },
            { key: 'step:B', text: '%%step B\ny', previous: '%%step B\ny' }],
    removed: [{ key: 'step:A', previous: '%%step A\nx' }]
  });
  assert.deepEqual(answer, { applied: ['step:A2', 'step:B', 'step:A'], conflicts: [] });
  assert.deepEqual(sources(nb).map(c => c[1]), ['%%step A2\nx', '%%step B\ny']);
});

test('markdown cells are never touched, even if they start like a step', () => {
  const nb = notebook([['markdown', '%%step A\nx']]);
  applyRevision(nb, { revision: 6, force: true, cells: [], removed: [{ key: 'step:A', previous: '%%step A\nx' }] });
  assert.deepEqual(sources(nb), [['markdown', '%%step A\nx']]);
});

test('trailing newlines do not make a conflict (the kernel strips them)', () => {
  const nb = notebook([['code', '%%step A\nx\n\n'], ['code', '%%step B\ny\n']]);
  const answer = applyRevision(nb, {
    revision: 7,
    cells: [{ key: 'step:A', text: '%%step A\nz', previous: '%%step A\nx' },
            { key: 'step:B', text: '%%step B\ny', previous: '%%step B\ny' }],
    removed: []
  });
  assert.deepEqual(answer, { applied: ['step:A', 'step:B'], conflicts: [] });
  assert.deepEqual(sources(nb).map(c => c[1]), ['%%step A\nz', '%%step B\ny\n']);  // B: nothing to do
});
