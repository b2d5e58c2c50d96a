"""Content-addressed object storage behind one interface (local disk now, S3 later).

Callers only ever see keys: nothing outside this module may assume a path on disk.
"""

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from flask import current_app

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Stored:
    key: str  # the sha256 of the bytes
    size: int


class Storage(Protocol):
    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> Stored: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> int:
        """Move a finished local file under key, atomically (a reader sees all of it or nothing); returns its size."""
        ...
    def open(self, key: str) -> BinaryIO: ...
    def read(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with prefix, a folder such as "regions/<sha>/".

        Derived objects that cannot be named one by one (a file's cached regions) live under such a
        folder so they can go with the file; on S3 this is a list-by-prefix plus a batch delete.
        """
        ...


class TooLarge(Exception):
    pass


# Where derived objects (made again from an original when lost) live; see services/regions.py.
DERIVED_NAMESPACES = ("thumbs", "previews", "regions")
# Export files and their reports (services/exports.py), and an annotation import's uploaded file
# until its job has applied it (services/annotation_imports.py): not derived, but named by key.
NAMED_NAMESPACES = (*DERIVED_NAMESPACES, "exports", "imports")


class LocalStorage:
    """Objects under root/objects/ab/cd/<key>; a derived key ns/name[/more] under root/ns/na/name[/more]."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if "/" in key:
            namespace, *names = key.split("/")
            # Only the known namespaces: "objects" or "tmp" would reach the originals or uploads.
            if namespace not in NAMED_NAMESPACES or any(part in ("", ".", "..") for part in names):
                raise ValueError(f"bad storage key {key!r}")
            # A key's folders are folders on disk, so a key prefix ending in "/" is one directory.
            return self.root.joinpath(namespace, names[0][:2], *names)
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / "objects" / key[:2] / key[2:4] / key

    def _atomic_write(self, target: Path, fill) -> None:
        # Written beside its final place and renamed: a reader never sees half a file, and a crash
        # leaves only a temp file, never a wrong object under a valid key.
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> Stored:
        """Store a stream under its sha256; an object already there is kept (de-duplication)."""
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"larger than {max_bytes // (1024 * 1024)} MB")
                    digest.update(chunk)
                    out.write(chunk)
            key = digest.hexdigest()
            target = self._path(key)
            if target.exists():
                os.unlink(tmp)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return Stored(key, size)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._atomic_write(self._path(key), lambda out: out.write(data))

    def put_file(self, key: str, path: Path) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = Path(path).stat().st_size
        try:
            os.replace(path, target)  # one rename when both are on the same filesystem
        except OSError:
            with open(path, "rb") as source:
                self._atomic_write(target, lambda out: shutil.copyfileobj(source, out, CHUNK))
            Path(path).unlink()
        return size

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under a folder-like prefix ("regions/<sha>/"); a missing one is fine."""
        if not prefix.endswith("/") or "/" not in prefix[:-1]:
            raise ValueError(f"bad storage prefix {prefix!r}: a namespace and a folder, ending in '/'")
        shutil.rmtree(self._path(prefix[:-1]), ignore_errors=True)

    def wipe(self) -> None:
        """Remove every object (tests and instance resets only)."""
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)


def storage_from_url(url: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStorage(Path(parsed.path if parsed.scheme else url))
    raise ValueError(f"unsupported STORAGE_URL scheme {parsed.scheme!r} (file:// is supported)")


def get_storage() -> Storage:
    """The app's storage backend, built once per app."""
    app = current_app._get_current_object()
    if "loupe.storage" not in app.extensions:
        app.extensions["loupe.storage"] = storage_from_url(app.config["STORAGE_URL"])
    return app.extensions["loupe.storage"]
