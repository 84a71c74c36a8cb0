"""Packaging: lazy CuPy, ``tinygrad_rnn.backends`` layout, entry points, third-party backends."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import platform
import site
import subprocess
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from helpers import installed_package
from tinygrad_rnn.backends import BackendUnavailable

import tinygrad_rnn as tg

# imported by its installed dotted name: that this works is part of what is tested
NumpyBackend = importlib.import_module("tinygrad_rnn.backends.numpy_backend").NumpyBackend

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter from ``cwd`` (not the repo, so the repo root is
    not on sys.path); it prints one JSON object."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_does_not_import_cupy(tmp_path):
    out = run_python(
        "import json, sys; import tinygrad_rnn as tg; x = tg.Tensor([1.0]) * 2;"
        "print(json.dumps({'cupy': 'cupy' in sys.modules,"
        " 'cupy_mods': sorted(m for m in sys.modules if m.startswith('cupy'))}))",
        tmp_path,
    )
    assert out["cupy"] is False and out["cupy_mods"] == []


def test_backends_subpackage_is_the_installed_one(tmp_path):
    """Imported from elsewhere than the repository, ``tinygrad_rnn.backends`` is the
    install's: the repo's ``backends/`` folder when editable, the wheel's subpackage
    otherwise; never a bare top-level ``backends``."""
    package, backends, editable = installed_package()
    if not editable:  # the wheel's copy, not the repository's folders
        assert package.resolve() != (REPO / "tinygrad_rnn").resolve()
    out = run_python(
        "import json, importlib.util, tinygrad_rnn as tg, tinygrad_rnn.backends as b;"
        "print(json.dumps({'tg': tg.__file__, 'file': b.__file__,"
        " 'bare': importlib.util.find_spec('backends') is None,"
        " 'numpy_mod': __import__('tinygrad_rnn.backends.numpy_backend',"
        " fromlist=['x']).__file__}))",
        tmp_path,
    )
    assert Path(out["tg"]).resolve() == (package / "__init__.py").resolve()
    assert Path(out["file"]).resolve() == (backends / "__init__.py").resolve()
    assert Path(out["numpy_mod"]).resolve() == (backends / "numpy_backend.py").resolve()
    assert out["bare"], "a top-level module named `backends` is importable from site-packages"
    # this test process imports the same install
    assert Path(tg.__file__).resolve().parent == package.resolve()
    assert Path(tg.backends.__file__).resolve().parent == backends.resolve()


def test_entry_point_group_lists_builtin_backends():
    eps = {ep.name: ep for ep in entry_points(group="tinygrad_rnn.backends")}
    assert {"numpy", "numba", "cupy"} <= set(eps)
    for name in ("numpy", "numba", "cupy"):
        assert eps[name].value.startswith("tinygrad_rnn.backends."), eps[name].value
    assert eps["numpy"].load() is NumpyBackend
    assert eps["numba"].load().name == "numba"
    assert eps["cupy"].load().name == "cupy"  # importing the module needs no CuPy
    assert {"numpy", "numba", "cupy"} <= set(tg.backends.names())


def test_cupy_module_import_is_lazy(tmp_path):
    out = run_python(
        "import json, sys; from importlib.metadata import entry_points;"
        "ep = [e for e in entry_points(group='tinygrad_rnn.backends') if e.name == 'cupy'][0];"
        "cls = ep.load(); print(json.dumps({'name': cls.name, 'cupy': 'cupy' in sys.modules}))",
        tmp_path,
    )
    assert out == {"name": "cupy", "cupy": False}


def test_available_backends():
    available = tg.backends.available()
    assert "numpy" in available and "numba" in available
    if importlib.util.find_spec("cupy") is None:
        assert "cupy" not in available
    else:  # CuPy installed: listed exactly when the backend can be created
        try:
            tg.backends.get("cupy")
        except tg.backends.BackendUnavailable:
            assert "cupy" not in available
        else:
            assert "cupy" in available


class MineBackend(NumpyBackend):
    """A third-party backend: NumPy under another name, with one kernel overridden (it
    counts its calls and does NumPy's arithmetic, so results stay bit-equal: another
    formula, as ``grad - grad * y * y``, rounds differently in float32)."""

    name = "mine"
    calls = 0

    def tanh_backward(self, y, grad):
        MineBackend.calls += 1
        return super().tanh_backward(y, grad)


@pytest.fixture
def registry(monkeypatch):
    """``tg.backends`` with registrations local to the test."""
    monkeypatch.setattr(tg.backends, "_registered", dict(tg.backends._registered))
    monkeypatch.setattr(tg.backends, "_instances", dict(tg.backends._instances))
    return tg.backends


@pytest.fixture
def mine(registry):
    registry.register("mine", MineBackend)
    MineBackend.calls = 0
    return "mine"


def test_third_party_backend_end_to_end(mine):
    assert mine in tg.backends.names() and mine in tg.backends.available()
    assert isinstance(tg.backends.get(mine), MineBackend)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    y = rng.integers(0, 2, 4)
    results = {}
    for be in ("numpy", mine):
        tg.manual_seed(0)
        with tg.use_backend(be):
            lin = tg.nn.Linear(3, 2)
            rnn = tg.nn.RNN(2, 3)
            rnn.reset_parameters(std=0.5)
            Xt = tg.Tensor(X, requires_grad=True)
            out, _ = rnn(lin(Xt).reshape(2, 2, 2))
            loss = tg.nn.functional.cross_entropy(out.reshape(4, 3)[:, :2], tg.Tensor(y))
            loss.backward()
        assert loss.backend == be and Xt.grad.backend == be and lin.W.grad.backend == be
        results[be] = (loss.item(), Xt.grad.numpy(), lin.W.grad.numpy())
    assert MineBackend.calls > 0  # the registered class's kernel was used
    for a, b in zip(results[mine], results["numpy"], strict=True):
        np.testing.assert_array_equal(a, b)  # the same arithmetic as NumPy
    with pytest.raises(tg.BackendMismatchError, match="'mine'.*'numpy'"):
        tg.Tensor([1.0], backend=mine) + tg.Tensor([1.0], backend="numpy")


def test_the_registry_checks_what_it_is_given(mine):
    with pytest.raises(TypeError, match="non-empty string, got 5"):
        tg.backends.register(5, MineBackend)
    with pytest.raises(TypeError, match="a Backend class or a zero-argument factory, got "
                                        "MineBackend"):
        tg.backends.register("inst", MineBackend())
    tg.backends.register("junk", lambda: np)
    with pytest.raises(tg.backends.BackendUnavailable, match="returned a module, not a "):
        tg.backends.get("junk")
    assert "junk" not in tg.backends.available()


def test_a_backend_is_known_by_its_registered_name_and_made_once(mine):
    class Unnamed(MineBackend):  # inherits name "mine"... or NumpyBackend's "numpy"
        name = "numpy"

    tg.backends.register("unnamed", Unnamed)
    lin = tg.nn.Linear(2, 2, backend="unnamed")
    assert lin.backend == "unnamed" and isinstance(lin.W._backend, Unnamed)
    assert (lin.W + np.ones(2)).backend == "unnamed"
    first = tg.Tensor([1.0], backend=mine)
    tg.backends.register(mine, MineBackend)  # the same class again: a re-run cell
    assert (first + tg.Tensor([1.0], backend=mine)).backend == mine
    made = []
    barrier = threading.Barrier(4)

    def first_use():
        barrier.wait()
        made.append(tg.backends.get("unnamed2"))

    tg.backends.register("unnamed2", Unnamed)
    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(made) == 4 and all(b is made[0] for b in made)


def test_third_party_backend_passes_gradcheck(mine):
    rng = np.random.default_rng(1)
    x = tg.Tensor(rng.standard_normal((3, 2)), backend=mine, requires_grad=True)
    w = tg.Tensor(rng.standard_normal((2, 2)), backend=mine, requires_grad=True)
    assert tg.gradcheck(lambda a, b: (a @ b).tanh().sum(axis=0), [x, w])
    assert MineBackend.calls > 0


_FAULTS_PER_STEP = """
import resource, numpy as np, tinygrad_rnn as tg
from tinygrad_rnn.backends.host_memory import keep_freed_memory
tg.Tensor(np.zeros(3))  # making tensors changes nothing: the policy is opt-in
print(keep_freed_memory())
def step():  # a training step's pattern: big temporaries allocated, written, freed
    a = np.ones(1 << 19, np.float32)  # 2 MiB
    b = a * 2
    return float(b[-1])
