// The side panel of the selected step: its `%%step` flags, its code (CodeMirror 6), the details
// of the last run. Every edit is a command; the panel redraws from the kernel's state.
import { useEffect, useRef, useState } from "react";
import {
  EditorView, crosshairCursor, drawSelection, dropCursor, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, keymap, lineNumbers, rectangularSelection,
} from "@codemirror/view";
import { EditorState, Prec } from "@codemirror/state";
import { bracketMatching, defaultHighlightStyle, foldGutter, foldKeymap, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { python } from "@codemirror/lang-python";

// CodeMirror's basicSetup without search and lint panels (a step's code is short).
const SETUP = [
  lineNumbers(), highlightActiveLineGutter(), highlightSpecialChars(), history(), foldGutter(),
  drawSelection(), dropCursor(), EditorState.allowMultipleSelections.of(true), indentOnInput(),
  syntaxHighlighting(defaultHighlightStyle, { fallback: true }), bracketMatching(), closeBrackets(),
  autocompletion(), rectangularSelection(), crosshairCursor(), highlightActiveLine(),
  keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...foldKeymap, ...completionKeymap]),
];
import { Details } from "./details.jsx";
import { useDraft } from "./draft.js";

const KIND_FLAGS = {
  processing: [],
  training: ["model"],
  condition: ["if_steps", "else_steps"],
  fail: [],
  "register-model": ["model", "group", "approval_status", "metrics"],
  "create-model": ["model"],
  transform: ["model", "data", "batch_size", "instance_count"],
};
const COMMON_FLAGS = ["inputs", "outputs", "depends_on", "cache", "cache_expire", "retry",
  "retry_backoff", "display_name", "description"];
const FIELDS = {
  model: { label: "Model", type: "text", hint: { training: "estimator output (default model)", "register-model": "model input", "create-model": "model input", transform: "create-model step" } },
  if_steps: { label: "If (True) steps", type: "list" },
  else_steps: { label: "Else (False) steps", type: "list" },
  group: { label: "Model package group", type: "text" },
  approval_status: { label: "Approval status", type: "text", options: ["PendingManualApproval", "Approved", "Rejected"] },
  metrics: { label: "Metrics input", type: "text" },
  data: { label: "Data input", type: "text" },
  batch_size: { label: "Batch size", type: "int", placeholder: "1024" },
  instance_count: { label: "Instance count", type: "int" },
  inputs: { label: "Inputs", type: "list", placeholder: "inferred" },
  outputs: { label: "Outputs", type: "list", placeholder: "inferred" },
  depends_on: { label: "Depends on", type: "list" },
  cache: { label: "No cache", type: "nocache" },
  cache_expire: { label: "Cache expire", type: "text", placeholder: "ISO-8601, e.g. P30D" },
  retry: { label: "Retry", type: "int", placeholder: "0", empty: 0 },
  retry_backoff: { label: "Retry backoff (s)", type: "float", placeholder: "1.0", empty: 1.0 },
  display_name: { label: "Display name", type: "text" },
  description: { label: "Description", type: "text" },
};

function toText(value, type) {
  if (value == null) return "";
  if (type === "list") return Array.isArray(value) ? value.join(" ") : String(value);
  return String(value);
}

// The typed text of a field as the flag's value (null: not set), or throws a message.
function parse(text, type, label) {
  const t = text.trim();
  if (type === "list") return t ? t.split(/[\s,]+/).filter(Boolean) : null;
  if (!t) return null;
  if (type === "int") {
    if (!/^-?\d+$/.test(t)) throw new Error(`${label}: "${t}" is not a whole number.`);
    return parseInt(t, 10);
  }
  if (type === "float") {
    const n = Number(t);
    if (Number.isNaN(n)) throw new Error(`${label}: "${t}" is not a number.`);
    return n;
  }
  return t;
}

function FlagField({ step, flag, value, kind, editable, cmd, showMessage, parameters }) {
  const def = FIELDS[flag];
  const [text, setText, commit, reset] = useDraft(toText(value, def.type), (draft) => {
    let parsed;
    try { parsed = parse(draft, def.type, def.label); } catch (err) { showMessage("error", err.message); return false; }
    if (parsed === null && def.empty !== undefined) parsed = def.empty;  // the flag's default
    cmd("set_step", { step, flags: { [flag]: parsed } });
  }, JSON.stringify(value));
  const id = `jp-editor-${step}-${flag}`;
  if (def.type === "nocache") {
    return (
      <label className="jp-editor-field jp-editor-check" data-flag={flag}>
        <input type="checkbox" checked={value === false} disabled={!editable}
          onChange={(e) => cmd("set_step", { step, flags: { cache: !e.target.checked } })} />
        <span>{def.label}</span>
      </label>
    );
  }
  const hint = def.hint && typeof def.hint === "object" ? def.hint[kind] : def.hint;
  const listId = def.options ? `${id}-options` : undefined;
  return (
    <label className="jp-editor-field" data-flag={flag} htmlFor={id}>
      <span>{def.label}</span>
      <input id={id} type="text" value={text} disabled={!editable} list={listId}
        placeholder={def.placeholder || hint || ""} spellCheck={false}
        onChange={(e) => setText(e.target.value)} onBlur={commit}
        onKeyDown={(e) => { if (e.key === "Enter") { e.preventDefault(); commit(); } if (e.key === "Escape") reset(); }} />
      {def.options && (
        <datalist id={listId}>
          {[...def.options, ...parameters.map((p) => p.name)].map((o) => <option key={o} value={o} />)}
        </datalist>
      )}
    </label>
  );
}

