"""Shared fixtures: the backends to test on, and bounded hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from helpers import book_path
from hypothesis import HealthCheck, settings

import tinygrad_rnn as tg

# "ci" is bounded so the whole suite stays within a few minutes on 2 cores; the
# deadline is off because the first call of a Numba kernel includes its compile.
settings.register_profile(
    "ci", max_examples=25, deadline=None, print_blob=True, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile(
    "dev", max_examples=10, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile(
    "thorough", max_examples=300, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _why_unavailable(name: str) -> str | None:
    try:
        tg.backends.get(name)
    except tg.backends.BackendUnavailable as e:
        return str(e)
    return None


ALL_BACKENDS = ["numpy", "numba", "cupy"]


def backend_params(names=ALL_BACKENDS):
    """pytest params for ``names``: unusable ones skip with the backend's own reason."""
    params = []
    for name in names:
        reason = _why_unavailable(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        if name == "cupy":
            marks.append(pytest.mark.cupy)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=backend_params())
def backend(request) -> str:
    """Each backend name in turn (cupy skips with the reason where it cannot run)."""
    return request.param


@pytest.fixture(params=backend_params(["numba", "cupy"]))
def other_backend(request) -> str:
    """The non-reference backends, compared against numpy in parity tests."""
    return request.param


@pytest.fixture(autouse=True)
def _reset_backend():
    """Every test starts and ends on the reference backend with a fixed seed."""
    tg.set_backend("numpy")
    tg.manual_seed(0)
    yield
    tg.set_backend("numpy")


@pytest.fixture
def book() -> str:
    """The book's path (``helpers.book_path``: the package's lookup, no download); the
    test skips, saying why, without it."""
    return book_path()


@pytest.fixture
def corpus(tmp_path) -> str:
    """A small text file to train on (no download, no book needed)."""
    path = tmp_path / "corpus.txt"
    path.write_text(
        "the time traveller for so it will be convenient to speak of him was expounding a "
        "recondite matter to us his grey eyes shone and twinkled and his usually pale face "
        "was flushed and animated the fire burned brightly\n" * 40, encoding="utf-8")
    return str(path)


def pytest_terminal_summary(terminalreporter):
    """One line per skip reason, however many tests share it (``-ra`` prints one per test
    location: 70 lines of the same CuPy reason on a machine without a GPU)."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        counts[reason] = counts.get(reason, 0) + 1
    if counts:
        terminalreporter.section("skipped, by reason")
        for reason, n in sorted(counts.items(), key=lambda item: -item[1]):
            terminalreporter.line(f"{n:5d}  {reason}")
