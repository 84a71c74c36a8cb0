"""Layers, losses and initialisers (``tg.nn``), shaped after ``torch.nn``."""

from . import functional, init, utils
from .activation import (
                         ELU,
                         GELU,
                         Flatten,
                         Identity,
                         LeakyReLU,
                         LogSoftmax,
                         Sigmoid,
                         SiLU,
                         Softmax,
                         Softplus,
)
from .cells import GRUCell, LSTMCell, RNNCell
from .containers import ModuleList, Sequential
from .layers import Dropout, Embedding, Linear, ReLU, Tanh
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, Parameter
from .normalization import LayerNorm
from .recurrent import GRU, LSTM, RNN, RNNBase

__all__ = ["GRU", "LSTM", "RNN", "Dropout", "Embedding", "GRUCell", "LSTMCell", "Linear",
           "Module", "ModuleList", "Parameter", "RNNBase", "RNNCell", "ReLU", "Sequential",
           "Tanh", "functional", "init", "utils",
           # issue 20: activations, shapes, LayerNorm, losses
           "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "ELU", "Flatten", "GELU",
           "Identity", "L1Loss", "LayerNorm", "LeakyReLU", "LogSoftmax", "MSELoss", "NLLLoss",
           "SiLU", "Sigmoid", "Softmax", "Softplus"]
