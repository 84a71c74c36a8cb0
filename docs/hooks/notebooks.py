"""mkdocs hook: each ``notebooks/*.ipynb`` becomes a page of the site, with its outputs.

At build time every notebook is converted to Markdown (``notebooks/<name>.md``): its
Markdown cells as they are, its code cells as Python blocks (highlighted by Pygments like
every other page), their printed output as text blocks and their figures as PNG files
beside the page. The notebook itself is copied too, for download. The pages show the
outputs the notebooks were saved with; ``tests/test_notebooks.py`` runs them afresh.

Only the notebook's JSON is read (no nbconvert, no Jupyter at build time): interactive
widgets (the progress bar) have no static form and are left out; the figure they sit
beside shows the same run.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colours in tracebacks and progress bars
WIDGET = "application/vnd.jupyter.widget-view+json"


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _fence(text: str, lang: str = "text") -> str:
    text = ANSI.sub("", text).rstrip("\n")
    # a progress line redrawn with \r: keep what was last drawn
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return f"```{lang}\n{text}\n```" if text.strip() else ""


def to_markdown(notebook: dict[str, Any], stem: str) -> tuple[str, dict[str, bytes]]:
    """The page for a notebook, and its figures as ``{file name: PNG bytes}``."""
    parts = [f"*This page is the notebook [`{stem}.ipynb`]({stem}.ipynb), with the outputs it "
             "was saved with.*"]
    images: dict[str, bytes] = {}
    for cell in notebook.get("cells", []):
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            parts.append(source)
            continue
        if cell.get("cell_type") != "code" or not source.strip():
            continue
        parts.append(_fence(source, "python"))
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                parts.append(_fence(_text(output.get("text", ""))))
            elif kind == "error":
                parts.append(_fence("\n".join(output.get("traceback", []))))
            elif kind in ("display_data", "execute_result"):
                data = output.get("data", {})
                if "image/png" in data:
                    name = f"{stem}_{len(images) + 1}.png"
                    images[name] = base64.b64decode(_text(data["image/png"]))
                    parts.append(f"![figure {len(images)}]({name})")
                elif WIDGET not in data and "text/plain" in data:
                    parts.append(_fence(_text(data["text/plain"])))
    return "\n\n".join(p for p in parts if p) + "\n", images


def on_files(files: Files, config: Any) -> Files:
    root = Path(config.config_file_path).parent
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        page, images = to_markdown(json.loads(path.read_text(encoding="utf-8")), path.stem)
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
        files.append(File.generated(config, f"notebooks/{path.name}", content=path.read_bytes()))
        for name, png in images.items():
            files.append(File.generated(config, f"notebooks/{name}", content=png))
    return files


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """``mkdocs serve`` rebuilds when a notebook changes."""
    server.watch(str(Path(config.config_file_path).parent / "notebooks"))
    return server
