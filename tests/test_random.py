"""``tinygrad_rnn.random``: the one generator that initialisation and sampling draw from."""

from __future__ import annotations

import tinygrad_rnn as tg
from tinygrad_rnn.random import generator


def test_manual_seed_returns_the_generator_it_installs():
    """catches: manual_seed returns a copy: draws from it do not advance initialisation's."""
    g = tg.manual_seed(5)
    assert g is tg.default_generator and g.numpy_generator is generator()
    first = g.numpy_generator.standard_normal()
    assert tg.manual_seed(5).numpy_generator.standard_normal() == first


# ---------------------------------------------------------------- Generator
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402


def test_a_generator_replays_its_seed_and_differs_from_others():
    """catches: the seed ignored, or two generators sharing one stream."""
    a, b = tg.Generator().manual_seed(5), tg.Generator().manual_seed(5)
    first = tg.rand(4, generator=a).numpy()
    np.testing.assert_array_equal(first, tg.rand(4, generator=b).numpy())
    assert not np.array_equal(first, tg.rand(4, generator=tg.Generator().manual_seed(6))
                              .numpy())
    assert not np.array_equal(first, tg.rand(4, generator=a).numpy())  # it advanced


def test_a_given_generator_leaves_the_default_stream_alone():
    """catches: generator= ignored (drawing from, and advancing, the default)."""
    tg.manual_seed(1)
    expected = tg.randn(3).numpy()
    tg.manual_seed(1)
    g = tg.Generator()
    tg.rand(5, generator=g), tg.randint(9, (5,), generator=g), tg.randn(2, generator=g)
    tg.rand_like(tg.ones(2), generator=g), tg.randint_like(tg.ones(2), 3, generator=g)
    np.testing.assert_array_equal(tg.randn(3).numpy(), expected)


def test_seeds_as_torch():
    """catches: torch's fixed start seed of a new generator, its negative seeds (modulo
    2**64) or its seed range not followed; bools and floats taken as seeds."""
    assert tg.Generator().initial_seed() == 67280421310721
    assert tg.Generator().manual_seed(-1).initial_seed() == 2 ** 64 - 1
    assert tg.manual_seed(np.int64(4)).initial_seed() == tg.initial_seed() == 4
    for bad, error in ((1.5, TypeError), (True, TypeError), ("3", TypeError),
                       (2 ** 64, ValueError), (-2 ** 63 - 1, ValueError)):
        with pytest.raises(error, match="seed"):
            tg.Generator().manual_seed(bad)
    torch = pytest.importorskip("torch")
    assert tg.Generator().initial_seed() == torch.Generator().initial_seed()
    for seed in (-1, -2 ** 63, 2 ** 64 - 1, 0):
        assert (tg.Generator().manual_seed(seed).initial_seed()
                == torch.Generator().manual_seed(seed).initial_seed())


def test_seed_draws_a_fresh_seed_that_replays():
    """catches: seed() not reseeding, or returning another seed than it used."""
    g = tg.Generator()
    s = g.seed()
    assert g.initial_seed() == s and 0 <= s < 2 ** 64
    drawn = tg.rand(3, generator=g).numpy()
    np.testing.assert_array_equal(drawn, tg.rand(3, generator=tg.Generator().manual_seed(s))
                                  .numpy())
    assert tg.seed() == tg.initial_seed() != s  # 2**-64 to collide


def test_get_state_and_set_state_resume_the_stream():
    """catches: a state missing PCG64's buffered 32-bit half (float32 draws use halves:
    after an odd count the next draw starts from it), or get_state aliasing the live
    state."""
    g = tg.Generator().manual_seed(11)
    tg.rand(3, generator=g)  # three float32 draws: a half is buffered
    state = g.get_state()
    assert state.dtype == np.uint64 and state.shape == (7,) and state[4] == 1
    after = [tg.rand(5, generator=g).numpy(), tg.randn(2, dtype="float64", generator=g)
             .numpy()]
    state_copy = state.copy()
    g.manual_seed(99)
    assert g.set_state(state) is g and g.initial_seed() == 11
    np.testing.assert_array_equal(tg.rand(5, generator=g).numpy(), after[0])
    np.testing.assert_array_equal(tg.randn(2, dtype="float64", generator=g).numpy(), after[1])
    np.testing.assert_array_equal(state, state_copy)
    other = tg.Generator().set_state(state)
    np.testing.assert_array_equal(tg.rand(5, generator=other).numpy(), after[0])


def test_set_state_refuses_what_get_state_cannot_give():
    """catches: a malformed state accepted and the generator broken silently."""
    good = tg.Generator().get_state()
    with pytest.raises(TypeError, match="NumPy array"):
        tg.Generator().set_state(list(good))
    with pytest.raises(ValueError, match="uint64 array of shape"):
        tg.Generator().set_state(good.astype(np.int64))
    with pytest.raises(ValueError, match="uint64 array of shape"):
        tg.Generator().set_state(good[:6])
    even = good.copy()
    even[3] -= np.uint64(1)  # PCG64's increment is odd
    with pytest.raises(ValueError, match="not a state"):
        tg.Generator().set_state(even)


