"""The content-addressed artifact store: every step output, saved once per distinct content."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from .backends import open_backend
from .serialize import SerializationError, decode, encode

_PARALLEL = 1 << 20  # bytes from which hashing runs beside the write


@dataclass(frozen=True)
class ArtifactRef:
    digest: str   # sha256 of the format and the bytes
    format: str
    size: int
    type: str     # the Python type, for display

    @property
    def key(self) -> str:
        return f"{self.digest[:2]}/{self.digest}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> ArtifactRef:
        return cls(**doc)


class ArtifactStore:
    """Artifacts under ``location``: a folder or an fsspec URL."""

    def __init__(self, location: str | os.PathLike):
        self.location = os.fspath(location)
        self.backend = open_backend(location)

    def put(self, value: Any, *, what: str = "a value", name: str = "name") -> ArtifactRef:
        """Save ``value``; ``what`` and ``name`` (its output name) word the error if it can't be."""
        try:
            fmt, data = encode(value)
        except SerializationError as exc:
            raise SerializationError(f"{what} {exc}. Make it a DataFrame, array, JSON value or a "
                                     f"picklable object, or keep it private (`_{name}`) so it is "
                                     "not an output.") from None
        view = memoryview(data)
        hasher = hashlib.sha256(fmt.encode() + b"\0")
        staged = None
        if len(view) >= _PARALLEL:  # big: write while hashing (sha256 releases the GIL)
            with ThreadPoolExecutor(max_workers=1) as pool:
                hashing = pool.submit(hasher.update, view)
                staged = self.backend.stage(view)
                hashing.result()
        else:
            hasher.update(view)
        ref = ArtifactRef(hasher.hexdigest(), fmt, len(view),
                          f"{type(value).__module__}.{type(value).__qualname__}")
        if ref.key in self.backend:  # content-addressed: the same bytes are stored once
            if staged is not None:
                self.backend.discard(staged)
        elif staged is not None:
            self.backend.commit(staged, ref.key)
        else:
            self.backend[ref.key] = view
        return ref

    def get(self, ref: ArtifactRef) -> Any:
        try:
            data = self.backend[ref.key]
        except KeyError:
            raise SerializationError(
                f"Artifact {ref.digest[:12]} ({ref.type}) is missing from the store at "
                f"{self.location}; it may have been deleted. Re-run the step that made it."
            ) from None
        return decode(ref.format, data)

    def __contains__(self, ref: ArtifactRef) -> bool:
        return ref.key in self.backend

    def __repr__(self) -> str:
        return f"ArtifactStore({self.location!r})"
