"""The D2L application (``tinygrad_rnn/charlm/``) uses only the framework's public API,
as any program built on tinygrad_rnn would: it imports public modules only, and reads
no ``_private`` attribute of the framework's objects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHARLM = Path(__file__).resolve().parents[1] / "tinygrad_rnn" / "charlm"
#: Framework modules the application may import (everything else is the core's inside).
PUBLIC = {"tinygrad_rnn", "tinygrad_rnn.backends", "tinygrad_rnn.checks", "tinygrad_rnn.hub",
          "tinygrad_rnn.nn", "tinygrad_rnn.nn.functional", "tinygrad_rnn.nn.init",
          "tinygrad_rnn.optim", "tinygrad_rnn.serialization"}


def own_methods() -> set[str]:
    """The private functions and methods the application defines itself."""
    return {node.name for path in CHARLM.glob("*.py")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_")}


def violations(source: str, own: frozenset[str] = frozenset()) -> list[str]:
    """Imports of non-public framework modules or of private names, and ``x._name`` where
    ``x`` is not ``self``, ``cls`` or ``super()`` and ``_name`` is not one of the
    application's ``own`` methods: the framework's privates are not for it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names
                      if a.name.startswith("_") and a.name != "__future__"]
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("tinygrad_rnn") and not node.module.startswith(
                    "tinygrad_rnn.charlm"):
            if node.module not in PUBLIC:
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            found.append(f"line {node.lineno}: a relative import out of charlm")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith("tinygrad_rnn.") and a.name not in PUBLIC
                      and not a.name.startswith("tinygrad_rnn.charlm")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                not node.attr.startswith("__"):
            owner = node.value
            mine = isinstance(owner, ast.Name) and owner.id in ("self", "cls") or (
                isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super")
            if not mine and node.attr not in own:
                found.append(f"line {node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("module", sorted(CHARLM.glob("*.py")), ids=lambda p: p.name)
def test_the_application_uses_only_public_names(module):
    assert violations(module.read_text(encoding="utf-8"), frozenset(own_methods())) == []


def test_the_rule_finds_what_the_application_did_before_it_moved():
    before = (
        "from .nn.layers import _check_sizes\n"
        "from tinygrad_rnn._tensor import Tensor\n"
        "import tinygrad_rnn.ops\n"
        "from .. import ops\n"
        "backend = model.W_hq._backend\n"
        "t = Tensor._wrap(x, backend)\n"
        "self._step = step\n"
        "vocab._set_tokens(tokens)\n"
    )
    assert len(violations(before, frozenset({"_set_cuda_graph"}))) == 7
    assert len(violations(before, frozenset({"_set_tokens"}))) == 6
    assert violations("import tinygrad_rnn as tg\nfrom tinygrad_rnn.nn import init\n"
                      "x = tg.backends.get(p.backend)\nself._cache = {}\n") == []
