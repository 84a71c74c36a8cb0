"""Layers, losses and initialisers (``tg.nn``), shaped after ``torch.nn``."""

from . import functional, init
from .containers import ModuleList, Sequential
from .layers import RNN, Linear, ReLU, Tanh
from .module import Module, Parameter

__all__ = ["RNN", "Linear", "Module", "ModuleList", "Parameter", "ReLU", "Sequential", "Tanh",
           "functional", "init"]
