"""one_blas_thread: one BLAS thread inside, the original limits back after the last exit."""

from __future__ import annotations

import threading

import numpy  # noqa: F401 (loads its BLAS before threadpoolctl looks)
import pytest
import scipy.linalg  # noqa: F401 (loads scipy's BLAS too, so both are limited)
from threadpoolctl import threadpool_info, threadpool_limits

from recsys._threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.fixture(autouse=True)
def _two_threads():
    """Start every test from two BLAS threads, whatever the machine's default."""
    if not _blas_threads():
        pytest.skip("no BLAS thread pool visible to threadpoolctl")
    with threadpool_limits(2, user_api="blas"):
        yield


def test_one_thread_inside_and_the_original_after():
    assert set(_blas_threads()) == {2}
    with one_blas_thread():
        assert set(_blas_threads()) == {1}
        with one_blas_thread():  # nested
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}  # the outer context still holds it
    assert set(_blas_threads()) == {2}


class _Recorder:
    """Stands in for threadpoolctl's controller: records when limits are set and restored."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def limit(self, *, limits: int, user_api: str) -> _Recorder:
        self.events.append(f"limit {user_api}={limits}")
        return self

    def restore_original_limits(self) -> None:
        self.events.append("restore")


def test_overlapping_threads_set_once_and_restore_after_the_last(monkeypatch):
    # A enters, B enters, A leaves, B leaves. Each context saving and restoring for itself
    # would end at B's saved "1" (A's limit) for good; the shared limit is set when A
    # enters and restored when B, the last, leaves. (A fake controller: OpenBLAS does not
    # reliably show a limit set from a worker thread while the main thread holds one.)
    import recsys._threads as threads_module

    recorder = _Recorder()
    monkeypatch.setattr(threads_module, "_controller", lambda: recorder)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, list[str]] = {}

    def a() -> None:
        with one_blas_thread():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with one_blas_thread():
            b_in.set()
            a_out.wait(5)
            seen["after a left"] = list(recorder.events)

    workers = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(10)
    assert seen["after a left"] == ["limit blas=1"]
    assert recorder.events == ["limit blas=1", "restore"]


def test_an_exception_inside_still_restores():
    with pytest.raises(RuntimeError, match="boom"), one_blas_thread():
        raise RuntimeError("boom")
    assert set(_blas_threads()) == {2}
