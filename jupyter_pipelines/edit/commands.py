"""Edits of a `Pipeline`, as the editor's canvas sends them (``docs/editor-protocol.md``).

`Edits.apply` takes one command (a dict with ``op``) and changes the pipeline through
`Pipeline.add_step` / `remove_step` / `add_parameter` and `cells.make` (the magic's path), or
raises the project's own error and changes nothing. An edit is checked against the whole graph
(cycles, two producers of a name, a branch naming a step that is not there) before it is kept;
names a step reads that nothing provides are allowed (the canvas flags them, as a notebook
allows a cell whose upstream is not defined yet). Every kept edit can be undone and redone.
"""

from __future__ import annotations

from typing import Any

from ..errors import DefinitionError, PipelineError, UnknownReferenceError, did_you_mean
from ..graph import build, unknown_input
from ..parameters import Parameter, check_name
from ..pipeline import Pipeline
from ..steps import Step, make_step
from .cells import TEMPLATE_FLAGS, TEMPLATES, flags_of, make

_STEP_REFS = ("if_steps", "else_steps", "depends_on")  # flags naming steps (and a transform's model)
_TYPES = {"String": str, "Integer": int, "Float": float, "Boolean": bool}


class NeedsConfirmation(PipelineError):
    """The edit asks the user first (the canvas resends it with ``confirm``)."""


