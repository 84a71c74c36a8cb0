"""The docs site: it builds with ``mkdocs build --strict`` (once per run, the ``site``
fixture), works offline (no script, stylesheet or font from another host; code coloured
by Pygments at build time), shows the docstrings' reST roles as cross-references, renders
the notebooks with their figures; its code quotes match the source files they name, and
its runnable snippets run.

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
from html.parser import HTMLParser
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
def _docs_tools_missing() -> str | None:
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            return f"{module} is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once for this module with ``mkdocs build --strict``."""
    missing = _docs_tools_missing()
    if missing:
        pytest.skip(missing)
    site_dir = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return site_dir


def test_mkdocs_build_strict(site):
    assert (DOCS / "benchmarks.md").is_file(), "docs/benchmarks.md is in the nav"
    for page in (
        "index.html",
        "autograd/index.html",
        "text/exercises/index.html",
        "backends/index.html",
        "troubleshooting/index.html",
        "api/core/index.html",
        "img/rnn_composed.svg",
    ):
        assert (site / page).is_file(), page
    api = (site / "api" / "core" / "index.html").read_text()
    assert (
        "tinygrad_rnn.Tensor" in api
        and "rnn_backward" in (site / "api" / "backends" / "index.html").read_text()
    )
    assert not (site / "hooks").exists(), "docs/hooks/ is build code, not a page"


class _Assets(HTMLParser):
    """What a page makes the browser fetch: scripts, stylesheets, icons, images, frames,
    and ``url(...)``/``@import`` in inline styles. Plain links (``<a href>``) are not."""

    FETCHED = {"script": "src", "img": "src", "iframe": "src", "source": "src",
               "video": "src", "audio": "src", "embed": "src", "object": "data"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("href"):  # stylesheet, icon, preload, font ...
            self.urls.append(attrs["href"])
        elif tag in self.FETCHED and attrs.get(self.FETCHED[tag]):
            self.urls.append(attrs[self.FETCHED[tag]])
        self.urls += CSS_URL.findall(attrs.get("style") or "")
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.urls += CSS_URL.findall(data)

    def handle_endtag(self, tag):
        self._in_style = False


CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")
EXTERNAL = re.compile(r"^(?:https?:)?//", re.I)


def test_the_site_fetches_nothing_from_the_network(site):
    """Offline, the site is whole: no page or stylesheet loads a script, stylesheet, font
    or image from another host (the theme's highlight.js from a CDN was one)."""
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 20
    external = []
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.urls, f"{page} loads nothing: the parser missed the theme's assets"
        external += [f"{page.relative_to(site)}: {u}" for u in parser.urls if EXTERNAL.match(u)]
    for sheet in sorted(site.rglob("*.css")):  # fonts and @imports inside stylesheets
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(encoding="utf-8"), flags=re.S)
        external += [f"{sheet.relative_to(site)}: {u}" for u in CSS_URL.findall(text)
                     if EXTERNAL.match(u)]
    assert not external, "external assets:\n" + "\n".join(external)


def test_code_is_highlighted_when_the_site_is_built(site):
    """Pygments colours the code blocks in the HTML itself; the colours are a local file."""
    page = (site / "getting-started" / "index.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<div class="(?:language-\w+ )?highlight"><pre><span></span><code>'
                        r"(.*?)</code></pre></div>", page, flags=re.S)
    assert blocks, "no Pygments-highlighted block on getting-started"
    tokens = set(re.findall(r'<span class="(\w+)">', "".join(blocks)))
    assert {"kn", "nn"} <= tokens or {"k", "n"} <= tokens, tokens  # keywords and names
    assert 'href="../css/pygments.css"' in page and "hljs" not in page
    css = (site / "css" / "pygments.css").read_text(encoding="utf-8")
    styled = {t for t in tokens if f".highlight .{t} " in css}  # plain names have no rule
    assert {"k", "kn"} & styled and len(styled) >= 3, (tokens, styled)


ROLE_LEFT = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj):(?:`|<code>)")


def test_api_pages_show_no_rest_roles_and_link_them(site):
    """docs/hooks/rest_roles.py turns the docstrings' roles into cross-references: none
    is left literal, and those to documented objects are links that land on an anchor."""
    sources = [*ROOT.glob("tinygrad_rnn/**/*.py"), *ROOT.glob("backends/*.py")]
    roles_in_source = sum(len(ROLE_LEFT.findall(p.read_text(encoding="utf-8"))) for p in sources)
    assert roles_in_source > 0, "no roles in the docstrings: this test checks nothing"
    links = 0
    for page in sorted((site / "api").rglob("index.html")):
        html = page.read_text(encoding="utf-8")
        assert not ROLE_LEFT.findall(html), f"{page.relative_to(site)} shows a literal role"
        for href in re.findall(r'<a class="autorefs autorefs-internal"[^>]*href="([^"]+)"', html):
            path, _, anchor = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{page.relative_to(site)}: {href} leads nowhere"
            assert f'id="{anchor}"' in target.read_text(encoding="utf-8"), href
            links += 1
    assert links >= 50, f"only {links} cross-reference links in the API pages"


def test_wide_tables_scroll_in_a_wider_column(site):
    """The theme's 800px column clipped the benchmark tables: css/extra.css widens it and
    lets a table still too wide scroll sideways; every page loads it."""
    css = re.sub(r"/\*.*?\*/", "", (DOCS / "css" / "extra.css").read_text(), flags=re.S)
    rules = dict(re.findall(r"([^{}]+)\{([^}]*)\}", css))
    rules = {k.strip(): v for k, v in rules.items()}
    width = re.search(r"max-width:\s*(\d+)px", rules.get(".wy-nav-content", ""))
    assert width and int(width.group(1)) > 800
    table = rules.get(".rst-content table", "")
    assert re.search(r"overflow-x:\s*auto", table) and re.search(r"display:\s*block", table)
    bench = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "<table>" in bench and 'href="../css/extra.css"' in bench


def test_troubleshooting_page(site):
    """The first-hour problems, each with the names a user types; CI's layout is not one."""
    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    for needle in ("TINYGRAD_RNN_DATA", "--data", "~/.cache/tinygrad_rnn", "Numba",
                   "OPENBLAS_NUM_THREADS", "cuda12", "cuda13", "--backend"):
        assert needle in text, f"docs/troubleshooting.md does not mention {needle}"
    assert "troubleshooting.md" in (ROOT / "mkdocs.yml").read_text(), "not in the nav"
    for page in PAGES:
        assert "../shared" not in page.read_text(encoding="utf-8"), page


def test_notebooks_are_pages_with_their_figures(site):
    """docs/hooks/notebooks.py renders each notebook, figures and all, and links the file."""
    import base64
    import json

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        pngs = [o["data"]["image/png"] for c in nb["cells"] for o in c.get("outputs", [])
                if "image/png" in o.get("data", {})]
        assert pngs, f"{path.name} was saved without its figures"
        page = (site / "notebooks" / path.stem / "index.html").read_text(encoding="utf-8")
        images = re.findall(r'<img alt="figure \d+" src="([^"]+)"', page)
        assert len(images) == len(pngs), path.name
        for src, png in zip(images, pngs):
            built = (site / "notebooks" / path.stem / src).resolve()
            png = "".join(png) if isinstance(png, list) else png
            assert built.read_bytes() == base64.b64decode(png), src
        title = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert title.splitlines()[0].lstrip("# ") in page
        assert f'href="../{path.name}"' in page and (site / "notebooks" / path.name).is_file()
        assert '<span class="kn">import</span>' in page, "code cells are coloured by Pygments"


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
