"""Layers, losses and initialisers (``tg.nn``), shaped after ``torch.nn``."""

from . import functional, init, utils
from .cells import GRUCell, LSTMCell, RNNCell
from .containers import ModuleList, Sequential
from .layers import Dropout, Embedding, Linear, ReLU, Tanh
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, RNNBase

__all__ = ["GRU", "LSTM", "RNN", "Dropout", "Embedding", "GRUCell", "LSTMCell", "Linear",
           "Module", "ModuleList", "Parameter", "RNNBase", "RNNCell", "ReLU", "Sequential",
           "Tanh", "functional", "init", "utils"]
