"""A griffe extension: the docstrings' Sphinx roles become cross-references in the API pages.

The docstrings are written for Python's ``help()`` and Sphinx alike, with roles such as
``:class:`Module``` or ``:meth:`~Optimizer.state_dict```. mkdocstrings renders Markdown,
where a role would show literally; rather than edit hundreds of docstrings, this rewrites
each role once the package is loaded (mkdocs.yml lists it under the handler's
``extensions``). A role becomes an *optional* autorefs reference to the object's full
path, so it is a link where that object is rendered on some page and plain code where it
is not (a private helper, a module the reference leaves out) — never a broken link.

Names resolve as Sphinx resolves them: relative to the docstring's object, then its
class, module and package (their members and imports); ``.name`` is relative to the
package; ``~`` shows the last component only.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

# :class:`X`, :py:func:`X`, and the other Python-domain roles (Sphinx's names)
ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|mod|exc|obj|const):`([^`]+)`")

# The backends are installed as tinygrad_rnn.backends but documented from the
# repository's top-level backends/ folder (docs/api/backends.md), under that name.
ALIASES = {"tinygrad_rnn.backends": "backends"}


def _lookup(scope: griffe.Object, dotted: str) -> str | None:
    """The full path of ``dotted`` seen from ``scope`` (its members or imports), or None."""
    head, _, rest = dotted.partition(".")
    if head in scope.members:
        member = scope.members[head]  # an import is an alias: link to what it names
        base = member.target_path if member.is_alias else member.path
    elif head in getattr(scope, "imports", {}):
        base = scope.imports[head]
    else:
        return None
    return f"{base}.{rest}" if rest else base


def resolve(obj: griffe.Object, target: str) -> str:
    """The identifier autorefs knows ``target`` by, as written in ``obj``'s docstring."""
    if target.startswith("."):  # relative to the package that holds obj's module
        module = obj.module
        package = module if module.is_package else module.parent
        path = f"{package.path}{target}" if package is not None else target.lstrip(".")
    else:
        path = None
        scope: Any = obj
        while scope is not None and path is None:
            path = _lookup(scope, target)
            scope = scope.parent
        path = path or target  # already a full path (or unknown: autorefs leaves it as code)
    for prefix, documented in ALIASES.items():
        if path == prefix or path.startswith(prefix + "."):
            path = documented + path[len(prefix):]
    return path


def rewrite(obj: griffe.Object, text: str) -> str:
    """``text`` with each role replaced by an optional autorefs cross-reference."""

    def replace(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        short = target.startswith("~")
        target = target.lstrip("~")
        shown = target.rsplit(".", 1)[-1] if short else target
        identifier = resolve(obj, target)
        return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(replace, text)


def _objects(obj: griffe.Object) -> Any:
    """``obj`` and everything defined in it (aliases are documented where they point)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


class RestRoles(griffe.Extension):
    """Rewrites the roles of every docstring in each package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = rewrite(obj, obj.docstring.value)
