"""The content-addressed artifact store: every step output, saved once per distinct content.

Trust comes from the digest: an artifact's key is the SHA-256 of its format and bytes, and the
history records that digest for every output. Nothing is handed back unless the bytes still
hash to it: a missing file raises `ArtifactMissing`, changed bytes `ArtifactCorrupted`, both
naming the step, output, path and digest. That check is what makes unpickling our own
artifacts acceptable: a pickle is only loaded after its bytes were shown to be the ones the
step wrote.

Hashing costs about 0.5 ms per MB, so a file is hashed once and then known by its identity
(inode, size, mtime and ctime, as git's index does): it is hashed again whenever that identity
changes. The history keeps each output's identity beside its digest (``seen``), so a new
process does not hash again what has not changed. Any write to the file changes its ctime,
which no user tool can set back, so an edit is always caught; damage that changes no metadata
(failing media) is what ``doctor`` finds, as it re-hashes everything.

Small JSON values (at most `INLINE_LIMIT` bytes: a count, a metric, a flag, a short string or
list) get no file: their bytes travel in the reference (``inline``), which the history keeps
beside the digest. A file would cost more than the value (a stat to find it, an inode to keep
it), and a metric is what a condition step reads. They are checked like files: against the
digest, on every read; the digest is the same a file of those bytes would have, so a cache
key does not depend on where the bytes are.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

from ..errors import ArtifactCorrupted, ArtifactError, ArtifactMissing, StateError
from .backends import open_backend
from .journal import plain_json
from .serialize import SerializationError, decode, encode

_PARALLEL = 1 << 20  # bytes from which hashing runs beside the write
_CHUNK = 1 << 20     # bytes hashed at a time when checking a file without loading it
INLINE_LIMIT = 256   # bytes of JSON from which an output gets a file of its own


class _StorageKey:
    """``ref.key``, the artifact's path in the store (``ab/abcd...``): made at its first read
    and kept in the instance, as `functools.cached_property` does, without its lock (which
    costs more than the key on Python 3.11; a race makes the same string twice)."""

    def __get__(self, ref: ArtifactRef | None, owner=None):
        if ref is None:
            return self
        key = ref.__dict__["key"] = f"{ref.digest[:2]}/{ref.digest}"
        return key


@dataclass(frozen=True, init=False)
class ArtifactRef:
    digest: str   # sha256 of the format and the bytes
    format: str
    size: int
    type: str     # the Python type, for display
    inline: str | None = None  # a small JSON value's text: it has no file (`INLINE_LIMIT`)

    key = _StorageKey()

    def __init__(self, digest: str, format: str, size: int, type: str, inline: str | None = None):
        # (the fields written straight into the instance: a frozen dataclass's own __init__
        # goes through object.__setattr__ for each, twice the cost; one is made a step)
        fields = self.__dict__
        fields["digest"], fields["format"], fields["size"] = digest, format, size
        fields["type"], fields["inline"] = type, inline

    def as_dict(self) -> dict:
        doc = {"digest": self.digest, "format": self.format, "size": self.size, "type": self.type}
        if self.inline is not None:
            doc["inline"] = self.inline
        return doc

    @classmethod
    def from_dict(cls, doc: dict) -> ArtifactRef:  # "seen" is the file's
        return cls(doc["digest"], doc["format"], doc["size"], doc["type"], doc.get("inline"))


def content_digest(fmt: str, chunks) -> str:
    """The digest an artifact is stored under: SHA-256 of its format, a NUL, and its bytes."""
    hasher = hashlib.sha256(fmt.encode() + b"\0")
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


class ArtifactStore:
    """Artifacts under ``location``: a folder or an fsspec URL."""

    def __init__(self, location: str | os.PathLike):
        self.location = os.fspath(location)
        self.backend = open_backend(location)
        self._verified: dict[str, tuple] = {}  # key -> file identity when its bytes last matched
        self._inline_ok: dict[str, str] = {}  # digest -> a small value's text that matched it
        self._stat = getattr(self.backend, "identity", None)  # None: the backend cannot tell

    def put(self, value: Any, *, what: str | None = None, name: str = "name",
            step: str | None = None) -> ArtifactRef:
        """Save ``value``; ``what`` (else output ``name`` of ``step``) words the error if it
        can't be."""
        ref = inline_ref(value)
        if ref is not None:
            return ref
        try:
            fmt, data = encode(value)
        except SerializationError as exc:
            raise SerializationError(f"{_saying(what, value, name, step)} {exc}. Make it a "
                                     "DataFrame, array, JSON value or a picklable object, or keep "
                                     f"it private (`_{name}`) so it is not an output.") from None
        if fmt == "json" and len(data) <= INLINE_LIMIT:  # no file: the reference holds it
            return _inline(data.decode(), type(value))
        try:
            kind = type(value)
            return self._write(data, fmt, _TYPE_NAMES.get(kind) or _type_name(kind))
        except OSError as exc:
            raise StateError(
                f"{_saying(what, value, name, step)} cannot be written to the artifact store at "
                f"{self.location}: {exc.strerror or exc}. Check that the disk has room and the "
                "folder is writable, or point the store elsewhere (JUPYTER_PIPELINES_HOME, or "
                "Pipeline(store=...))."
            ) from None

    def _write(self, data, fmt: str, type_name: str) -> ArtifactRef:
        view = memoryview(data)
        staged = None
        if len(view) >= _PARALLEL:  # big: write while hashing (sha256 releases the GIL)
            hasher = hashlib.sha256(fmt.encode() + b"\0")
            with ThreadPoolExecutor(max_workers=1) as pool:
                hashing = pool.submit(hasher.update, view)
                staged = self.backend.stage(view)
                hashing.result()
            digest = hasher.hexdigest()
        else:
            digest = hashlib.sha256(b"%s\0%s" % (fmt.encode(), view)).hexdigest()
        ref = ArtifactRef(digest, fmt, len(view), type_name)
        # Content-addressed: the same bytes are stored once, unless the stored copy went bad,
        # in which case this write repairs it.
        if self.check(ref) is None:  # intact (and now known as verified)
            if staged is not None:
                self.backend.discard(staged)
            return ref
        if staged is not None:
            self.backend.commit(staged, ref.key)
        else:
            self.backend[ref.key] = view
        self._remember(ref.key)
        return ref

    def loader(self, step: str, refs: dict[str, ArtifactRef]) -> Callable[[ArtifactRef], Any]:
        """What loads the stored outputs ``refs`` of ``step`` (a `StepRecord`'s ``loader``),
        naming the step and output in its errors."""
        names = {ref.digest: name for name, ref in refs.items()}

        def load(ref: ArtifactRef) -> Any:
            return self.get(ref, step=step, output=names.get(ref.digest))

        return load

    def get(self, ref: ArtifactRef, *, step: str | None = None, output: str | None = None) -> Any:
        """The stored value, only if its bytes still hash to ``ref.digest``; ``step`` and
        ``output`` name it in errors."""
        if ref.inline is not None:
            if self.check(ref):
                raise self.corrupted(ref, step, output)
            return decode(ref.format, ref.inline.encode())
        before = self._identity(ref.key)
        try:
            data = self.backend[ref.key]
        except KeyError:
            raise self.missing(ref, step, output) from None
        if before is None or before != self._verified.get(ref.key) or before != self._identity(ref.key):
            if content_digest(ref.format, [data]) != ref.digest:
                raise self.corrupted(ref, step, output)
            self._remember(ref.key, before)
        try:
            return decode(ref.format, data)
        except SerializationError:
            raise
        except Exception as exc:  # intact bytes this environment cannot read back
            raise ArtifactError(
                f"{_what(ref, step, output)} at {self.path(ref)} is intact (its digest matches) "
                f"but cannot be read back here: {type(exc).__name__}: {exc}. It was written as "
                f"{ref.format}; check the versions of pandas/pyarrow/numpy/scikit-learn, or re-run "
                "the step to store it again."
            ) from None

    def check(self, ref: ArtifactRef) -> str | None:
        """None if the artifact is stored intact; else ``"missing"`` or ``"corrupt"``. Streams
        the bytes (never holds a whole file) and skips files verified since they last changed."""
        if ref.inline is not None:  # the history's copy of a small value: hashed, never stat'ed
            if self._inline_ok.get(ref.digest) == ref.inline:  # (this very text, hashed before)
                return None
            if content_digest(ref.format, [ref.inline.encode()]) != ref.digest:
                return "corrupt"
            if len(self._inline_ok) >= 16384:  # (each under INLINE_LIMIT bytes)
                self._inline_ok.clear()
            self._inline_ok[ref.digest] = ref.inline
            return None
        key = ref.key
        before = self._stat(key) if self._stat is not None else None
        if before is not None and before == self._verified.get(key):
            return None
        try:
            digest = content_digest(ref.format, self._chunks(key))
        except KeyError:
            return "missing"
        if digest != ref.digest:
            self._verified.pop(key, None)
            return "corrupt"
        if before is not None and before == self._identity(key):
            self._verified[key] = before
        return None

    def seen(self, ref: ArtifactRef) -> list | None:
        """The identity of the file when its bytes last matched (for the history to keep)."""
        if ref.inline is not None:
            return None
        identity = self._verified.get(ref.key)
        return list(identity) if identity is not None else None

    def vouch(self, ref: ArtifactRef, seen: list | None) -> None:
        """Take the history's word that the file had identity ``seen`` when it was verified:
        a new process then hashes only the files that changed since (like git's index)."""
        if seen is not None and ref.key not in self._verified:
            self._verified[ref.key] = tuple(seen)

    def forget_verified(self) -> None:
        """Hash every file again on its next read (``doctor`` does; so does a new process)."""
        self._verified.clear()
        self._inline_ok.clear()

    def path(self, ref: ArtifactRef) -> str:
        """Where the artifact's bytes are (a file path or URL), for messages."""
        if ref.inline is not None:
            return f"the history's copy of the small value {ref.digest[:12]}"
        return f"{self.location.rstrip('/')}/{ref.key}"

    def missing(self, ref: ArtifactRef, step: str | None = None, output: str | None = None):
        return ArtifactMissing(
            f"{_what(ref, step, output)} is missing from the store: there is no file {self.path(ref)} "
            f"(digest {ref.digest}); it may have been deleted. It is not returned. Re-run "
            f"{_rerun(step)} to store it again: a run treats a missing output as a cache miss."
        )

    def corrupted(self, ref: ArtifactRef, step: str | None = None, output: str | None = None):
        return ArtifactCorrupted(
            f"{_what(ref, step, output)} is corrupt: the bytes of {self.path(ref)} no longer match "
            f"the SHA-256 digest {ref.digest} they were stored under ({_changed(ref)}), so it is "
            f"not returned. Re-run {_rerun(step)} to store it again: a run treats a corrupt output "
            "as a cache miss. `jupyter-pipelines doctor` checks the whole state folder."
        )

    def _identity(self, key: str) -> tuple | None:
        return self._stat(key) if self._stat is not None else None

    def _remember(self, key: str, identity: tuple | None = None) -> None:
        identity = identity or self._identity(key)
        if identity is not None:
            self._verified[key] = identity

    def _chunks(self, key: str) -> Iterator[bytes]:
        opener = getattr(self.backend, "open", None)
        if opener is None:
            yield self.backend[key]
            return
        with opener(key) as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    def __contains__(self, ref: ArtifactRef) -> bool:
        return ref.inline is not None or ref.key in self.backend

    def __repr__(self) -> str:
        return f"ArtifactStore({self.location!r})"


