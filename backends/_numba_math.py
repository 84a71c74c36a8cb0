"""Elementwise math for the Numba kernels: tanh, exp, sigmoid in arithmetic LLVM vectorizes.

Numba compiles ``np.tanh`` and ``np.exp`` to a scalar libm call per element; the
kernels of :mod:`._numba_kernels` call :func:`tanh`, :func:`exp_nonpositive` and
:func:`sigmoid` from here instead (Cephes' polynomials, branch-free). Each helper is an
``@overload`` (one implementation per float type, chosen while compiling) or an
``@njit(inline="always")`` function, so it compiles into the calling kernel and is
cached with it.

Numba's ``cache=True`` checks only the source file of each cached kernel, not the
files of the functions it calls: after editing this module, delete
``backends/__pycache__/_numba_kernels.*.nb[ic]``, or a second process keeps loading
the kernels compiled from the old version. Touching ``_numba_kernels.py`` is not
enough where Numba stamps its cache with the file's content hash (0.68 does), not
its modification time.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic, overload

# Every Numba function of the backend is compiled with these.
# cache=True: a second process loads the machine code from __pycache__ instead of
# compiling again. fastmath={"contract"} and no other flag: LLVM may fuse ``a * b + c``
# into one fused multiply-add (rounded once instead of twice, so never less exact), but
# may not reorder sums, drop NaN/inf handling or approximate division: the results
# stay within a few ulps of NumPy's. The polynomials of tanh and exp are chains of
# multiply-adds, and FMA made them 30% faster (float32, AMD EPYC, measured: tanh 1.50
# -> 1.07 ns and sigmoid 0.97 -> 0.68 ns an element, max error 1.25 and 2.00 ulp either
# way). A Numba function's flags hold for its own code only, so the helpers here carry
# them too. error_model="numpy": x / 0 is inf as in NumPy, not a ZeroDivisionError;
# that check is a branch in every division, which would stop LLVM vectorizing the loop.
MATH_OPTIONS = {"fastmath": {"contract"}, "error_model": "numpy"}
JIT_OPTIONS = {"cache": True, "nogil": True, **MATH_OPTIONS}
# For the kernels that promise NumPy's bits (sums, scatter-adds, ``g * (1 - y*y)``):
# no fused multiply-add, each operation rounded as NumPy rounds it.
EXACT_JIT_OPTIONS = {**JIT_OPTIONS, "fastmath": False}


# ------------------------------------------------------------------------ tanh
# Numba's np.tanh is a scalar libm call (~16 ns per element here: 40x slower than
# NumPy's SIMD loop in float32, 8x in float64), which would dominate the forward.
# So tanh is built from calls-free arithmetic that LLVM vectorizes:
#   |x| < 0.625: Cephes' odd polynomial (tanhf.c) / rational function (tanh.c) in x²;
#   beyond: 1 - 2e/(1 + e) with e = exp(-2|x|) <= 0.29 (no cancellation), where exp
#   is Cephes' reduction exp(y) = 2^n exp(r), |r| <= ln2/2, and a Taylor polynomial.
# Both are computed and one selected, so there is no branch. Against long-double
# tanh on 7.5M points in [-25, 25]: at most 1.48 ulp off (float32) and 1.47 ulp
# (float64); NumPy's own np.tanh is at most 1.37 and 1.18 ulp off on the same points.
# Cost, 573k elements (tanh of Zx + 0): float32 0.42 ms (NumPy 0.21), float64 1.3 ms (NumPy
# 1.0).
_TANH_CUT = 0.625  # Cephes' switch between the two formulas
_TANH_CLAMP = 20.0  # tanh(x) rounds to ±1 beyond ~9 (float32) and ~19.1 (float64)


def _tanh_small(x):
    """tanh(x) for |x| < 0.625, meaningless beyond; one implementation per float type."""
    raise TypeError("only callable from @njit code (an @overload stub)")


def _exp_reduced(y):
    """exp(y) for y in [-87, 0] (float32) or [-708, 0] (float64); one per float type."""
    raise TypeError("only callable from @njit code (an @overload stub)")


def _tanh_small_f32(x):
    T = np.float32
    s = x * x
    p = (
        ((T(-5.70498872745e-3) * s + T(2.06390887954e-2)) * s - T(5.37397155531e-2)) * s
        + T(1.33314422036e-1)
    ) * s - T(3.33332819422e-1)
    y = p * s * x + x
    return y if x != 0 else x  # keeps tanh(-0.0) = -0.0


def _tanh_small_f64(x):
    s = x * x
    num = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3
    den = (
        (s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3
    ) * s + 4.84406305325125486048e3
    y = x + x * s * (num / den)
    return y if x != 0 else x


def _exp_reduced_f32(y):
    T = np.float32
    n = np.floor(y * T(1.4426950408889634) + T(0.5))  # nearest integer to y/ln2
    r = (y - n * T(0.693359375)) - n * T(-2.12194440e-4)  # ln2 split hi+lo: n*hi is exact
    p = T(1 / 5040)  # Taylor to r^7: the next term is < 6e-9 for |r| <= ln2/2
    for c in (1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1.0, 1.0):
        p = p * r + T(c)
    return p * _pow2_neg(n)


def _exp_reduced_f64(y):
    n = np.floor(y * 1.4426950408889634 + 0.5)
    r = (y - n * 6.93145751953125e-1) - n * 1.42860682030941723212e-6
    p = 1 / 6227020800  # Taylor to r^13: the next term is < 5e-18 for |r| <= ln2/2
    for c in (
        1 / 479001600,
        1 / 39916800,
        1 / 3628800,
        1 / 362880,
        1 / 40320,
        1 / 5040,
        1 / 720,
        1 / 120,
        1 / 24,
        1 / 6,
        0.5,
        1.0,
        1.0,
    ):
        p = p * r + c
    return p * _pow2_neg(n)


@overload(_tanh_small, jit_options=MATH_OPTIONS)
def _tanh_small_impl(x):
    # Chosen from the type while compiling: no dtype branch at run time.
    return _tanh_small_f32 if x == types.float32 else _tanh_small_f64


@overload(_exp_reduced, jit_options=MATH_OPTIONS)
def _exp_reduced_impl(y):
    return _exp_reduced_f32 if y == types.float32 else _exp_reduced_f64


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float whose IEEE-754 bit pattern is ``bits``: int32 -> float32, int64 -> float64."""
    float_type = {types.int32: types.float32, types.int64: types.float64}.get(bits)
    if float_type is None:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))

    return float_type(bits), codegen