class Edits:
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self._undo: list[tuple[dict, dict]] = []
        self._redo: list[tuple[dict, dict]] = []

    # -- the one entry point -------------------------------------------------------------------
    def apply(self, command: dict) -> dict:
        """Apply ``command``; the reply's extra fields (e.g. the new step's name)."""
        op = command.get("op")
        handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
        if handler is None:
            raise PipelineError(f"The editor sent an unknown command {op!r}; the commands are: "
                                + ", ".join(n[4:] for n in dir(self) if n.startswith("_op_")) + ".")
        if op in ("undo", "redo", "check_code"):
            return handler(command) or {}
        before = self._state()
        try:  # a refused edit (by the handler or by the graph) changes nothing
            reply = handler(command) or {}
            self.check()
        except BaseException:
            self._restore(before)
            raise
        if self._state() != before:
            self._undo.append(before)
            self._redo.clear()
        return reply

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def check(self, unknown: dict[str, list[str]] | None = None):
        """The pipeline's graph, checked: a DAG whose references hold; the names its steps read
        that nothing provides are only collected (into ``unknown``)."""
        p = self.pipeline
        return build(p.steps, p.parameters, p.context.names, {} if unknown is None else unknown)

    def unknown(self, collected: dict[str, list[str]] | None = None) -> dict[str, str]:
        """Step -> the message for the first name its code reads that nothing provides (of the
        names `check` collected, else checked now)."""
        if collected is None:
            collected = {}
            self.check(collected)
        known = self.pipeline.known_names()
        return {step: str(unknown_input(step, names[0], known)) for step, names in collected.items()}

    # -- undo ----------------------------------------------------------------------------------
    def _state(self) -> tuple[dict, dict]:
        return dict(self.pipeline.steps), dict(self.pipeline.parameters)

    def _restore(self, state: tuple[dict, dict]) -> None:
        p = self.pipeline
        p.steps.clear()
        p.steps.update(state[0])
        p.parameters.clear()
        p.parameters.update(state[1])
        p._graph = None

    def _op_undo(self, command: dict) -> None:
        if not self._undo:
            raise PipelineError("There is nothing to undo.")
        self._redo.append(self._state())
        self._restore(self._undo.pop())

    def _op_redo(self, command: dict) -> None:
        if not self._redo:
            raise PipelineError("There is nothing to redo.")
        self._undo.append(self._state())
        self._restore(self._redo.pop())

    # -- steps ---------------------------------------------------------------------------------
    def _step(self, name: Any) -> Step:
        step = self.pipeline.steps.get(name) if isinstance(name, str) else None
        if step is None:
            raise UnknownReferenceError(
                f"There is no step {name!r} in pipeline {self.pipeline.name}."
                f"{did_you_mean(str(name), self.pipeline.steps)} Pick a step on the canvas.")
        return step

    def _replace(self, old: Step, flags: dict, code: str | None = None, name: str | None = None) -> Step:
        step = make(name or old.name, old.code if code is None else code, flags)
        steps = self.pipeline.steps
        if name and name != old.name:  # keep the step's place in the order
            items = [(name if n == old.name else n, step if n == old.name else s)
                     for n, s in steps.items()]
            steps.clear()
            steps.update(items)
            self.pipeline._graph = None
        else:
            self.pipeline.add_step(step)
        return step

    def _op_add_step(self, command: dict) -> dict:
        kind = command.get("kind", "processing")
        if kind not in TEMPLATES:
            raise DefinitionError(f"The palette has no step kind {kind!r}; the kinds are: "
                                  f"{', '.join(TEMPLATES)}.")
        name = command.get("name") or self._free_name(kind.title().replace("-", ""))
        if name in self.pipeline.steps:
            raise DefinitionError(f"A step named `{name}` already exists. Pick another name.")
        steps = list(self.pipeline.steps.values())
        models = [s.name for s in steps if s.kind == "create-model"]
        if kind == "transform" and not models:
            raise DefinitionError("A transform step runs a create-model step's model: add a "
                                  "create-model step first, then the transform.")
        trained = [s.options["model"] for s in steps if s.kind == "training"]
        fill = {"name": name, "out": name.lower().replace("-", "_"),
                "model": trained[-1] if trained else "model",
                "create_model": models[-1] if models else ""}
        flags = {k: [x.format(**fill) for x in v] if isinstance(v, list) else v.format(**fill)
                 for k, v in TEMPLATE_FLAGS.get(kind, {}).items()}
        step = make(name, TEMPLATES[kind].format(**fill), {"kind": kind, **flags})
        self.pipeline.add_step(step)
        return {"step": step.name}

    def _free_name(self, stem: str) -> str:
        taken = set(self.pipeline.steps) | set(self.pipeline.parameters)
        n = 1
        while f"{stem}{n}" in taken:
            n += 1
        return f"{stem}{n}"

    def _op_set_step(self, command: dict) -> None:
        old = self._step(command.get("step"))
        if old.kind == "aws":
            return self._set_aws(old, command.get("code"))
        flags = {**flags_of(old), **(command.get("flags") or {})}
        code = command.get("code")
        if code is not None and not isinstance(code, str):
            raise DefinitionError(f"Step `{old.name}`: its code must be text.")
        self._replace(old, flags, code)

    def _set_aws(self, old: Step, text: Any) -> None:
        """An AWS-only step is edited as its JSON (its code): checked to be a JSON object of
        the same type; what it reads, outputs and branches to stay as they are."""
        import json

        try:
            doc = json.loads(text) if isinstance(text, str) else None
        except json.JSONDecodeError as exc:
            raise DefinitionError(f"Step `{old.name}`: its JSON is not valid ({exc.msg} at line "
                                  f"{exc.lineno}, column {exc.colno}). Fix it and save again.") from None
        if not isinstance(doc, dict) or doc.get("Type", old.options["type"]) != old.options["type"]:
            raise DefinitionError(
                f"Step `{old.name}`: its JSON must stay a {old.options['type']} step object "
                f"(\"Type\": \"{old.options['type']}\"); to change its type, delete it and add a step.")
        step = make_step(old.name, text, "aws", inputs=list(old.reads), outputs=list(old.outputs),
                         depends_on=list(old.depends_on), **dict(old.options))
        self.pipeline.add_step(step)

    def _op_check_code(self, command: dict) -> dict:
        old = self._step(command.get("step"))
        try:
            step = make(old.name, command.get("code", ""), flags_of(old))
        except DefinitionError as exc:
            return {"unknown": str(exc)}
        p = self.pipeline
        collected: dict[str, list[str]] = {}
        try:
            build({**p.steps, step.name: step}, p.parameters, p.context.names, collected)
        except Exception as exc:
            return {"unknown": str(exc)}
        names = collected.get(step.name)
        return {"unknown": str(unknown_input(step.name, names[0], p.known_names())) if names else ""}

    def _op_rename(self, command: dict) -> None:
        old, to = self._step(command.get("step")), command.get("to")
        check_name(to, "Step")
        if to == old.name:
            return
        if to in self.pipeline.steps:
            raise DefinitionError(f"Step `{old.name}` cannot be renamed `{to}`: a step of that name "
                                  "exists. Pick another name.")
        self._replace(old, flags_of(old), name=to)
        for other in list(self.pipeline.steps.values()):
            flags, changed = flags_of(other), False
            for key in _STEP_REFS:
                if old.name in flags.get(key, ()):
                    flags[key] = [to if n == old.name else n for n in flags[key]]
                    changed = True
            if old.name in other.step_refs and flags.get("model") == old.name:
                flags["model"], changed = to, True
            if changed:
                self._replace(other, flags)

    def _op_delete_step(self, command: dict) -> None:
        step = self._step(command.get("step"))
        readers = [s.name for s in self.pipeline.steps.values()
                   if s.name != step.name and set(s.reads) & set(step.outputs)]
        if readers and not command.get("confirm"):
            raise NeedsConfirmation(
                f"Delete step `{step.name}`? {', '.join(f'`{r}`' for r in readers)} "
                f"read{'s' if len(readers) == 1 else ''} its outputs "
                f"({', '.join(step.outputs)}) and will be flagged until something else provides them.")
        self.pipeline.remove_step(step.name)
        for other in list(self.pipeline.steps.values()):
            flags, changed = flags_of(other), False
            for key in _STEP_REFS:
                if step.name in flags.get(key, ()):
                    flags[key] = [n for n in flags[key] if n != step.name]
                    changed = True
            if step.name in other.step_refs:
                raise DefinitionError(
                    f"Step `{step.name}` cannot be deleted: transform step `{other.name}` runs its "
                    "model (--model). Point the transform at another create-model step first.")
            if changed:
                self._replace(other, flags)

    # -- edges ---------------------------------------------------------------------------------
    def _op_connect(self, command: dict) -> None:
        source, target = self._step(command.get("source")), self._step(command.get("target"))
        handle = command.get("handle", "out")
        if source.name == target.name:
            raise DefinitionError(f"Step `{source.name}` cannot be connected to itself.")
        flags = flags_of(target)
        if handle in ("True", "False"):
            if source.kind != "condition":
                raise DefinitionError(f"Only a condition step has True/False branches; "
                                      f"`{source.name}` is a {source.kind} step.")
            own = flags_of(source)
            key = "if_steps" if handle == "True" else "else_steps"
            own[key] = [*own.get(key, []), *([target.name] if target.name not in own.get(key, []) else [])]
            self._replace(source, own)
            return
        if handle != "out":
            raise DefinitionError(f"A connection starts at a step's `out`, `True` or `False` handle; "
                                  f"got {handle!r}.")
        names = command.get("names") or []
        wrong = [n for n in names if n not in source.outputs]
        if wrong:
            raise DefinitionError(
                f"Step `{source.name}` does not output `{wrong[0]}`; it outputs "
                f"{', '.join(source.outputs) or 'nothing'}. Pick one of those, or none for an "
                "order-only connection.")
        if names:
            flags["inputs"] = [*target.reads, *(n for n in names if n not in target.reads)]
        elif source.name not in target.depends_on:
            flags["depends_on"] = [*target.depends_on, source.name]
        self._replace(target, flags)

    def _op_disconnect(self, command: dict) -> None:
        source, target = self._step(command.get("source")), self._step(command.get("target"))
        own = flags_of(source)
        for key in ("if_steps", "else_steps"):
            if target.name in own.get(key, ()):
                own[key] = [n for n in own[key] if n != target.name]
                self._replace(source, own)
                return
        flags = flags_of(target)
        if source.name in flags.get("depends_on", ()):
            flags["depends_on"] = [n for n in flags["depends_on"] if n != source.name]
            self._replace(target, flags)
            return
        carried = [n for n in target.reads if n in source.outputs]
        if "inputs" in flags and carried:
            flags["inputs"] = [n for n in flags["inputs"] if n not in carried]
            implied = make(target.name, target.code, {**flags, "inputs": None})
            if not set(carried) & set(implied.reads):
                self._replace(target, {**flags, "inputs": None} if set(flags["inputs"]) == set(
                    implied.reads) else flags)
                return
        if carried:
            raise DefinitionError(
                f"The connection from `{source.name}` to `{target.name}` comes from "
                f"`{target.name}`'s code, which reads {', '.join(f'`{n}`' for n in carried)}. "
                "To remove the connection, edit that code so it no longer reads "
                + ("it." if len(carried) == 1 else "them."))
        raise DefinitionError(f"There is no connection from `{source.name}` to `{target.name}`.")

    # -- parameters ----------------------------------------------------------------------------
    def _op_add_parameter(self, command: dict) -> dict:
        name = command.get("name") or self._free_name("param")
        self._set_parameter(name, command.get("type", "String"), command.get("default", ""), None)
        return {"parameter": name}

    def _op_set_parameter(self, command: dict) -> None:
        name = command.get("name")
        old = self.pipeline.parameters.get(name)
        if old is None:
            raise UnknownReferenceError(f"There is no parameter {name!r}."
                                        f"{did_you_mean(str(name), self.pipeline.parameters)}")
        to = command.get("to") or name
        kind = command.get("type") or old.type
        default = command.get("default", old.default)
        enum = command.get("enum", old.enum_values)
        if to != name:
            if to in self.pipeline.parameters:
                raise DefinitionError(f"Parameter `{name}` cannot be renamed `{to}`: that name is taken.")
            items = list(self.pipeline.parameters.items())
            self.pipeline.parameters.clear()
            self.pipeline.parameters.update((k, v) for k, v in items if k != name)
        self._set_parameter(to, kind, default, enum)
        if to != name:  # keep its place in the order
            items = [(to if k == name else k, self.pipeline.parameters[to] if k == name else v)
                     for k, v in items]
            self.pipeline.parameters.clear()
            self.pipeline.parameters.update(items)

    def _set_parameter(self, name: str, kind: str, default: Any, enum) -> None:
        if kind not in _TYPES:
            raise DefinitionError(f"Parameter `{name}`: the type must be one of "
                                  f"{', '.join(_TYPES)}; got {kind!r}.")
        self.pipeline.add_parameter(name, _typed(name, kind, default), enum_values=enum or None,
                                    type_name=kind)

    def _op_delete_parameter(self, command: dict) -> None:
        name = command.get("name")
        if name not in self.pipeline.parameters:
            raise UnknownReferenceError(f"There is no parameter {name!r}.")
        del self.pipeline.parameters[name]
        self.pipeline._graph = None


def _typed(name: str, kind: str, value: Any) -> Any:
    """A default as typed in the panel (text) made the parameter's type."""
    if not isinstance(value, str) or kind == "String":
        return value
    text = value.strip()
    try:
        if kind == "Boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        return _TYPES[kind](text)
    except ValueError:
        raise DefinitionError(f"Parameter `{name}` is {kind}, and {value!r} is not a "
                              f"{kind.lower()} value. Type e.g. "
                              f"{ {'Integer': '3', 'Float': '6.0', 'Boolean': 'true'}[kind]}.") from None


__all__ = ["Edits", "NeedsConfirmation", "Parameter"]
