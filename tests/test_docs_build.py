"""The user guide and API reference build with Sphinx without a warning (``-W -n``), and the
reference documents every name of every public module's ``__all__``.

A new public module needs a page ``docs/reference/<module>.md`` (copy one: it is a bare
``automodule``); a constant re-exported from a private module needs an ``autodata`` line on
its page (autodoc does not find those itself).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import crmkit

pytest.importorskip("sphinx", reason="the docs build needs the docs extra")

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _public_modules() -> list[str]:
    """``crmkit`` and every module under it with no ``_`` part in its name."""
    found = ["crmkit"]
    for info in pkgutil.walk_packages(crmkit.__path__, "crmkit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return sorted(found)


def _inventory_names(path: Path) -> set[str]:
    """The Python object names in a Sphinx ``objects.inv`` (format version 2)."""
    with path.open("rb") as file:
        header = [file.readline() for _ in range(4)]
        assert header[0].startswith(b"# Sphinx inventory version 2")
        body = zlib.decompress(file.read()).decode()
    names = set()
    for line in body.splitlines():
        name, domain_role = line.split(" ", 2)[:2]
        if domain_role.startswith("py:"):
            names.add(name)
    return names


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    # -W: warnings are errors; -n: every cross-reference must resolve
    options = ["-W", "-n", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", *options, str(DOCS), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr}"
    return out


def test_docs_build_without_warnings(built_docs: Path) -> None:
    assert (built_docs / "reference" / "index.html").exists()
    assert (built_docs / "reference" / "crmkit.store.html").exists()


def test_public_modules_are_found() -> None:
    modules = _public_modules()
    assert {"crmkit", "crmkit.store", "crmkit.store.postgres", "crmkit.routing"} <= set(modules)
    assert not [name for name in modules if "._" in name]


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_public_name_is_in_the_reference(built_docs: Path, module_name: str) -> None:
    documented = _inventory_names(built_docs / "objects.inv")
    module = importlib.import_module(module_name)
    assert module_name in documented, f"no page for {module_name}: add docs/reference/..."
    missing = [name for name in module.__all__ if f"{module_name}.{name}" not in documented]
    assert not missing, f"{module_name}: {missing} are public but not in the API reference"


def test_guide_pages_link_to_the_reference() -> None:
    index = (DOCS / "index.md").read_text()
    assert "reference/index" in index
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "index.md":
            assert "reference/" in page.read_text(), f"{page.name} has no link to the reference"
