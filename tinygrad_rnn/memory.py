"""Memory before allocation: refuse a job whose estimated size exceeds the memory free.

One rule, used by whoever is about to allocate something large (the char-level model,
``Trainer.create``): :func:`check_fits` compares an estimate in bytes with
:func:`available_bytes` (``MemAvailable`` in ``/proc/meminfo``, else the free pages
``os.sysconf`` reports) and raises :class:`OutOfMemoryError` before anything is
allocated, so a mistyped ``--hidden 1000000000`` ends in one sentence, not in NumPy's
``MemoryError`` traceback minutes later (or in the machine swapping).

The estimate is the caller's and a lower bound (the arrays it names, not the
temporaries of each op), so a job refused here could not have run; a job let through
may still fail, and ``MemoryError`` stays the error for that. Host memory only: on a
GPU the parameters are made on the host first, and the device's own limit is CuPy's
to report.
"""

from __future__ import annotations

import os

__all__ = ["OutOfMemoryError", "available_bytes", "check_fits", "gib"]


class OutOfMemoryError(MemoryError):
    """A job's estimated memory exceeds what is available; nothing was allocated.

    The name is torch's (``torch.OutOfMemoryError``); the base is Python's
    ``MemoryError``, not torch's ``RuntimeError``, so code that already handles a failed
    allocation handles this refusal too. Not a ``ValueError``: the arguments are valid,
    the machine is too small (the same call runs where there is more memory).
    """


def available_bytes() -> int | None:
    """Bytes of memory a new allocation can get without swapping: ``MemAvailable`` from
    ``/proc/meminfo`` (Linux), else free pages × page size from ``os.sysconf``; None
    where neither exists (then nothing is refused)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def gib(nbytes: float) -> str:
    """``nbytes`` in GiB, for messages: ``'1,209.3 GiB'``."""
    return f"{nbytes / 2**30:,.1f} GiB"


def check_fits(nbytes: int, what: str, hint: str = "") -> None:
    """Raise :class:`OutOfMemoryError` if ``nbytes`` (an estimate of what ``what`` will
    allocate) is more than :func:`available_bytes`. ``hint``: what to change, appended."""
    available = available_bytes()
    if available is None or nbytes <= available:
        return
    raise OutOfMemoryError(
        f"{what} needs about {gib(nbytes)} of memory, but only {gib(available)} is "
        f"available (MemAvailable); refusing before allocating it" + (f": {hint}" if hint
                                                                       else ""))
