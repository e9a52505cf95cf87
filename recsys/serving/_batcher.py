"""Answer the list requests that arrive together with one batched engine call.

The first-stage models are batched (one ``recommend`` call for many users costs
little more than for one), so :class:`ListBatcher` hands every request that is
waiting at the same turn of the event loop to
:meth:`~recsys.serving.ServingEngine.recommend_many`. No request waits for a
batch to fill: the first one schedules the work for the loop's next turn and
whatever arrived by then joins it. Each list is the one the request would get
alone.
"""

from __future__ import annotations

import asyncio

from recsys.serving._engine import ListRequest, ServingEngine
from recsys.serving._holder import ModelHolder
from recsys.serving._schemas import Recommendations

__all__ = ["ListBatcher"]


class ListBatcher:
    """Batches :class:`ListRequest` s for the engine the holder serves now (one engine per batch)."""

    def __init__(self, holder: ModelHolder) -> None:
        self.holder = holder
        self._pending: list[tuple[ListRequest, asyncio.Future]] = []

    async def recommend(self, request: ListRequest) -> tuple[ServingEngine, Recommendations]:
        """The list for ``request`` and the engine (model version) that made it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((request, future))
        if len(self._pending) == 1:
            loop.call_soon(self._run)
        return await future

    def _run(self) -> None:
        batch, self._pending = self._pending, []
        engine = self.holder.engine
        try:
            results = engine.recommend_many([request for request, _ in batch])
        # one failing request must not fail the batch: then each is answered on its own
        except Exception:  # noqa: BLE001
            results = None
        for i, (request, future) in enumerate(batch):
            if future.done():  # the client went away
                continue
            if results is not None:
                future.set_result((engine, results[i]))
                continue
            try:
                future.set_result((engine, engine.recommend_many([request])[0]))
            except Exception as exc:  # noqa: BLE001 - re-raised in the request that caused it
                future.set_exception(exc)
