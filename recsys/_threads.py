"""One BLAS thread for the many small matrix products of explanations.

Written by hand: threadpoolctl provides the limit, but ``threadpool_limits``
scans the process's libraries on every call (about 5 ms), which would dominate
a one-user explanation; the controller here is built once, on first use.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS uses one thread (restored on exit).

    Explanations solve thousands of systems of a few hundred unknowns: at that
    size BLAS threads cost more than they save, and on a busy machine they
    wait on each other (LIME's ridge fits ran 3x slower with two threads on
    this 2-core machine while other processes were running).
    """
    return _controller().limit(limits=1, user_api="blas")
