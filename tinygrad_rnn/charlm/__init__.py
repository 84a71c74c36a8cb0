"""The character-level language model of D2L §8.4–8.6 and §9.1–9.4 (RNN, GRU, LSTM, deep
and bidirectional), built on tinygrad_rnn's public API.

``data`` (the book, ``Vocab``, the minibatch iterators), ``model`` (``RNNLM``),
``train`` (``TrainConfig``, ``Trainer`` and its ``fit``), ``checkpoint`` (its file
format), ``cuda_graph`` (the training step replayed from a CUDA graph) and ``cli``
(the ``tinygrad-rnn`` command). Nothing here reaches into the framework's private
parts: it is written as any program using tinygrad_rnn would be.
"""

from .data import SeqDataLoader, Vocab, load_corpus, load_data_time_machine
from .model import RNNLM
from .train import EpochStats, TrainConfig, Trainer, TrainingDiverged, load_model

__all__ = ["RNNLM", "EpochStats", "SeqDataLoader", "TrainConfig", "Trainer", "TrainingDiverged",
           "Vocab", "load_corpus", "load_data_time_machine", "load_model"]
