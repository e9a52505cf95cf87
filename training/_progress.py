"""Progress lines for long steps: visible in a terminal, quiet when asked (e.g. in CI)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Prints ``label ...`` when a step starts and its duration when it ends."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        self.info(f"  {label} ...")
        yield
        self.info(f"  {label}: done in {time.perf_counter() - start:.2f}s")
