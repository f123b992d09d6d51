"""Sphinx configuration for the crmkit user guide (MyST Markdown, furo theme).

The API reference (``docs/reference/``) has one page per public module: a bare
``automodule`` directive documents the module's ``__all__`` (the defaults are below). Autodoc
cannot document a constant a package re-exports from a private module, so those pages add an
``autodata`` line per constant; ``tests/test_docs_build.py`` fails when a public name is
missing from the built reference.

The build runs with ``-W -n`` (warnings are errors, every cross-reference must resolve).
There is no intersphinx (builds are offline), so references to other libraries' names are
not checked; neither are references to private names that leak into signatures.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

project = "crmkit"
author = "crmkit developers"
copyright = "2026, crmkit developers"
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True  # defaults as written: `record_type=Contact`, `DEFAULT_PIPELINE`
toc_object_entries = False  # a page's contents list its sections, not its hundred objects
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}

# Other libraries' names (the first part of a dotted target). Without intersphinx there is
# nothing to link them to: they render as plain text and are not looked up at all.
_EXTERNAL = frozenset(
    {
        "Axes", "argparse", "attrs", "cattrs", "collections", "contextlib", "date", "datetime",
        "decimal", "difflib", "enum", "hypothesis", "json", "matplotlib", "networkx", "np",
        "numpy", "nx", "os", "pandas", "pathlib", "pd", "psycopg", "psycopg_pool", "time",
        "timedelta", "timezone", "typing", "tzinfo",
    }
)  # fmt: skip
nitpick_ignore_regex = [
    # private names (a leading underscore anywhere) and type variables
    (r"py:.*", r"(.*\.)?_[^.]*(\..*)?"),
    (r"py:.*", r"(crmkit(\.\w+)*\.)?T"),
    # type aliases of private modules (numpy arrays, what a function reads from)
    (r"py:.*", r"(Array|BoolArray|FloatArray|IntArray|Mask|Source)"),
]


def _materialise_lazy_names() -> None:
    """Some packages load names on first use (a module ``__getattr__``); autodoc only sees
    what is already in the module, so load every public name first."""
    import crmkit

    packages = ["crmkit"] + [
        info.name for info in pkgutil.walk_packages(crmkit.__path__, "crmkit.") if info.ispkg
    ]
    for name in packages:
        module = importlib.import_module(name)
        if not hasattr(module, "__getattr__"):
            continue
        for public in module.__all__:
            if public not in vars(module):
                setattr(module, public, getattr(module, public))


def _numpy_sections(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Docstrings head their examples numpy-style (``Examples`` over a dashed line); render
    that as a rubric, not as a section of the page."""
    for i in range(len(lines) - 1):
        title, underline = lines[i].strip(), lines[i + 1].strip()
        if title and len(underline) == len(title) and set(underline) == {"-"}:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i], lines[i + 1] = f"{indent}.. rubric:: {title}", ""


def _attrs_defaults(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, ret: str | None
) -> tuple[str | None, str | None] | None:
    """Defaults are shown as written in the source, but the source of an attrs class's
    ``__init__`` is generated (``attr_dict['domain'].default``): show the values instead."""
    import attrs
    from sphinx.util.inspect import object_description

    if signature is None or "attr_dict[" not in signature or not attrs.has(obj):
        return None
    fields = attrs.fields_dict(obj)

    def value(match: re.Match[str]) -> str:
        return object_description(fields[match[1]].default)

    return re.sub(r"attr_dict\['(\w+)'\]\.default", value, signature), ret


def _constant_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A re-exported constant gets the doc comment of the module that assigns it, not the
    docstring of its type (``dict``, ``tuple`` ...)."""
    if what != "data" or inspect.isclass(obj) or inspect.isroutine(obj):
        return
    type_doc = inspect.getdoc(type(obj)) or ""
    if "\n".join(lines).strip() not in ("", type_doc.strip()):
        return
    from sphinx.pycode import ModuleAnalyzer

    package, _, attr = name.rpartition(".")
    lines.clear()
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith(package) or vars(module).get(attr, None) is not obj:
            continue
        try:
            comment = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", attr))
        except Exception:  # a module without source has no comments
            continue
        if comment:
            lines.extend(comment)
            return


def _unlink_external_names(app: Any, doctree: Any) -> None:
    """Replace references to other libraries' names by their text (see ``_EXTERNAL``)."""
    from sphinx.addnodes import pending_xref

    for node in list(doctree.findall(pending_xref)):
        target = node.get("reftarget", "").lstrip("~.")
        if node.get("refdomain") == "py" and target.split(".")[0] in _EXTERNAL:
            node.replace_self(node.children)


def _prefer_home_modules(app: Any, env: Any) -> None:
    """``crmkit`` re-exports names from ``crmkit.records``, ``crmkit.errors`` ...; a bare
    name in a signature (``Account``) links to its home module's entry, not the top-level
    one, instead of warning that there are two targets."""
    objects = env.get_domain("py").objects
    for name, entry in list(objects.items()):
        if name.count(".") == 1 and entry.objtype != "module" and not entry.aliased:
            home = [
                other
                for other in objects
                if other != name and other.endswith("." + name.split(".")[1])
            ]
            if home:
                objects[name] = entry._replace(aliased=True)


def _resolve_any_kind(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Annotations reference type aliases (documented as data) as classes: accept a target of
    any kind when exactly one object answers to the name."""
    if node.get("refdomain") != "py":
        return None
    found = env.get_domain("py").resolve_any_xref(
        env, node["refdoc"], app.builder, node["reftarget"], node, contnode
    )
    return found[0][1] if len(found) == 1 else None


def setup(app: Any) -> None:
    _materialise_lazy_names()
    app.connect("autodoc-process-signature", _attrs_defaults)
    app.connect("autodoc-process-docstring", _numpy_sections)
    app.connect("autodoc-process-docstring", _constant_docstring)
    app.connect("doctree-read", _unlink_external_names)
    app.connect("env-check-consistency", _prefer_home_modules)
    app.connect("missing-reference", _resolve_any_kind)
