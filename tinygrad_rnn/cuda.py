"""``tg.cuda.is_available()`` and ``tg.cuda.device_count()``, as ``torch.cuda``'s (D2L's
``try_gpu`` asks them); the GPU is the cupy backend."""

from .devices import device_count, is_available

__all__ = ["device_count", "is_available"]
