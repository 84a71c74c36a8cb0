"""Optimizers, learning-rate schedulers and gradient clipping (``tg.optim``), as
``torch.optim``: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad`` with parameter
groups and torch's state dicts; ``tg.optim.lr_scheduler``; ``clip_grad_norm`` (D2L's)
and ``clip_grad_norm_`` (torch's, also ``tg.nn.utils.clip_grad_norm_``)."""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_norm_
from .optimizer import Optimizer, flatten_state_dict, unflatten_state_dict
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "clip_grad_norm",
           "clip_grad_norm_", "flatten_state_dict", "lr_scheduler", "unflatten_state_dict"]
