"""The journal of a running execution: the step runs it finished and has not yet committed to
the history database, one JSON line each, appended as each step ends (copied into the file
mapped in memory where the file system allows, else with one ``write()``: see `Journal`).

Why a journal: a SQLite commit costs ~35 µs (WAL, synchronous=NORMAL), several times the
runner's whole cost per step; an append costs ~1 µs. So a run appends each finished step here
at once and commits them to ``history.db`` in batches (`writer.HistoryWriter`), and removes the journal
when the execution's end is committed. A process killed in between leaves its journal behind;
the next `History` opened on the folder replays it into the database, in the transaction that
marks the execution interrupted, and removes it (`History.mark_interrupted`).

What survives what: once ``write()`` returns, or the copy into the shared mapping is made, the
bytes are in the operating system's page cache, so a killed process (kill -9, a crash, an
out-of-memory kill) loses nothing journaled.
A power cut or an operating-system crash can lose the last lines, as SQLite's WAL with
synchronous=NORMAL can lose its last transactions: the history is then an earlier, consistent
state. A write or copy cut short by the kill leaves a last line without its newline (or not
JSON, or with zeros in it: `read` stops at the first zero); `read` drops it: that step was still
finishing.

One file per execution, ``journal/<quoted execution id>.jsonl`` in the state folder; each line
is JSON (ASCII, so a newline only ever ends a line): first, the execution's start, which the
history's thread records with its first commit, ``{"start": [...]}`` (`rows.start_line`), and
maybe the pipeline version whose document it has to write with it, ``{"version": [digest,
document]}`` (`rows.version_line`; both read back by `head`); then each step run, ``{"run":
[...]}`` (the values of its `schema.step_row`, see `rows.journal_line`; the start and end maybe
as the hex of their 8 bytes, `rows.time_text`: exact, and a sixth of the cost of writing a
number), and, last, maybe the execution's end. Once the end is committed the file is cleared
and kept, as ``journal/<host>-<pid>.spare``, for the next execution's journal in that folder
(`Journal.remove`).
"""

from __future__ import annotations

import atexit
import errno
import json
import mmap
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

from ..errors import StateError

FOLDER = "journal"
JSON_FIELDS = (7, 9, 10, 15)  # a row's fields that are JSON texts: key parts, outputs, metadata, why
TIMES = (3, 4)  # its start and end: a line may hold them as texts (`rows.time_text`)


def _not_json(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _plain_encoder():
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii
    except ImportError:  # pragma: no cover - CPython has it
        c_make_encoder = None
    if c_make_encoder is None:  # pragma: no cover
        return json.dumps
    # One C encoder for every call (json.dumps makes one a call: most of its cost for a small
    # value). No circular-reference markers: only our own plain data goes through it.
    encode = c_make_encoder(None, _not_json, encode_basestring_ascii, None, ": ", ", ",
                            False, False, True)
    return lambda value: "".join(encode(value, 0))


plain_json = _plain_encoder()
plain_json.__doc__ = "``json.dumps(value)`` for plain data (str, numbers, None, lists, dicts)."
_SCAN = json.JSONDecoder().scan_once  # json.loads without its wrapper (half its cost on a row)


def plain_loads(text: str):
    """``json.loads(text)``, faster on the short texts the history keeps."""
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, ValueError):  # not JSON: json.loads says why
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


