"""A step record as the history keeps it: its database row (`record_row`) and its journal line
(`journal_line`), the one thing a run writes as each step ends.

A row holds four fields as JSON texts (key parts, outputs, metadata, why: `JSON_FIELDS`). A
journal line, ``{"run": [...]}``, holds the same values in the same places, those four as JSON
values rather than texts of JSON (so nothing is escaped twice); `journal.read` turns a line
back into a row. The usual line (a step that succeeded quietly) is written from pieces made
once: the key parts' text (`keys.KeyParts.json`), each output's entry (`output_json`), the
why's text, and its start and end as the hex of their bytes (`time_text`: exact, and a sixth
of the cost of writing the numbers; `journal.read` turns them back); any other record goes
through the JSON encoder. Both give the same values.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import struct
from json.encoder import encode_basestring_ascii as _quoted

from .artifacts import ArtifactRef, ArtifactStore
from .journal import JSON_FIELDS, plain_json
from .keys import KeyParts, parts_json


def record_row(record, artifacts: ArtifactStore) -> list:
    """The history row of a step record: the values `History.record_steps` writes (in
    `history`'s column order, as `schema.step_row` makes them of a dict), made directly."""
    outputs = None
    if record.status in ("Succeeded", "Cached"):
        outputs = outputs_json(record.refs, artifacts)
    return [record.name, record.kind, record.status, record.start, record.end, record.attempts,
            record.cache_key, parts_json(record.key_parts) if record.key_parts else None,
            record.reused_from, outputs,
            json.dumps(record.metadata, default=repr) if record.metadata else None,
            record.stdout, record.stderr, record.failure_reason, record.traceback,
            why_json(record.why) if record.why is not None else None]


def journal_line(record, artifacts: ArtifactStore) -> str:
    """The journal line of a finished step record (see the module's note)."""
    parts, start, end = record.key_parts, record.start, record.end
    if (record.status == "Succeeded" and type(parts) is KeyParts and record.cache_key is not None
            and type(start) is float and type(end) is float and record.why is not None
            and not record.metadata and record.stdout == "" and record.stderr == ""
            and record.failure_reason is None and record.traceback is None
            and record.reused_from is None):
        return (f'{{"run": [{_quoted(record.name)}, {_quoted(record.kind)}, "Succeeded", '
                f'"{_PACK(start).hex()}", "{_PACK(end).hex()}", {record.attempts}, '
                f'"{record.cache_key}", {parts.json}, null, '
                f'{outputs_json(record.refs, artifacts)}, null, "", "", null, null, '
                f'{why_json(record.why)}]}}')
    row = record_row(record, artifacts)
    return plain_json({"run": [json.loads(v) if i in JSON_FIELDS and v is not None else v
                               for i, v in enumerate(row)]})


def end_line(finish: tuple, copies: list[tuple]) -> str:
    """The journal line of an execution's end: its (status, end, reason), and the Cached rows
    still to copy, ``(source rowid, step, start, end)``, their times as `time_text` texts."""
    text = "".join([f', [{rowid}, {_quoted(name)}, "{_PACK(start).hex()}", "{_PACK(end).hex()}"]'
                    if type(rowid) is int and type(name) is str and type(start) is float
                    and type(end) is float
                    else ", " + plain_json([rowid, name, time_text(start), time_text(end)])
                    for rowid, name, start, end in copies])
    return f'{{"end": {plain_json(list(finish))}, "copies": [{text[2:]}]}}'


def start_row(execution, pipeline: str, version: int | str, retry_of: str | None) -> list:
    """An execution's start as the history records it (`History.start_execution`): its id,
    pipeline, version (its id, or its digest if the history may not have it yet), parameters
    (a JSON text), start time, process, host, the execution it retries and working folder."""
    return [execution.id, pipeline, version, json.dumps(execution.parameters, default=repr),
            execution.start_time, os.getpid(), socket.gethostname(), retry_of, os.getcwd()]


def start_line(start: list) -> str:
    """The journal line of an execution's start (`start_row`): its parameters as JSON, not a
    text of JSON (`journal.head` reads them back)."""
    execution_id, pipeline, version, parameters, *rest = start
    rest_text = plain_json(rest)
    return (f'{{"start": [{_quoted(execution_id)}, {_quoted(pipeline)}, {plain_json(version)}, '
            f'{parameters}, {rest_text[1:-1]}]}}')


def version_line(digest: str, document: str) -> str:
    """The journal line of a pipeline version whose document the history may not have yet:
    its digest and its document, a JSON text (one line, ASCII: `snapshot.document_text`), as
    it is, so `journal.head` reads back the very text its digest was made of."""
    return f'{{"version": ["{digest}", {document}]}}'


_PACK = struct.Struct("<d").pack  # a time as its 8 bytes: their hex is exact and cheap to write


def time_text(time: float | None) -> str | None:
    """A time as a journal line may hold it: the hex of its 8 bytes (IEEE 754, little-endian),
    exact and a third of the cost of `float.hex` (`journal.read` takes both)."""
    return _PACK(time).hex() if type(time) is float else time


def outputs_json(refs: dict[str, ArtifactRef], artifacts: ArtifactStore) -> str:
    """A run's outputs as its row keeps them: each one's digest, format, size and type, and a
    file's identity when last verified (``seen``) or a small value's own text (``inline``)."""
    if len(refs) == 1:  # the usual step
        for name, ref in refs.items():
            return f"{{{_quoted(name)}: {output_json(ref, artifacts)}}}"
    return "{" + ", ".join([f"{_quoted(name)}: {output_json(ref, artifacts)}"
                            for name, ref in refs.items()]) + "}"


def output_json(ref: ArtifactRef, artifacts: ArtifactStore) -> str:
    if ref.inline is not None:
        return (f'{{"digest": "{ref.digest}", "format": {_quoted(ref.format)}, "size": {ref.size}, '
                f'"type": {_quoted(ref.type)}, "inline": {_quoted(ref.inline)}}}')
    return plain_json({"digest": ref.digest, "format": ref.format, "size": ref.size,
                       "type": ref.type, "seen": artifacts.seen(ref)})


@functools.lru_cache(maxsize=256)  # a run says the same few things of most of its steps
def why_json(why: str) -> str:
    return plain_json(why)
