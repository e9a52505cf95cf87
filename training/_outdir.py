"""An output directory that appears complete or not at all.

Files are written into a hidden staging directory next to the target; only
:meth:`StagedDir.commit` moves it into place (replacing an older result with
two renames). A run that fails leaves the previous result untouched and no
half-written directory under the target's name.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["StagedDir"]


class StagedDir:
    def __init__(self, target: Path | None) -> None:
        self.target = None if target is None else Path(target).resolve()
        if self.target is None:
            self.path = Path(tempfile.mkdtemp(prefix="fairrec-run-"))
        else:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(
                tempfile.mkdtemp(prefix=f".{self.target.name}.partial-", dir=self.target.parent)
            )
        self.committed = False

    def commit(self) -> Path | None:
        """Move the staged files to the target (or discard them when there is none)."""
        if self.target is None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.committed = True
            return None
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{self.path.name[-8:]}")
            self.target.rename(old)
        self.path.rename(self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        return self.target

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
