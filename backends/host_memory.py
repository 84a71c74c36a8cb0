"""Host memory for the CPU backends: freed blocks stay in the process (glibc).

The policy changes ``malloc`` for the whole process, so a library must not set it behind
its user's back: the ``tinygrad-rnn train`` command turns it on (its default; off with
``TINYGRAD_RNN_KEEP_FREED_MEMORY=0``), and a program of one's own opts in by calling
:func:`keep_freed_memory` once.
"""

from __future__ import annotations

import ctypes
import os
import platform

#: Set to "0" to leave glibc's malloc as it is (see :func:`keep_freed_memory`).
KEEP_FREED_MEMORY_ENV = "TINYGRAD_RNN_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_memory_policy_set = False


def keep_freed_memory() -> bool:
    """Let freed host memory stay in the process (glibc); True if the policy is now on.

    A training step allocates and frees the same large arrays every step (H and dZ
    are T·N·h floats: 1.1 MiB at h = 256). glibc hands blocks that big back to the OS
    (as mmap'd blocks, or by trimming the heap) and gets them back as fresh zeroed
    pages on the next step, one page fault per 4 KiB. Measured here: 800-1100 faults
    a step at h = 256-512, a quarter of the char-LM step at h = 256, depending on the
    order of frees. Blocks under 32 MiB then come from the heap, and up to 256 MiB of
    free heap is kept. Peak memory is unchanged. Elsewhere (macOS, musl, Windows) and
    with ``TINYGRAD_RNN_KEEP_FREED_MEMORY=0`` nothing is changed.
    """
    global _memory_policy_set
    if _memory_policy_set:
        return True
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mmap threshold first: setting either one turns glibc's dynamic threshold off
    _memory_policy_set = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    return _memory_policy_set
