"""What survives the kernel: artifacts (step outputs), execution history, model registry."""

from .artifacts import ArtifactRef, ArtifactStore
from .backends import FsspecBackend, LocalBackend, open_backend
from .serialize import SerializationError

__all__ = ["ArtifactRef", "ArtifactStore", "FsspecBackend", "LocalBackend", "SerializationError",
           "open_backend"]
