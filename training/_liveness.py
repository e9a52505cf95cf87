"""Whether the process that left something behind (a staged folder, a RUNNING MLflow run) still lives.

A fairrec run records its host name and process id where it stages work; the next run
cleans up after a process of this host that is gone. Processes of another host are
never judged: their pids mean nothing here.
"""

from __future__ import annotations

import os
import socket

__all__ = ["host_name", "process_alive"]


def host_name() -> str:
    """This machine's host name, as recorded next to a process id."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists on this host (signal 0 probes without signalling).

    >>> process_alive(os.getpid())
    True
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