class Journal:
    """Appends finished step rows of one execution; the file is made at the first append.

    Where it can, the journal copies each line into the file mapped in memory (shared: the
    copy is the file's page cache, as a ``write()``'s bytes are) rather than making a system
    call a line (on a VM a ``write()`` a step cost ~2 µs of system time a step; the copy made
    the 1000-step chain 0.3-0.7 µs a step faster, see docs/design.md). What is mapped is
    first written with zeros (its pages made at once, `_append_zeros`) and its blocks reserved
    (``posix_fallocate``), so a full disk fails there, as a clear error, never as a SIGBUS in
    the copy; past the lines the file holds zeros, and `read` stops at the first. Without
    ``posix_fallocate`` (macOS, Windows), or if writing, reserving or mapping fails, lines are
    appended with ``write()``."""

    def __init__(self, state_folder: Path, execution_id: str):
        self.path = state_folder / FOLDER / (quote(execution_id, safe="") + ".jsonl")
        self.size = 0  # bytes appended since the last `clear`
        self._fd: int | None = None
        self._map: mmap.mmap | None = None  # the file mapped, its first `_room` bytes
        self._room = 0
        self._maps = _fallocate is not None  # False once reserving or mapping failed

    def append(self, lines: str) -> None:
        """Append lines: JSON texts (`plain_json`), one or more joined by newlines."""
        data = (lines + "\n").encode()
        end = self.size + len(data)
        if end <= self._room:  # the usual append: a copy into the mapped file
            self._map[self.size:end] = data
        else:
            try:
                self._append_beyond(data, end)
            except OSError as exc:
                raise StateError(
                    f"A finished step could not be recorded in the history's journal {self.path}: "
                    f"{exc.strerror or exc}. Check that the disk has room and the state folder is "
                    "writable, or point JUPYTER_PIPELINES_HOME (or --home) elsewhere.") from None
        self.size = end

    def _append_beyond(self, data: bytes, end: int) -> None:
        """An append past what is mapped: the file made (or the folder's spare taken), or
        mapped further, or written to."""
        if self._fd is None:
            self.path.parent.mkdir(exist_ok=True)
            if not self._adopt_spare():
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
                self._maps = self._maps and os.fstat(self._fd).st_size == 0  # (a new file only)
        if self._maps and (end <= self._room or self._map_to(end)):
            self._map[self.size:end] = data
            return
        written = os.write(self._fd, data)
        if written < len(data):  # a regular file takes it all in one write unless the disk is full
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self._fd, view):]

    def _adopt_spare(self) -> bool:
        """Take the journal folder's spare (`remove`) as this journal's file: renamed, zeros,
        mapped."""
        with _SPARE_LOCK:
            spare = _SPARES.pop(self.path.parent, None) if self._maps else None
        if spare is None:
            return False
        try:
            os.rename(spare.path, self.path)
        except OSError:  # its folder was removed (and made again): a new file then
            spare._drop()
            return False
        self._fd, self._map, self._room = spare._fd, spare._map, spare._room
        spare._fd, spare._map, spare._room = None, None, 0
        return True

    def _map_to(self, end: int) -> bool:
        """Reserve and map the file's first bytes, at least ``end`` of them (and 4 times what
        was mapped); False, and lines written from here on, if the file system will not."""
        room = max(_MAP_FIRST, 4 * self._room)
        while room < end:
            room *= 4
        try:
            _append_zeros(self._fd, room - self._room)  # (the file ends where the map did)
            _fallocate(self._fd, 0, room)
            mapped = mmap.mmap(self._fd, room, flags=mmap.MAP_SHARED)
        except (OSError, ValueError):  # (not supported here, or no room left)
            self._unmap()
            self._maps = False
            os.ftruncate(self._fd, self.size)  # the file ends where its lines do: write() appends
            return False
        self._unmap()
        self._map, self._room = mapped, room
        return True

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map, self._room = None, 0

    def clear(self) -> None:
        """Everything appended is committed to the database: start the file afresh."""
        if self._fd is None or not self.size:
            return
        if self._map is not None:
            self._map[0] = 0  # first: `read` stops at the first zero, so it reads nothing now
            self._map[1:self.size] = bytes(self.size - 1)
        else:
            os.ftruncate(self._fd, 0)
        self.size = 0

    def close(self) -> None:
        self._unmap()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """The execution's end is committed: the journal has nothing left to tell. A mapped one
        is cleared and kept as its folder's spare (one a folder, for the last `SPARE_FOLDERS`
        folders), under the name `spare_name` (not a journal's: nothing to replay), and the
        next journal opened there takes it: its pages are mapped already, where a new file's
        fault in one by one at their first copy (~4 µs a page on a VM, over a microsecond a
        step of the 1000-step chain)."""
        if self._map is None or self._room > _SPARE_LIMIT or not self._keep():
            self._drop()

    def _keep(self) -> bool:
        folder, dropped = self.path.parent, None
        with _SPARE_LOCK:
            if folder in _SPARES:
                return False
            try:
                self.clear()
                spare = folder / spare_name()
                os.rename(self.path, spare)
            except (OSError, ValueError):  # (ValueError: the map closed meanwhile)
                return False
            self.path = spare
            _SPARES[folder] = self
            if len(_SPARES) > SPARE_FOLDERS:  # the longest unused goes
                dropped = _SPARES.pop(next(iter(_SPARES)))
        if dropped is not None:
            dropped._drop()
        return True

    def _drop(self) -> None:
        self.close()
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # it could not be made either (the folder is not one): nothing to remove
            pass


def spare_name(pid: int | None = None) -> str:
    """The file name of a process's spare journal (`Journal.remove`): its host and pid."""
    return f"{quote(socket.gethostname(), safe='')}-{os.getpid() if pid is None else pid}.spare"


def _drop_spares() -> None:
    with _SPARE_LOCK:
        spares = list(_SPARES.values())
        _SPARES.clear()
    for spare in spares:
        spare._drop()


_fallocate = getattr(os, "posix_fallocate", None)  # (Linux and other POSIX systems; not macOS)
_MAP_FIRST = 64 << 10  # bytes of a journal first mapped (~100 lines); then 4 times as many
_SPARE_LIMIT = 4 << 20  # bytes: a journal mapped further is not kept as the spare
SPARE_FOLDERS = 4  # journal folders that keep a spare (this process's last ones)
_SPARES: dict[Path, Journal] = {}  # by journal folder, see `Journal.remove`
_SPARE_LOCK = threading.Lock()
atexit.register(_drop_spares)  # (after the history's last commits: registered before them)
_ZEROS = bytes(64 << 10)  # (`_append_zeros`)


