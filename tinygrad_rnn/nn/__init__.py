"""Layers, losses and initialisers (``tg.nn``), shaped after ``torch.nn``."""

from . import functional, init
from .layers import RNN, Linear
from .module import Module, Parameter

__all__ = ["RNN", "Linear", "Module", "Parameter", "functional", "init"]
