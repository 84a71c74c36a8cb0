"""Recording a CUDA graph on CuPy, and replaying it: ``CupyBackend.record_graph``'s capture.

The body runs once, on a stream of its own in capture mode, so its kernels are recorded
and not run; the memory it allocates comes from a pool kept for this graph alone, since
every replay writes to those same blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import BackendError, no_read_back


class Replay:
    """A recorded CUDA graph, and the memory pool its kernels read and write."""

    def __init__(self, graph: Any, pool: Any) -> None:
        self.graph, self.pool = graph, pool  # the pool lives as long as the graph

    def __call__(self) -> None:
        self.graph.launch()


def record(cupy: Any, body: Callable[[], None]) -> Replay:
    """The kernels ``body`` queues, recorded as a graph; a failure ends the capture (Ctrl-C
    too) and raises :class:`BackendError` saying what a recorded body must not do."""
    pool = cupy.cuda.MemoryPool()
    stream = cupy.cuda.Stream(non_blocking=True)  # the legacy default stream cannot capture
    with cupy.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        try:
            with no_read_back():
                body()
        except BaseException as e:  # Ctrl-C too must end the capture
            try:
                stream.end_capture()
            except cupy.cuda.runtime.CUDARuntimeError:
                pass  # the failure above invalidated the capture; its error is the one to see
            if not isinstance(e, Exception):
                raise
            raise BackendError(
                f"recording a CUDA graph failed: {type(e).__name__}: {e} (the recorded code "
                "must only queue GPU work: no read-back, no upload, no synchronisation)"
            ) from e
        graph = stream.end_capture()
    return Replay(graph, pool)