for _ in range(5):
    step()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 50)
"""


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc",
    reason="the freed-memory policy is glibc's mallopt",
)
def test_freed_host_memory_is_reused_not_faulted_in_again():
    """With the policy, a step's two 2 MiB temporaries (1,024 pages touched) come back
    from the heap, already mapped; glibc's default maps fresh pages for them (here:
    about 1,000 faults a step). The opt-out leaves malloc alone."""
    def run(env_value: str) -> tuple[str, float]:
        env = {**os.environ, "TINYGRAD_RNN_KEEP_FREED_MEMORY": env_value}
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_STEP], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        return out[0], float(out[1])

    on, faults_on = run("1")
    assert on == "True"
    assert faults_on < 64  # well under the 1,024 pages a step touches
    assert run("0")[0] == "False"


def test_making_tensors_leaves_malloc_alone():
    """The policy is process-wide: only the train command (and who asks) sets it."""
    code = ("import json, numpy as np, tinygrad_rnn as tg\n"
            "from tinygrad_rnn.backends import host_memory\n"
            "x = tg.Tensor(np.zeros(3)) * 2; y = tg.Tensor(np.zeros(3), backend='numba') * 2\n"
            "print(json.dumps({'set': host_memory._memory_policy_set}))")
    assert run_python(code, REPO)["set"] is False


def test_a_factory_may_ask_for_another_backend_which_keeps_its_name(mine):
    class Wrapper(MineBackend):
        def __init__(self):
            super().__init__()
            self.inner = tg.backends.get("inner")  # made now, inside this one's making
            tg.Tensor([1.0], backend="inner")

    tg.backends.register("inner", MineBackend)
    tg.backends.register("wrapper", Wrapper)
    tg.backends.register("alias", lambda: tg.backends.get(mine))
    made = []  # in a thread: a deadlock on the registry's lock must fail, not hang
    maker = threading.Thread(target=lambda: made.append(tg.backends.get("wrapper")),
                             daemon=True)
    maker.start()
    maker.join(20)
    assert made and made[0].name == "wrapper", "making a backend that makes one deadlocked"
    t = tg.Tensor([1.0], backend=mine)
    assert tg.backends.get("alias") is tg.backends.get(mine) and t.backend == mine


def test_a_backend_whose_name_cannot_be_set_is_unavailable_not_fatal(mine):
    class Fixed(MineBackend):
        @property
        def name(self):
            return "fixed"

    tg.backends.register("other", Fixed)
    with pytest.raises(tg.backends.BackendUnavailable, match="calls itself 'fixed'"):
        tg.backends.get("other")
    assert "other" not in tg.backends.available() and "numpy" in tg.backends.available()


def test_copies_and_pickles_of_a_tensor_stay_on_the_same_backend(mine):
    import copy
    import pickle

    t = tg.Tensor([1.0, 2.0], backend=mine)
    for clone in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert clone._backend is t._backend
        np.testing.assert_array_equal((clone + t).numpy(), [2.0, 4.0])


@pytest.mark.slow
def test_a_non_editable_install_imports_from_the_repo_root_and_from_elsewhere(tmp_path):
    """``pip install .`` (not editable), then ``import tinygrad_rnn, tinygrad_rnn.backends``:
    from the repository root the source folder shadows the install and must still find
    ``backends/``; from anywhere else the installed copy is imported, with its own.
    ``python -S`` with site-packages on PYTHONPATH: the dependencies import, but no
    ``.pth`` file runs, so this suite's own editable install maps nothing."""
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (target / "tinygrad_rnn" / "backends" / "numba_backend.py").is_file()
    code = ("import json, tinygrad_rnn as tg, tinygrad_rnn.backends as b;"
            "x = tg.Tensor([1.0, 2.0], backend='numba') * 2;"
            "print(json.dumps({'tg': tg.__file__, 'backends': b.__file__,"
            " 'numba': __import__('tinygrad_rnn.backends.numba_backend', fromlist=['x']).__file__,"
            " 'x': x.tolist()}))")
    paths = [str(target), *site.getsitepackages()]
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"},
           "PYTHONPATH": os.pathsep.join(paths)}
    for cwd, root in ((REPO, REPO), (tmp_path, target)):
        proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"from {cwd}: {proc.stderr}"
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["x"] == [2.0, 4.0]
        assert Path(out["tg"]).resolve() == (root / "tinygrad_rnn" / "__init__.py").resolve()
        where = REPO / "backends" if root == REPO else target / "tinygrad_rnn" / "backends"
        assert Path(out["backends"]).resolve() == (where / "__init__.py").resolve()
        assert Path(out["numba"]).resolve() == (where / "numba_backend.py").resolve()


