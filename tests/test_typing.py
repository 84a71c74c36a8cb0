"""PEP 561: a user's script type-checks against the installed package under ``mypy
--strict``, with the package's own annotations (no "missing library stubs or py.typed
marker", no ``Any`` where the code says what it returns).

mypy cannot follow the import hook of a PEP 660 editable install, so with one the
test installs the repository into a folder of its own (``pip install --target``: the
wheel's files, py.typed included) and puts that on ``PYTHONPATH``; after a wheel
install it checks against the install itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, installed_package

pytest.importorskip("mypy", reason="mypy is a dev dependency: pip install -e '.[dev]'")

# A user's script: tensors, a model, an optimizer, a loss, a training step.
SCRIPT = """\
from typing import Any

import numpy as np
import numpy.typing as npt
import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F

model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.Tanh(), tg.nn.Linear(8, 3))
lin = tg.nn.Linear(4, 3)
opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = tg.optim.lr_scheduler.StepLR(opt, step_size=2)
X = tg.randn(5, 4)
targets = tg.tensor([0, 2, 1, 1, 0])
logits = lin.forward(X)
loss = F.cross_entropy(logits, targets)
opt.zero_grad()
loss.backward()
opt.step()
sched.step()
value: float = loss.item()
array: npt.NDArray[Any] = logits.detach().numpy()
"""

# Expressions whose static type must be the class of their value at run time.
EXPRESSIONS = [
    "tg.tensor([1.0])",
    "tg.zeros(2, 3)",
    "tg.randn(2, 3)",
    "tg.ones_like(X)",
    "X @ tg.randn(4, 2)",
    "(X * 2).tanh().sum()",
    "model",
    "lin",
    "lin.forward(X)",
    "opt",
    "tg.optim.Adam(lin.parameters(), lr=1e-3)",
    "sched",
    "F.cross_entropy(logits, targets)",
    "tg.no_grad()",
]

REVEALED = re.compile(r'^\S+:(\d+): note: Revealed type is "(.*)"$')


def type_check(tmp_path: Path) -> tuple[int, str]:
    """mypy --strict on SCRIPT plus a reveal_type line per expression; (exit code, output)."""
    _, _, editable = installed_package()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    if editable:
        site = tmp_path / "site"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(site), str(REPO)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert (site / "tinygrad_rnn" / "py.typed").is_file()
        env["PYTHONPATH"] = str(site)
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT + "".join(f"reveal_type({e})\n" for e in EXPRESSIONS))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         str(tmp_path / "cache"), "--no-error-summary", script.name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def runtime_types() -> list[str]:
    """The full class name of each expression's value, running SCRIPT here."""
    scope: dict[str, object] = {}
    exec(SCRIPT, scope)
    return [f"{type(v).__module__}.{type(v).__qualname__}"
            for v in (eval(e, scope) for e in EXPRESSIONS)]


def test_a_user_script_gets_the_packages_types_under_mypy_strict(tmp_path):
    code, out = type_check(tmp_path)
    assert "py.typed" not in out and "Cannot find implementation" not in out, out
    first_reveal = SCRIPT.count("\n") + 1
    revealed = {int(m[1]) - first_reveal: m[2] for m in map(REVEALED.match, out.splitlines())
                if m}
    others = [line for line in out.splitlines() if not REVEALED.match(line)]
    assert others == [] and code == 0, out  # no error in the script, nothing untyped
    assert len(revealed) == len(EXPRESSIONS), out
    for i, (expr, expected) in enumerate(zip(EXPRESSIONS, runtime_types(), strict=True)):
        assert revealed[i] == expected, f"reveal_type({expr}) is {revealed[i]}, not {expected}"