def inline_ref(value: Any) -> ArtifactRef | None:
    """The reference `ArtifactStore.put` gives a small int, str, bool, None or finite float:
    it holds the value's JSON text, the very bytes `encode` makes (ASCII), and no file is
    written (so no store is needed); None for any other value, or a longer one. The run loop's
    quick way to save the usual small output; made without building a JSON encoder."""
    kind = type(value)
    try:
        if kind is int:  # (json writes an int as its repr)
            text = int.__repr__(value)
        elif kind is str:
            text = _quoted(value)
        elif kind in (bool, type(None)) or (kind is float and math.isfinite(value)):
            text = plain_json(value)
        else:
            return None
    except ValueError:  # an int too long to print: `encode` decides
        return None
    return _inline(text, kind) if len(text) <= INLINE_LIMIT else None


def _inline(text: str, kind: type) -> ArtifactRef:
    """The reference of a small JSON value (ASCII ``text``): it holds the text, no file; its
    digest is the one a file of those bytes would have."""
    return ArtifactRef(hashlib.sha256(b"json\0" + text.encode()).hexdigest(), "json", len(text),
                       _TYPE_NAMES.get(kind) or _type_name(kind), text)


_TYPE_NAMES: dict[type, str] = {}  # a type -> its qualified name, as references give it


def _type_name(kind: type) -> str:
    if len(_TYPE_NAMES) >= 1024:  # types made on the fly (a class cell run again and again)
        _TYPE_NAMES.clear()
    name = _TYPE_NAMES[kind] = f"{kind.__module__}.{kind.__qualname__}"
    return name


def _saying(what: str | None, value: Any, name: str, step: str | None) -> str:
    """What is being saved, for an error (made only then)."""
    if what is not None:
        return what
    if step is not None:
        return f"Step `{step}` output `{name}` ({type(value).__name__})"
    return "a value"


def _what(ref: ArtifactRef, step: str | None, output: str | None) -> str:
    if step and output:
        return f"Stored output `{output}` ({ref.type}) of step `{step}`"
    if step:
        return f"A stored output ({ref.type}) of step `{step}`"
    return f"Artifact {ref.digest[:12]} ({ref.type})"


def _changed(ref: ArtifactRef) -> str:
    return ("the history database was changed after it was written" if ref.inline is not None
            else "the file was changed after it was written")


def _rerun(step: str | None) -> str:
    return f"step `{step}` (e.g. `%pipeline run`)" if step else "the step that made it"