def _append_zeros(fd: int, count: int) -> None:
    """Append ``count`` zeros to a journal's file (opened to append) before it is mapped further:
    the kernel makes their pages in the page cache in one call. The first copy into each page
    of a mapping over blocks only reserved would fault that page in alone, ~4 µs a page on a
    VM: the 1000-step chain's first journal in a new state folder (~0.9 MB) took 0.9 ms of
    faults, and takes 0.3 ms with its zeros written first (a folder's spare has its pages)."""
    zeros = memoryview(_ZEROS)
    while count > 0:
        chunks = [zeros] * min(count // len(zeros), 256)
        if not chunks:
            chunks = [zeros[:count]]
        written = os.writev(fd, chunks)
        if not written:  # (a regular file takes some, or says why not)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        count -= written


def _forget_spares() -> None:
    """(In a forked child.) The spares are the parent's: never taken, nor removed at exit."""
    global _SPARE_LOCK
    _SPARE_LOCK = threading.Lock()  # (another thread of the parent may have held it)
    _SPARES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_spares)


def _time(value):
    """A time as a line holds it: a number, or a text: the hex of its 8 bytes
    (`rows.time_text`), or `float.hex` (lines of earlier versions)."""
    if type(value) is not str:
        return value
    try:
        if len(value) == 16 and not value.startswith(("0x", "-0x")):
            return _UNPACK(bytes.fromhex(value))[0]
        return float.fromhex(value)
    except ValueError:  # not ours: the row keeps no time rather than a wrong one
        return None


_UNPACK = struct.Struct("<d").unpack


def head(path: Path) -> tuple[list | None, tuple[int | str, str] | None]:
    """What a journal begins with: its execution's start (`rows.start_line`: the values of
    its `rows.start_row`, or None if the line is not there or cut short) and the pipeline
    version whose document is still to be written (`rows.version_line`: its digest, or the id
    an earlier release wrote, and its document as the text its digest was made of)."""
    try:
        with open(path, "rb") as handle:
            lines = [handle.readline(), handle.readline()]
    except OSError:
        return None, None
    start = version = None
    if lines[0].startswith(b'{"start": ['):
        start = _start(lines.pop(0))
    first = lines[0]
    if first.startswith(b'{"version": [') and first.endswith(b"]}\n"):
        try:
            key, document = json.loads(first)["version"]
            text = first[first.index(b", ") + 2:-3].decode("ascii")
        except (ValueError, TypeError, KeyError):
            return start, None
        if type(key) in (int, str) and isinstance(document, dict):
            version = (key, text)
    return start, version


def _start(line: bytes) -> list | None:
    try:
        start = json.loads(line)["start"]
    except (ValueError, TypeError, KeyError):  # (cut short by a kill)
        return None
    if not isinstance(start, list) or len(start) != 9 or type(start[2]) not in (int, str) \
            or not isinstance(start[3], dict) or type(start[5]) is not int:
        return None
    start[3] = plain_json(start[3])  # the parameters, as the history keeps them: a JSON text
    return start


def any_left(state_folder: Path) -> bool:
    """Whether the state folder's journal folder holds anything (journals, or spares)."""
    try:
        with os.scandir(state_folder / FOLDER) as entries:
            return any(True for _ in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def left_behind(state_folder: Path, alive: Callable[[int], bool] | None = None) -> dict[str, Path]:
    """The journals in the state folder, by execution id. With ``alive`` (a pid's test), the
    spares of this host's processes that no longer run are removed on the way (a killed
    process leaves its spare behind: zeros)."""
    try:
        entries = list(os.scandir(state_folder / FOLDER))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    if alive is not None:
        host = spare_name(0)[:-len("0.spare")]
        for entry in entries:
            pid = entry.name[len(host):-len(".spare")]
            if (entry.name.startswith(host) and entry.name.endswith(".spare") and pid.isdigit()
                    and int(pid) != os.getpid() and not alive(int(pid))):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
    return {unquote(e.name[:-6]): Path(e.path) for e in entries if e.name.endswith(".jsonl")}


def read(path: Path, width: int) -> tuple[list[list], dict | None]:
    """The rows of a journal (lists of ``width`` values), in the order they
    were appended, and the execution's end if it was journaled (``{"end": [status, end,
    reason], "copies": [[rowid, step, start, end]...]}``); times written as texts (`rows.time_text`) are
    numbers again; a last line cut short by a kill (no newline, or not JSON) is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], None
    data = data.split(b"\0", 1)[0]  # a mapped journal: zeros past its lines (`Journal`)
    rows, end = [], None
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is cut short, or empty
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("run"), list) and len(value["run"]) == width:
            row = [plain_json(v) if i in JSON_FIELDS and v is not None else v
                   for i, v in enumerate(value["run"])]
            for i in TIMES:
                row[i] = _time(row[i])
            rows.append(row)
        elif isinstance(value, list) and len(value) == width:  # a row as it is (before "run")
            rows.append(value)
        elif isinstance(value, dict) and isinstance(value.get("end"), list) and len(value["end"]) == 3:
            for copy in value.get("copies", []):
                if isinstance(copy, list) and len(copy) == 4:
                    copy[2:] = [_time(t) for t in copy[2:]]
            end = value
    return rows, end