def _pow2_neg(n):
    """2**n for an integer-valued float n in [-126, 0] (float32) or [-1022, 0] (float64)."""
    raise TypeError("only callable from @njit code (an @overload stub)")


# 2**n written straight into the exponent field (biased by 127 / 1023), with a zero
# mantissa: exact, and a shift and a bit cast that LLVM vectorizes (3x faster exp
# than building 2**n from its binary digits by selects).
# The outer np.int32 matters: Numba widens int32 arithmetic to int64, whose bits would
# make a float64 (and upcast the float32 polynomial with it).
def _pow2_neg_f32(n):
    return _float_from_bits(np.int32(np.int32(n + np.float32(127)) << 23))


def _pow2_neg_f64(n):
    return _float_from_bits(np.int64(n + 1023.0) << 52)


@overload(_pow2_neg, jit_options=MATH_OPTIONS)
def _pow2_neg_impl(n):
    return _pow2_neg_f32 if n == types.float32 else _pow2_neg_f64


@numba.njit(inline="always", **JIT_OPTIONS)  # inlined in Numba's IR: LLVM alone won't, too big
def tanh(x):
    """tanh(x), branch-free (see above); NaN stays NaN, ±inf gives ±1.

    Not NumPy's ``np.tanh`` bit for bit (the composed path's): both are within 1.5 ulp.
    """
    T = type(x)
    a = abs(x)
    a = T(_TANH_CLAMP) if a > T(_TANH_CLAMP) else a  # NaN stays NaN
    e = _exp_reduced(-(a + a))
    large = T(1) - (e + e) / (T(1) + e)
    large = large if x > 0 else (-large if x < 0 else x)  # x itself for NaN
    return _tanh_small(x) if abs(x) < T(_TANH_CUT) else large


# --------------------------------------------------------------------------- exp
def _exp_floor(y):
    """The y below which exp(y) is flushed to 0: -87 for float32, -708 for float64."""
    raise TypeError("only callable from @njit code (an @overload stub)")


@overload(_exp_floor, jit_options=MATH_OPTIONS)
def _exp_floor_impl(y):
    if y == types.float32:
        return lambda y: np.float32(-87)
    return lambda y: -708.0


@numba.njit(inline="always", **JIT_OPTIONS)
def exp_nonpositive(y):
    """exp(y) for y <= 0, branch-free so LLVM vectorizes the loop around it.

    Below the floor the result is flushed to 0: exp(-87) = 1.6e-38 is just above the
    smallest normal float32 (1.2e-38), exp(-708) = 3.3e-308 above float64's (2.2e-308),
    where 2**n in the exponent field stops being exact. NumPy keeps the subnormals
    below; a softmax term that small changes neither the sum nor a gradient that counts.
    """
    T = type(y)
    floor = _exp_floor(y)
    e = _exp_reduced(floor if y < floor else y)
    return T(0) if y < floor else e


# ----------------------------------------------------------------------- sigmoid
@numba.njit(inline="always", **JIT_OPTIONS)
def sigmoid(x):
    """1 / (1 + exp(-x)) as ``(1 or e) / (1 + e)`` with e = exp(-|x|) <= 1, branch-free.

    The base backend's overflow-free form (``Backend.sigmoid``) with this module's exp,
    so LLVM vectorizes it; NaN stays NaN, ±inf gives 1 and 0. Against long-double
    sigmoid on 7.5M points in [-80, 80] (float32) and [-700, 700] (float64): at most
    2.40 ulp off (float32) and 2.41 (float64); NumPy's exp in the same form, 3.48 and
    2.41. Below x = -87 (float32) or -708 (float64) exp is flushed to 0 (see
    :func:`exp_nonpositive`), so sigmoid is 0 where NumPy's is a subnormal.
    Not ``0.5 + 0.5·tanh(x/2)``: that cancels for x < 0 (float32, measured: 12 ulp off
    at x = -5, 2455 at -10, and 0 from x = -18.5 on).
    """
    T = type(x)
    e = exp_nonpositive(-abs(x))
    return (T(1) if x >= 0 else e) / (T(1) + e)
