"""The docs site: it builds with ``mkdocs build --strict``, its code quotes match the
source files they name, and its runnable snippets run.

Two conventions in ``docs/*.md`` and ``README.md``, both about the line just before a
```` ```python ```` block (blank lines skipped):

* ``From `path/to/file.py`:`` (a backticked ``.py`` path, then a colon) makes the block
  a *quote* of that file. Lines ``...`` split it into excerpts; each excerpt must occur
  in the file, in order, as consecutive lines (compared stripped, so a quote may be
  dedented). A quote that drifts from the code fails here, naming page and line.
* ``<!-- run -->`` (or ``<!-- run: needs-book -->``) makes the block *runnable*: a page's
  runnable blocks are joined, in order, into one script that must exit 0.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import book_path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]  # the README runs too

QUOTE = re.compile(r"`([\w./-]+\.(?:py|cu|cuh))`:\s*$")
RUN = re.compile(r"^<!-- run(: needs-book)? -->$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lead: str  # the previous non-empty line
    code: str


def python_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() in ("```python", "```cuda"):  # CUDA source lives in .cu files
            start = i
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            lead = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
            blocks.append(Block(page, start + 1, lead.strip(), "\n".join(lines[start + 1 : j])))
            i = j
        i += 1
    return blocks


# ------------------------------------------------------------------------ build
def test_mkdocs_build_strict(tmp_path):
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            pytest.skip(f"{module} is not installed (pip install mkdocs 'mkdocstrings[python]')")
    assert (DOCS / "benchmarks.md").is_file(), "docs/benchmarks.md is in the nav"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in (
        "index.html",
        "autograd/index.html",
        "text/exercises/index.html",
        "backends/index.html",
        "api/core/index.html",
        "img/rnn_composed.svg",
    ):
        assert (tmp_path / "site" / page).is_file(), page
    api = (tmp_path / "site" / "api" / "core" / "index.html").read_text()
    assert (
        "tinygrad_rnn.Tensor" in api
        and "rnn_backward" in (tmp_path / "site" / "api" / "backends" / "index.html").read_text()
    )


# ----------------------------------------------------------------------- quotes
QUOTES = [b for page in PAGES for b in python_blocks(page) if QUOTE.search(b.lead)]


def test_the_docs_quote_code():
    assert len(QUOTES) >= 20, "the docs are meant to quote the code they explain"


@pytest.mark.parametrize("block", QUOTES, ids=lambda b: f"{b.page.relative_to(ROOT)}:{b.line}")
def test_quote_matches_source(block: Block):
    source = ROOT / QUOTE.search(block.lead).group(1)
    assert source.is_file(), f"{block.page.name}:{block.line} quotes {source}, which is missing"
    file_lines = [line.strip() for line in source.read_text(encoding="utf-8").split("\n")]
    excerpts, current = [], []
    for line in block.code.split("\n"):
        if line.strip() == "...":
            excerpts.append(current)
            current = []
        else:
            current.append(line.strip())
    excerpts.append(current)
    position = 0
    for excerpt in excerpts:
        while excerpt and not excerpt[-1]:
            excerpt.pop()
        if not excerpt:
            continue
        n = len(excerpt)
        found = next(
            (
                i
                for i in range(position, len(file_lines) - n + 1)
                if file_lines[i : i + n] == excerpt
            ),
            None,
        )
        if found is None:
            # name the first line that no longer matches, for a quick fix
            best = max(
                range(len(file_lines)),
                key=lambda i: sum(1 for a, b in zip(file_lines[i : i + n], excerpt) if a == b),
            )
            bad = next(
                (k for k, (a, b) in enumerate(zip(file_lines[best : best + n], excerpt)) if a != b),
                0,
            )
            pytest.fail(
                f"{block.page.relative_to(ROOT)}:{block.line}: quote of "
                f"{source.relative_to(ROOT)} is out of date; first differing line:\n"
                f"  docs: {excerpt[bad]!r}\n  code: "
                f"{file_lines[best + bad] if best + bad < len(file_lines) else ''!r}"
            )
        position = found + n


# --------------------------------------------------------------------- snippets
RUNNABLE = {}
for _page in PAGES:
    _blocks = [b for b in python_blocks(_page) if RUN.match(b.lead)]
    if _blocks:
        RUNNABLE[str(_page.relative_to(ROOT))] = _blocks


@pytest.mark.parametrize("page", sorted(RUNNABLE))
def test_runnable_snippets(page: str, tmp_path):
    blocks = RUNNABLE[page]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # a busy 2-core machine: one BLAS thread
    if any("needs-book" in b.lead for b in blocks):
        env["TINYGRAD_RNN_DATA"] = book_path()  # skips without the book
    script = "\n\n".join(f"# {page}:{b.line}\n{b.code}" for b in blocks)
    (tmp_path / "snippets.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "snippets.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{page}: a snippet failed\n{done.stdout}{done.stderr}"


# ------------------------------------------------------------------ kernel table
def test_backends_page_lists_every_kernel_and_who_overrides_it():
    """The table on docs/backends.md names each kernel of ``Backend`` and its overriders."""
    from tinygrad_rnn.backends import base, cupy_backend, numba_backend, numpy_backend

    classes = {
        "numpy": numpy_backend.NumpyBackend,
        "numba": numba_backend.NumbaBackend,
        "cupy": cupy_backend.CupyBackend,
    }  # importing cupy_backend needs no CuPy
    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    table = text.split("### 3. The kernel table", 1)[1].split("\n### ", 1)[0]
    documented: dict[str, set[str]] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for kernel in re.findall(r"`(\w+)`", cells[0]):
            documented[kernel] = set(re.findall(r"numpy|numba|cupy", cells[2]))
    kernels = {k for k, v in vars(base.Backend).items() if not k.startswith("_") and callable(v)}
    assert set(documented) == kernels, "docs/backends.md's kernel table is out of date"
    for kernel, said in documented.items():
        actual = {name for name, cls in classes.items() if kernel in vars(cls)}
        assert said == actual, f"docs/backends.md: {kernel} is overridden in {sorted(actual)}"


def test_every_example_is_documented():
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f"examples/{script.name}" in text, f"no page mentions examples/{script.name}"