def test_the_default_generator_is_the_one_initialisation_and_checkpoints_use():
    """catches: tg.manual_seed no longer giving initialisation the stream of
    ``np.random.default_rng(seed)`` (saved runs and examples replay with it), or the
    checkpoint's ``generator().bit_generator.state`` not restoring tg.rand."""
    tg.manual_seed(0)
    w = tg.nn.init.normal((3, 4))
    expected = np.random.default_rng(0).normal(0.0, 0.01, size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(w.numpy(), expected)
    saved = generator().bit_generator.state
    drawn = tg.rand(4).numpy()
    tg.manual_seed(5)
    generator().bit_generator.state = saved
    np.testing.assert_array_equal(tg.rand(4).numpy(), drawn)


@pytest.mark.parametrize("init, args", [("normal", ((3, 4),)), ("uniform", ((3, 4), -1, 1)),
                                        ("xavier_uniform", ((3, 4),))])
def test_initialisers_take_a_generator(init, args, backend):
    """catches: generator= ignored by an initialiser, or advancing the default."""
    make = getattr(tg.nn.init, init)
    tg.manual_seed(2)
    untouched = tg.rand(2).numpy()
    tg.manual_seed(2)
    a = make(*args, backend=backend, generator=tg.Generator().manual_seed(7))
    b = make(*args, backend=backend, generator=tg.Generator().manual_seed(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(tg.rand(2).numpy(), untouched)
    tg.manual_seed(7)
    np.testing.assert_array_equal(make(*args, backend=backend).numpy(), a.numpy())
    with pytest.raises(TypeError, match="generator must be a tg.Generator"):
        make(*args, generator=np.random.default_rng(0))


# ---------------------------------------------------------------- distributions
# Each test draws N values from a fixed seed and applies a test whose threshold a
# correct sampler passes for all but one seed in 10**6 (KS / chi-square p > 1e-6; a
# mean within 6 standard errors: P(|Z| > 6) = 2e-9). At N = 200,000 a wrong sampler
# fails by far: a uniform shifted by 1% or a normal with std 1.03 gives KS p < 1e-8.
N = 200_000


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_rand_is_uniform_on_0_1(dtype):
    u = tg.rand(N, dtype=dtype, generator=tg.Generator().manual_seed(21)).numpy()
    assert u.dtype == dtype and 0 <= u.min() and u.max() < 1
    assert stats.kstest(u.astype(np.float64), "uniform").pvalue > 1e-6
    # mean 1/2, standard deviation 1/sqrt(12): within 6 standard errors
    assert abs(u.astype(np.float64).mean() - 0.5) < 6 / np.sqrt(12 * N)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_randn_is_standard_normal(dtype):
    z = tg.randn(N, dtype=dtype, generator=tg.Generator().manual_seed(22)).numpy()
    z = z.astype(np.float64)
    assert stats.kstest(z, "norm").pvalue > 1e-6
    assert abs(z.mean()) < 6 / np.sqrt(N)
    # the sample variance's standard error is sqrt(2 / N) for a normal
    assert abs(z.var() - 1) < 6 * np.sqrt(2 / N)


@pytest.mark.parametrize("low, high, dtype", [(0, 10, "int64"), (-3, 4, "int8"),
                                              (250, 256, "uint8"), (0, 2, "bool")])
def test_randint_is_uniform_on_low_to_high(low, high, dtype):
    r = tg.randint(low, high, (N,), dtype=dtype, generator=tg.Generator().manual_seed(23))
    values = r.numpy().astype(np.int64)
    assert r.dtype == dtype and values.min() == low and values.max() == high - 1
    counts = np.bincount(values - low, minlength=high - low)
    assert stats.chisquare(counts).pvalue > 1e-6


def test_the_shapes_of_random_draws_do_not_change_the_distribution():
    """catches: a multi-dimensional draw filled along one axis only (rows repeated)."""
    z = tg.randn(400, 500, generator=tg.Generator().manual_seed(24)).numpy()
    assert stats.kstest(z[:, 0], "norm").pvalue > 1e-6
    assert stats.kstest(z[0, :], "norm").pvalue > 1e-6
    assert np.unique(z, axis=0).shape[0] == 400 and np.unique(z, axis=1).shape[1] == 500


def test_normal_has_its_mean_and_std():
    """catches: mean and std swapped, or std used as a variance."""
    x = tg.normal(1.0, 2.0, (N,), dtype="float64", generator=tg.Generator().manual_seed(25))
    z = (x.numpy() - 1.0) / 2.0
    assert stats.kstest(z, "norm").pvalue > 1e-6
    assert abs(z.mean()) < 6 / np.sqrt(N) and abs(z.var() - 1) < 6 * np.sqrt(2 / N)


def test_normal_as_d2l_calls_it_and_its_refusals():
    """catches: D2L's torch.normal(0, 0.01, size=(2, 1), requires_grad=True) refused; a
    negative std or a tensor mean taken silently."""
    w = tg.normal(0, 0.01, size=(2, 1), requires_grad=True)
    assert w.shape == (2, 1) and w.dtype == np.float32 and w.requires_grad and w.is_leaf
    for args, error, match in (((0, -1.0, (2,)), ValueError, "std must be a finite"),
                               ((0, 1.0), TypeError, "missing its size"),
                               ((tg.zeros(2), 1.0), TypeError, "randn_like"),
                               ((float("nan"), 1.0, (2,)), ValueError, "mean must be finite"),
                               (("0", 1.0, (2,)), TypeError, "mean must be a real number")):
        with pytest.raises(error, match=match):
            tg.normal(*args)
    with pytest.raises(TypeError, match="floating-point dtype"):
        tg.normal(0, 1, (2,), dtype="int64")
