"""``tg.nn.utils``, as ``torch.nn.utils``: gradient clipping."""

from ..optim.clip import clip_grad_norm, clip_grad_norm_

__all__ = ["clip_grad_norm", "clip_grad_norm_"]
