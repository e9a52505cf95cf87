"""A content hash of a bundle directory, recorded at registration and checked before serving."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["bundle_sha256"]


def bundle_sha256(directory: str | Path) -> str:
    """SHA-256 over every file's relative path and bytes, in sorted path order.

    Any added, removed, renamed or changed file changes it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "a.json").write_text("{}")
    ...     first = bundle_sha256(d)
    ...     _ = (Path(d) / "a.json").write_text("{ }")
    ...     first != bundle_sha256(d)
    True
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"bundle directory {root} does not exist")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix().encode("utf-8")
        digest.update(len(rel).to_bytes(8, "big") + rel)
        size = path.stat().st_size
        digest.update(size.to_bytes(8, "big"))
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
