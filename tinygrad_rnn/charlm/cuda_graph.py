"""The training step recorded once as a CUDA graph and replayed per minibatch.

On a GPU at D2L's sizes a step costs host time, not GPU time: dozens of CuPy calls
and the autograd's Python take about 2 ms, while the kernels need a fraction of
that. A CUDA graph records the kernels of one step once; each later step is one
launch. A replay runs the same kernels on the same device memory, which shapes
everything here:

* The inputs live in static buffers. Each step copies its token ids and targets
  into them, after checking them on the host, since nothing in a graph may read
  back to the host. The hidden state carries over in buffers that the step itself
  writes last (truncated BPTT: no gradient flows into it): one (D·L, N, h) buffer
  for an RNN or a GRU, two for an LSTM (H and C).
* The outputs are copied into static buffers too: the loss, and that state.
* The parameters are updated in place (plain SGD). Adam keeps its step count on the
  host, where a graph would freeze it, so it is refused, as is SGD with momentum or
  weight decay (not recorded, so not checked on a GPU).
* Dropout between layers is refused too: its masks are drawn on the host, an
  upload the graph cannot record, and a replay would reuse one mask for ever.
* Whatever the graph cannot see makes the next step record it again: parameters
  given new arrays (``load_state_dict``), another learning rate or clipping norm.
* CuPy refuses cuBLAS calls while it records, so the recorded GEMMs run on the
  backend's own tiled kernel (``CupyBackend.tiled_matmul``); they agree with cuBLAS's
  to rounding.

The first step runs eagerly: kernels compile and cuBLAS sets itself up, so
the recording meets no first-use work. The second records the graph, then launches it.

``Trainer`` (and ``train``) replay the step from a graph wherever one can be recorded
(:meth:`GraphedStep.can_record`: backend ``cupy``, float32 or float64, plain SGD);
``cuda_graph=False`` (``--no-cuda-graph``) runs it eagerly. ``docs/benchmarks.md`` has
the figures for both on an H100.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_rnn import Tensor, as_tensor, backends, optim
from tinygrad_rnn.backends import no_read_back

#: ``step(tokens (N, T), targets (T·N,), state) -> (mean loss, state after)``: one
#: training step (forward, loss, backward, clip, update) on tensors of one backend; the
#: state is a tensor (D·L, N, h), or a tuple of them (an LSTM's ``(H, C)``).
Step = Callable[[Tensor, Tensor, Any], tuple[Tensor, Any]]
#: The dtypes the cupy backend's kernels take; others fall back to code that calls cuBLAS.
_GRAPH_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _refusal(optimizer: optim.Optimizer, recorder_given: bool = False,
             model: Any = None) -> str | None:
    """Why a step of ``model`` with ``optimizer`` cannot be replayed from a graph, or
    None if it can."""
    if not isinstance(optimizer, optim.SGD):
        return (f"a CUDA graph replays the step as recorded, so it needs an optimizer whose "
                f"update is all on the GPU: SGD; {type(optimizer).__name__} keeps its step "
                f"count on the host")
    if optimizer.momentum or optimizer.weight_decay:
        return ("a CUDA graph replays plain SGD (the fused update D2L trains with); this SGD "
                f"has momentum={optimizer.momentum}, weight_decay={optimizer.weight_decay} "
                "(train without the graph: --no-cuda-graph, cuda_graph=False)")
    if not optimizer.params:
        return "a CUDA graph needs parameters to train; this optimizer has none"
    param = optimizer.params[0]
    if param.dtype not in _GRAPH_DTYPES:
        return (f"a CUDA graph records the backend's float32/float64 kernels; this model is "
                f"{param.dtype} (train without the graph: --no-cuda-graph, cuda_graph=False)")
    if not recorder_given and not backends.get(param.backend).records_graphs:
        return (f"a CUDA graph needs backend 'cupy'; this model is on {param.backend!r}, "
                "where a step does not wait on the host (drop --cuda-graph)")
    rnn = getattr(model, "rnn", None)
    if getattr(rnn, "dropout", 0) and getattr(rnn, "num_layers", 1) > 1:
        return (f"a CUDA graph cannot replay dropout (p = {rnn.dropout}): its masks are "
                "drawn on the host, and a replay would reuse one mask for every step "
                "(train without the graph: --no-cuda-graph, cuda_graph=False)")
    return None


class GraphedStep:
    """``step`` for minibatches of shape ``(N, T)``, replayed from a CUDA graph.

    ``graphed(X, Y, fresh)``: ``X``, ``Y`` int (N, T) on the host; ``fresh`` starts
    from the zero state, else from the state the previous call left. Returns the mean
    loss as a 0-d device array, overwritten by the next call (copy it to keep it).
    The state is whatever ``model.begin_state(N)`` gives: a tensor, or a tuple of
    tensors (an LSTM's), each carried over in a buffer of its own.

    ``settings()`` returns what the recorded step depends on beyond its arrays (the
    learning rate, the clipping norm); when it changes, the graph is recorded again.
    ``record(body)`` records ``body`` and returns a function that replays it; by
    default the backend's ``record_graph`` (only ``cupy`` has one).
    """

    def __init__(self, step: Step, model: Any, optimizer: optim.Optimizer,
                 batch_shape: tuple[int, int], vocab_size: int,
                 settings: Callable[[], tuple] = tuple,
                 record: Callable[[Callable[[], None]], Callable[[], None]] | None = None
                 ) -> None:
        reason = _refusal(optimizer, recorder_given=record is not None, model=model)
        if reason:
            raise ValueError(reason)
        self._step, self._optimizer, self._model = step, optimizer, model
        self._settings, self._vocab_size = settings, vocab_size
        self._backend = backend = backends.get(optimizer.params[0].backend)
        self._record = record or backend.record_graph
        N, T = batch_shape
        xp = backend.xp
        self._tokens = xp.zeros((N, T), dtype=np.int64)
        self._targets = xp.zeros((T * N,), dtype=np.int64)
        state = model.begin_state(N)
        self._tuple = isinstance(state, tuple)  # an LSTM's (H, C)
        self._states = tuple(s.data for s in (state if self._tuple else (state,)))  # in, out
        self._loss = xp.zeros((), dtype=self._states[0].dtype)
        self._replay: Callable[[], None] | None = None
        self._recorded_for: tuple[list, tuple] = ([], ())
        self._warm = False

    @staticmethod
    def can_record(optimizer: optim.Optimizer, model: Any = None) -> bool:
        """Whether a step of ``model`` with ``optimizer`` can be replayed from a graph:
        its parameters float32 or float64 on a backend that records graphs (``cupy``),
        plain SGD, and no dropout."""
        return _refusal(optimizer, model=model) is None

    def __call__(self, X: np.ndarray, Y: np.ndarray, fresh: bool) -> Any:
        reason = _refusal(self._optimizer, recorder_given=True, model=self._model)
        if reason:  # load_state_dict may have turned momentum on
            raise ValueError(reason)
        X, Y = np.asarray(X), np.asarray(Y)
        if X.shape != self._tokens.shape or Y.shape != X.shape:
            raise ValueError(
                f"the recorded step takes tokens and targets of shape {self._tokens.shape}, "
                f"got {X.shape} and {Y.shape}")
        for name, ids in (("token ids", X), ("targets", Y)):
            if ids.dtype.kind not in "iu":
                raise TypeError(f"{name} must be integers, got {ids.dtype}")
            if ids.size and (ids.min() < 0 or ids.max() >= self._vocab_size):
                raise IndexError(
                    f"{name} out of range: values span [{ids.min()}, {ids.max()}] but must "
                    f"lie in [0, {self._vocab_size - 1}]")
        # asarray queues the upload (CuPy stages it in pinned memory), so nothing waits
        xp, asarray = self._backend.xp, self._backend.asarray
        xp.copyto(self._tokens, asarray(X))
        xp.copyto(self._targets, asarray(Y.T.reshape(-1)))
        if fresh:
            for buffer in self._states:
                buffer.fill(0)
        if self._replay is not None and not self._stale():
            self._replay()
        elif not self._warm:  # a real step, eager: everything it uses gets built
            self._body()
            self._warm = True
        else:
            if self._replay is not None:  # the old graph's memory goes: let it finish first
                self._backend.synchronize()
            try:
                self._replay = self._record(self._body)
            except backends.BackendError as e:  # nothing ran: the parameters are as they were
                raise backends.BackendError(
                    f"{e}; train without the graph: --no-cuda-graph, cuda_graph=False") from e
            self._recorded_for = ([p.data for p in self._optimizer.params], self._settings())
            self._replay()
        return self._loss

    def _stale(self) -> bool:
        """Whether the graph was recorded for other parameter arrays or settings.

        The recorded arrays are held, so no new array can take the place (or the id)
        of one that was freed.
        """
        arrays, settings = self._recorded_for
        return settings != self._settings() or any(
            a is not p.data for a, p in zip(arrays, self._optimizer.params, strict=True))

    def _body(self) -> None:
        """The step on the static buffers; queues GPU work, never waits for it."""
        backend, xp = self._backend, self._backend.xp
        tokens, targets = (as_tensor(a, backend=backend)  # the buffers, not copies
                           for a in (self._tokens, self._targets))
        states = tuple(as_tensor(a, backend=backend) for a in self._states)
        with no_read_back():  # the ids were checked on the host in __call__
            loss, state = self._step(tokens, targets, states if self._tuple else states[0])
        xp.copyto(self._loss, loss.data)
        for buffer, new in zip(self._states, state if self._tuple else (state,), strict=True):
            xp.copyto(buffer, new.data)  # after the backward, which reads H0 (and C0)
