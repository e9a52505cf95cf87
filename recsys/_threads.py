"""One BLAS thread for the many small matrix products of explanations.

Written by hand: threadpoolctl provides the limit, but ``threadpool_limits``
scans the process's libraries on every call (about 5 ms), which would dominate
a one-user explanation; the controller here is built once, on first use. And
a BLAS thread limit is process-wide: two threads (a server explaining two
requests at once) that each set it and restore what they saw can leave it at
one thread for good (the second saw the first's limit as the original). Here
the first to enter sets it and the last to leave restores it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_holders = 0  # contexts open, in every thread
_limiter: Any = None  # threadpoolctl's limiter while any is open


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """A context in which BLAS uses one thread; the original limits return when the last exits.

    Explanations solve thousands of systems of a few hundred unknowns: at that
    size BLAS threads cost more than they save, and on a busy machine they
    wait on each other (LIME's ridge fits ran 3x slower with two threads on
    this 2-core machine while other processes were running). Nested and
    concurrent contexts share one limit.
    """
    global _holders, _limiter
    with _lock:
        if _holders == 0:
            _limiter = _controller().limit(limits=1, user_api="blas")
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _limiter.restore_original_limits()
                _limiter = None
