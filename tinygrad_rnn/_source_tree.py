"""Imported first by ``tinygrad_rnn/__init__.py``: the source checkout's ``backends/``
folder as the subpackage ``tinygrad_rnn.backends``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def map_backends() -> None:
    """In a source checkout, make ``tinygrad_rnn.backends`` the top-level ``backends/``
    folder beside this package, as an install does (pyproject maps it there).

    An installed package has a ``backends/`` subfolder of its own, so this acts only on
    the source tree: editable installs (whose finder maps the same folder), the
    repository root on ``sys.path`` with nothing installed, and the root as the current
    folder after a non-editable ``pip install .``, where the source folder shadows
    the installed package.
    """
    here = Path(__file__).parent
    name = here.name + ".backends"
    source = here.parent / "backends" / "__init__.py"
    if name in sys.modules or (here / "backends").is_dir() or not source.is_file():
        return
    spec = importlib.util.spec_from_file_location(
        name, source, submodule_search_locations=[str(source.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


map_backends()