function CodeEditor({ step, code, editable, cmd, unknown }) {
  const holder = useRef(null);
  const viewRef = useRef(null);
  const lastSent = useRef(code);
  const timers = useRef({});
  const [message, setMessage] = useState(unknown || "");
  useEffect(() => { setMessage(unknown || ""); }, [unknown]);

  useEffect(() => {
    const commit = () => {
      clearTimeout(timers.current.commit);
      const view = viewRef.current;
      if (!view || !editable) return;
      const text = view.state.doc.toString();
      if (text === lastSent.current) return;
      lastSent.current = text;
      cmd("set_step", { step, code: text });
    };
    const check = () => {
      const view = viewRef.current;
      if (!view) return;
      cmd("check_code", { step, code: view.state.doc.toString() }, { quiet: true }).then((reply) => {
        if (reply.ok) setMessage(reply.unknown || "");
        else if (reply.error) setMessage(reply.error);
      });
    };
    const view = new EditorView({
      parent: holder.current,
      doc: code,
      extensions: [
        Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => { commit(); return true; } }])),
        SETUP,
        python(),
        EditorView.lineWrapping,
        EditorView.editable.of(editable),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged || !update.transactions.some((tr) => tr.isUserEvent("input") || tr.isUserEvent("delete") || tr.isUserEvent("undo") || tr.isUserEvent("redo") || tr.isUserEvent("move"))) return;
          clearTimeout(timers.current.check);
          clearTimeout(timers.current.commit);
          timers.current.check = setTimeout(check, 250);
          timers.current.commit = setTimeout(commit, 600);
        }),
        EditorView.domEventHandlers({ blur: () => { commit(); return false; } }),
      ],
    });
    viewRef.current = view;
    return () => {
      clearTimeout(timers.current.check);
      clearTimeout(timers.current.commit);
      commit();
      view.destroy();
      viewRef.current = null;
    };
  }, []);

  // The kernel's code (after an undo, a redraw): shown unless the user is typing here.
  useEffect(() => {
    const view = viewRef.current;
    if (!view || view.hasFocus) return;
    const text = view.state.doc.toString();
    if (text !== code) view.dispatch({ changes: { from: 0, to: text.length, insert: code } });
    lastSent.current = code;
  }, [code]);

  return (
    <div className="jp-editor-code-wrap">
      <div className="jp-editor-code" data-editor-code="" ref={holder} />
      <div className="jp-editor-unknown" data-editor-unknown="" hidden={!message}>{message}</div>
    </div>
  );
}

function AwsEditor({ step, text, editable, cmd }) {
  const [value, setValue, commit] = useDraft(text, (code) => { cmd("set_step", { step, code }); });
  return (
    <textarea className="jp-editor-aws" data-editor-aws="" value={value} disabled={!editable} spellCheck={false}
      rows={Math.min(18, Math.max(6, value.split("\n").length + 1))}
      onChange={(e) => setValue(e.target.value)} onBlur={commit}
      onKeyDown={(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); commit(); } }} />
  );
}

export function StepPanel({ node, kinds, parameters, details, state, editable, cmd, select, showMessage }) {
  const [name, setName] = useState(node.name);
  useEffect(() => setName(node.name), [node.name]);
  const flags = node.flags || {};
  const kind = node.kind;
  const rename = () => {
    const to = name.trim();
    if (!to || to === node.name) { setName(node.name); return; }
    cmd("rename", { step: node.name, to }).then((reply) => {
      if (reply.ok) select(to);
      else setName(node.name);
    });
  };
  const flagNames = kind === "aws" ? [] : [...(KIND_FLAGS[kind] || []), ...COMMON_FLAGS];
  return (
    <div className="jp-editor-panel" data-editor-for={node.name}>
      <div className="jp-editor-panel-head">
        <input className="jp-editor-name" data-editor-name="" value={name} disabled={!editable} spellCheck={false}
          aria-label="Step name" onChange={(e) => setName(e.target.value)} onBlur={rename}
          onKeyDown={(e) => { if (e.key === "Enter") { e.preventDefault(); rename(); } if (e.key === "Escape") setName(node.name); }} />
        <span className="jp-pipeline-badge" data-status={state.status}>{state.label || state.status}</span>
        <button className="jp-pipeline-close" title="Close" onClick={() => select("")}>×</button>
      </div>
      <label className="jp-editor-field" data-flag="kind">
        <span>Kind</span>
        {kind === "aws" ? <input type="text" value={(node.label || "").split("\n")[1] || "aws"} disabled /> : (
          <select value={kind} disabled={!editable}
            onChange={(e) => cmd("set_step", { step: node.name, flags: { kind: e.target.value } })}>
            {kinds.map((k) => <option key={k.kind} value={k.kind}>{k.kind} ({k.type})</option>)}
          </select>
        )}
      </label>
      <div className="jp-editor-flags">
        {flagNames.map((flag) => (
          <FlagField key={flag} step={node.name} flag={flag} value={flags[flag]} kind={kind} editable={editable}
            cmd={cmd} showMessage={showMessage} parameters={parameters} />
        ))}
      </div>
      {(node.inputs?.length > 0 || node.outputs?.length > 0) && (
        <div className="jp-editor-io">
          {node.inputs?.length > 0 && <div>reads <code>{node.inputs.join(", ")}</code></div>}
          {node.outputs?.length > 0 && <div>outputs <code>{node.outputs.join(", ")}</code></div>}
        </div>
      )}
      <h4>{kind === "aws" ? "Definition (JSON)" : "Code"}</h4>
      {kind === "aws"
        ? <AwsEditor step={node.name} text={node.aws || ""} editable={editable} cmd={cmd} />
        : <CodeEditor key={node.name} step={node.name} code={node.code || ""} unknown={node.unknown} editable={editable} cmd={cmd} />}
      {details && details.step === node.name && <Details info={details} />}
    </div>
  );
}
