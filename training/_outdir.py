"""An output directory that appears complete or not at all.

Files are written into a hidden staging directory next to the target; only
:meth:`StagedDir.commit` moves it into place (replacing an older result with
two renames). A run that fails leaves the previous result untouched and no
half-written directory under the target's name.

A process killed outright (SIGKILL, a power cut) cannot clean up, so staging
folders carry the host-local process id that made them
(``.NAME.partial-PID-XXXX``); the next run for the same target removes those
of dead processes, and puts back a previous result that a killed commit had
moved aside (``.NAME.old-PID-XXXX``) but not yet replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from recsys.errors import FairrecError
from training._liveness import process_alive

__all__ = ["OutputError", "StagedDir", "clean_stale"]

_STAGED = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[^-]+$")
_TMP_PREFIX = "fairrec-run-"


class OutputError(FairrecError):
    """The output folder (``--out``) cannot be created or written."""


def _owner(entry: Path, name: str) -> tuple[str, int] | None:
    """(kind, pid) of a staging folder of ``name``, or None when ``entry`` is not one."""
    match = _STAGED.match(entry.name)
    if match is None or match["name"] != name:
        return None
    return match["kind"], int(match["pid"])


def clean_stale(target: Path) -> list[Path]:
    """Remove staging folders of ``target`` left by dead processes; restore a result a killed commit moved aside.

    Returns the folders removed (a restored result is not among them).
    """
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for entry in sorted(target.parent.iterdir()):
        owner = _owner(entry, target.name)
        if owner is None or process_alive(owner[1]) or not entry.is_dir():
            continue
        kind, _ = owner
        if kind == "old" and not target.exists():
            entry.rename(target)  # the commit died between its two renames: the previous result comes back
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _clean_stale_tmp() -> None:
    """The same for the unnamed staging folders of runs without ``--out``."""
    for entry in Path(tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*-*"):
        pid = entry.name[len(_TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and entry.is_dir() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


class StagedDir:
    def __init__(self, target: Path | None) -> None:
        self.target = None if target is None else Path(target).resolve()
        pid = os.getpid()
        try:
            if self.target is None:
                _clean_stale_tmp()
                self.path = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{pid}-"))
            else:
                if self.target.exists() and not self.target.is_dir():
                    raise OutputError(f"--out {self.target}: expected a folder (or no file at all), "
                                      "received an existing file")
                blocker = next((a for a in self.target.parents if a.exists()), None)
                if blocker is not None and not blocker.is_dir():
                    raise OutputError(f"--out {self.target}: expected {blocker} to be a folder, received a file")
                self.target.parent.mkdir(parents=True, exist_ok=True)
                clean_stale(self.target)
                self.path = Path(
                    tempfile.mkdtemp(prefix=f".{self.target.name}.partial-{pid}-", dir=self.target.parent)
                )
        except OSError as exc:
            where = tempfile.gettempdir() if self.target is None else self.target
            raise OutputError(f"--out {where}: cannot create the output folder there: {_reason(exc)}") from None
        self.committed = False

    def commit(self) -> Path | None:
        """Move the staged files to the target (or discard them when there is none).

        On failure the previous result is back in place, the staged files are removed
        (by ``__exit__``) and an :class:`OutputError` says why.
        """
        if self.target is None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.committed = True
            return None
        old = None
        try:
            if self.target.exists():
                old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}-{self.path.name[-8:]}")
                self.target.rename(old)
            self.path.rename(self.target)
        except OSError as exc:
            if old is not None and old.exists() and not self.target.exists():
                try:
                    old.rename(self.target)
                except OSError:  # left for clean_stale() of the next run to put back
                    pass
            raise OutputError(
                f"--out {self.target}: could not move the finished result into place: {_reason(exc)}; "
                "nothing was committed"
                + (" and the previous result is kept" if old is not None else "")
            ) from None
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


def _reason(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