# ====================================================================== registry
def _unavailable():
    raise BackendUnavailable("the frobnicator is missing: pip install frobnicator")


class Other(NumpyBackend):
    name = "numpy"


class Another(NumpyBackend):
    name = "numpy"


def test_register_overrides_a_built_in_name(registry):
    """catches: entry points listed after, and over, register()'s backends."""
    registry.register("numba", Other)
    assert isinstance(registry.get("numba"), Other)


def test_registering_a_new_factory_replaces_the_backend(registry):
    """catches: the old instance kept after a new factory is registered."""
    registry.register("swap", Other)
    assert isinstance(registry.get("swap"), Other)
    registry.register("swap", Another)
    assert isinstance(registry.get("swap"), Another)


def test_an_empty_backend_name_is_refused(registry):
    with pytest.raises(TypeError, match="non-empty string, got ''"):
        registry.register("", Other)


def test_unknown_backend_lists_only_the_usable_ones(registry):
    """catches: the message lists every name, unusable ones too."""
    registry.register("broken", _unavailable)
    with pytest.raises(ValueError, match="unknown backend 'nope'") as info:
        registry.get("nope")
    assert "numpy" in str(info.value) and "broken" not in str(info.value)


def test_a_plugin_failing_with_any_error_is_unavailable_not_fatal(registry):
    """catches: only ImportError contained: a plug-in raising anything else breaks available()."""
    def boom():
        raise RuntimeError("no device")

    registry.register("boom", boom)
    with pytest.raises(BackendUnavailable, match="'boom' failed to load: RuntimeError: no device"):
        registry.get("boom")
    assert "boom" not in registry.available() and "numpy" in registry.available()


def test_a_fresh_process_defaults_to_numpy():
    """catches: another process-wide default; conftest resets it to numpy before every test, so
    only a fresh interpreter sees the real default."""
    done = subprocess.run(
        [sys.executable, "-c", "import tinygrad_rnn as tg; "
         "print(tg.get_backend().name, tg.Tensor([1.0]).backend)"],
        capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["numpy", "numpy"]


def test_every_package_folder_is_listed_for_the_wheel():
    """pyproject lists the packages by hand (backends/ is mapped into tinygrad_rnn): a new
    subpackage missing there would work in an editable install and vanish from a wheel."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {"tinygrad_rnn." + ".".join(p.parent.relative_to(REPO / "tinygrad_rnn").parts)
             for p in (REPO / "tinygrad_rnn").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found} | {"tinygrad_rnn.backends"}
    assert set(config["packages"]) == found
    assert "py.typed" in config["package-data"]["tinygrad_rnn"]
    assert (REPO / "tinygrad_rnn" / "py.typed").is_file() and (REPO / "LICENSE").is_file()


def test_the_version_has_one_source():
    from importlib.metadata import version

    assert version("tinygrad_rnn") == tg.__version__
