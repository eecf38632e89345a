// The parameters panel: name, type, default, allowed values; each edit a `set_parameter`.
import { useDraft } from "./draft.js";

const TYPES = ["String", "Integer", "Float", "Boolean"];

// An allowed value as the parameter's type (a default goes as typed: the kernel converts it).
function typed(text, type) {
  const t = text.trim();
  if (type === "Integer" && /^-?\d+$/.test(t)) return parseInt(t, 10);
  if (type === "Float" && t !== "" && !Number.isNaN(Number(t))) return Number(t);
  if (type === "Boolean" && /^(true|false)$/i.test(t)) return t.toLowerCase() === "true";
  return text;
}

// A value as Python wrote it: a Float default 6.0 arrives as the JSON number 6.
function shown(value, type) {
  if (value == null) return "";
  if (type === "Float" && typeof value === "number" && Number.isInteger(value)) return value.toFixed(1);
  if (type === "Boolean" && typeof value === "boolean") return value ? "True" : "False";
  return String(value);
}

function TextCell({ value, onCommit, label, placeholder, disabled, attr }) {
  const [text, setText, commit, reset] = useDraft(value, (draft) => { onCommit(draft); });
  return (
    <input type="text" aria-label={label} value={text} placeholder={placeholder} disabled={disabled} spellCheck={false} {...attr}
      onChange={(e) => setText(e.target.value)} onBlur={commit}
      onKeyDown={(e) => { if (e.key === "Enter") { e.preventDefault(); commit(); } if (e.key === "Escape") reset(); }} />
  );
}

export function ParametersPanel({ parameters, editable, cmd }) {
  return (
    <div className="jp-editor-parameters" data-editor-parameters="">
      <div className="jp-editor-parameters-head">
        <h4>Parameters</h4>
        {editable && <button data-action="add-parameter" onClick={() => cmd("add_parameter")}>+ parameter</button>}
      </div>
      {parameters.length === 0 ? <div className="jp-pipeline-times">No parameters.</div> : (
        <table className="jp-editor-parameters-table">
          <thead><tr><th>Name</th><th>Type</th><th>Default</th><th>Allowed values</th><th /></tr></thead>
          <tbody>
            {parameters.map((p) => (
              <tr key={p.name} data-parameter={p.name}>
                <td><TextCell value={p.name} label={`${p.name}: name`} disabled={!editable} attr={{ "data-param-field": "name" }}
                  onCommit={(to) => to.trim() && cmd("set_parameter", { name: p.name, to: to.trim() })} /></td>
                <td>
                  <select aria-label={`${p.name}: type`} value={p.type} disabled={!editable} data-param-field="type"
                    onChange={(e) => cmd("set_parameter", { name: p.name, type: e.target.value })}>
                    {TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
                  </select>
                </td>
                <td><TextCell value={shown(p.default, p.type)} label={`${p.name}: default`} placeholder="(required)" disabled={!editable}
                  attr={{ "data-param-field": "default" }}
                  onCommit={(text) => cmd("set_parameter", { name: p.name, default: text })} /></td>
                <td><TextCell value={(p.enum || []).map((v) => shown(v, p.type)).join(", ")} label={`${p.name}: allowed values`} placeholder="any"
                  disabled={!editable} attr={{ "data-param-field": "enum" }}
                  onCommit={(text) => {
                    const values = text.split(",").map((v) => v.trim()).filter(Boolean).map((v) => typed(v, p.type));
                    cmd("set_parameter", { name: p.name, enum: values.length ? values : null });
                  }} /></td>
                <td>{editable && <button data-action="delete-parameter" title={`Delete ${p.name}`}
                  onClick={() => cmd("delete_parameter", { name: p.name })}>×</button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
