"""Where artifact bytes live: a local folder, or any fsspec URL (``s3://...``, ``memory://``).

Both are a `MutableMapping[str, bytes]`; writes are atomic (a temporary name, then a rename),
so a crash never leaves a half-written artifact under its real key.

A local file of `SYNC_FROM` bytes or more is flushed to the disk (fsync) before its rename; a
smaller one is not (an fsync costs more than the whole step of a small output). A killed
process loses neither: the bytes are in the operating system's cache once written. A power
cut can lose a small one the history already names; it then reads as missing or corrupt,
never as wrong bytes (every read is checked against its digest), and the step runs again.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, MutableMapping
from pathlib import Path

SYNC_FROM = 1 << 20  # bytes: a file this large is fsynced before its rename


class LocalBackend(MutableMapping):
    """Files under a folder; keys are relative paths like ``ab/abcdef...``."""

    def __init__(self, root: str | os.PathLike):
        from .state import ensure_folder

        self.root = ensure_folder(root, "artifact store")
        self._prefix = f"{self.root}{os.sep}"  # identity() is on every cache hit: no Path maths
        self._folders: set[str] = set()  # the key folders (``ab/``) known to exist

    def _path(self, key: str) -> Path:
        return self.root / key

    def __getitem__(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: bytes) -> None:
        self.commit(self.stage(value), key)

    def open(self, key: str):
        """The stored bytes as a binary file, to stream them (raises KeyError if absent)."""
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def identity(self, key: str) -> tuple | None:
        """What changes whenever the file is written or replaced: inode, size, mtime, ctime
        (ctime cannot be set back by user tools). None if there is no such file."""
        try:
            st = os.stat(self._prefix + key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def stage(self, value) -> Path:
        """Write ``value`` under a hidden temporary name (the first half of an atomic write)."""
        tmp = self.root / f".staged.{secrets.token_hex(8)}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(value)
            if len(value) >= SYNC_FROM:
                handle.flush()
                os.fsync(handle.fileno())
        return tmp

    def commit(self, staged: Path, key: str) -> None:
        """Give a staged write its key: one rename, so a reader sees all of it or nothing."""
        path = self._path(key)
        folder = key.rpartition("/")[0]
        if folder not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        try:
            os.replace(staged, path)
        except FileNotFoundError:  # the folder was removed meanwhile (by hand): make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, path)

    def discard(self, staged: Path) -> None:
        staged.unlink(missing_ok=True)

    def __delitem__(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._path(key).is_file()

    def __iter__(self) -> Iterator[str]:
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"


class FsspecBackend(MutableMapping):
    """Any fsspec filesystem: written to a temporary name and moved into place."""

    def __init__(self, url: str):
        try:
            import fsspec
        except ImportError:  # pragma: no cover - fsspec is a dependency
            raise ImportError("A store URL needs fsspec: pip install fsspec") from None
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def __getitem__(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: bytes) -> None:
        self.commit(self.stage(value), key)

    def open(self, key: str):
        """The stored bytes as a binary file, to stream them (raises KeyError if absent)."""
        try:
            return self.fs.open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    def stage(self, value) -> str:
        tmp = f"{self.root}/.staged.{secrets.token_hex(8)}.tmp"
        self.fs.pipe_file(tmp, bytes(value))
        return tmp

    def commit(self, staged: str, key: str) -> None:
        path = self._path(key)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(staged, path)

    def discard(self, staged: str) -> None:
        try:
            self.fs.rm_file(staged)
        except FileNotFoundError:
            pass

    def __delitem__(self, key: str) -> None:
        if not self.fs.isfile(self._path(key)):
            raise KeyError(key)
        self.fs.rm_file(self._path(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.fs.isfile(self._path(key))

    def __iter__(self) -> Iterator[str]:
        prefix = self.root.rstrip("/") + "/"
        for path in self.fs.find(self.root):
            name = path[len(prefix):] if path.startswith(prefix) else path
            if not name.rsplit("/", 1)[-1].startswith("."):
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"FsspecBackend({self.url!r})"


def open_backend(location: str | os.PathLike) -> MutableMapping:
    """A folder path, or a URL with a scheme (``file://``, ``memory://``, ``s3://``...)."""
    text = os.fspath(location)
    if "://" in text:
        return FsspecBackend(text)
    return LocalBackend(text)
