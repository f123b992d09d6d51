"""Pictures of a family: Mermaid, Graphviz DOT, notebook views and matplotlib.

A picture shows at most ``max_nodes`` accounts (breadth-first from the root, so the top
of the tree is always shown); when accounts are left out a visible note says how many.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from crmkit._optional import require
from crmkit.errors import ValidationError
from crmkit.hierarchy._graph import AccountHierarchy, IntArray
from crmkit.hierarchy._rollup import RollupResult, _values

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FamilyView", "draw", "to_dot", "to_mermaid", "view"]


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


@attrs.frozen
class _Picture:
    nodes: IntArray  # shown accounts, breadth-first
    labels: tuple[str, ...]
    hidden: int


def _picture(h: AccountHierarchy, root: str, values: Any, max_nodes: int) -> _Picture:
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValidationError("Picture", "max_nodes", max_nodes, "must be a whole number >= 1")
    subtree = h._subtree(h.index(root))
    shown = subtree[:max_nodes]
    if values is None:
        numbers = None
    elif isinstance(values, RollupResult):
        numbers = values.values
    else:
        numbers = _values(h, values)
    names = h.names
    labels = []
    for i in shown.tolist():
        label = str(h.ids[i]) if names is None or not names[i] else str(names[i])
        if numbers is not None:
            label += f"\n{_fmt(float(numbers[i]))}"
        labels.append(label)
    return _Picture(nodes=shown, labels=tuple(labels), hidden=int(subtree.size - shown.size))


def _note(picture: _Picture, max_nodes: int) -> str:
    return f"... {picture.hidden} more accounts not shown (max_nodes={max_nodes})"


def _edges(h: AccountHierarchy, picture: _Picture) -> list[tuple[int, int]]:
    where = {int(n): k for k, n in enumerate(picture.nodes.tolist())}
    edges = []
    for k, node in enumerate(picture.nodes.tolist()):
        up = int(h.parents[node])
        if k and up in where:
            edges.append((where[up], k))
    return edges


def to_mermaid(h: AccountHierarchy, root: str, values: Any = None, *, max_nodes: int = 50) -> str:
    """A Mermaid flowchart of ``root`` and its subtree, with ``values`` on the nodes.

    ``values`` is a :class:`RollupResult`, an array aligned with ``h.ids`` or a mapping.

    Examples
    --------
    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "us"], ["", "hq", "hq"])
    >>> print(to_mermaid(h, "hq", {"hq": 1, "eu": 2, "us": 3.5}))
    graph TD
      n0["hq<br/>1"]
      n1["eu<br/>2"]
      n2["us<br/>3.50"]
      n0 --> n1
      n0 --> n2
    >>> print(to_mermaid(h, "hq", max_nodes=2))
    graph TD
      n0["hq"]
      n1["eu"]
      n0 --> n1
      more["... 1 more accounts not shown (max_nodes=2)"]
      n0 -.- more
    """
    picture = _picture(h, root, values, max_nodes)
    lines = ["graph TD"]
    for k, label in enumerate(picture.labels):
        text = (
            label.replace("&", "#amp;")
            .replace('"', "#quot;")
            .replace("<", "#lt;")
            .replace(">", "#gt;")
            .replace("\n", "<br/>")
        )
        lines.append(f'  n{k}["{text}"]')
    lines += [f"  n{a} --> n{b}" for a, b in _edges(h, picture)]
    if picture.hidden:
        lines.append(f'  more["{_note(picture, max_nodes)}"]')
        lines.append("  n0 -.- more")
    return "\n".join(lines)


def to_dot(h: AccountHierarchy, root: str, values: Any = None, *, max_nodes: int = 50) -> str:
    """A Graphviz DOT digraph of ``root`` and its subtree, with ``values`` on the nodes.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu"], ["", "hq"])
    >>> print(to_dot(h, "hq"))
    digraph hierarchy {
      node [shape=box];
      n0 [label="hq"];
      n1 [label="eu"];
      n0 -> n1;
    }
    """
    picture = _picture(h, root, values, max_nodes)
    lines = ["digraph hierarchy {", "  node [shape=box];"]
    for k, label in enumerate(picture.labels):
        text = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'  n{k} [label="{text}"];')
    lines += [f"  n{a} -> n{b};" for a, b in _edges(h, picture)]
    if picture.hidden:
        lines.append(f'  more [label="{_note(picture, max_nodes)}", shape=note];')
        lines.append("  n0 -> more [style=dashed];")
    lines.append("}")
    return "\n".join(lines)


def _text_tree(h: AccountHierarchy, picture: _Picture, max_nodes: int) -> str:
    edges = _edges(h, picture)
    kids: dict[int, list[int]] = {}
    for a, b in edges:
        kids.setdefault(a, []).append(b)
    lines: list[str] = []

    def walk(k: int, indent: int) -> None:
        lines.append("  " * indent + picture.labels[k].replace("\n", ": "))
        for child in kids.get(k, []):
            walk(child, indent + 1)

    walk(0, 0)
    if picture.hidden:
        lines.append(_note(picture, max_nodes))
    return "\n".join(lines)


def _html_tree(h: AccountHierarchy, picture: _Picture, max_nodes: int) -> str:
    kids: dict[int, list[int]] = {}
    for a, b in _edges(h, picture):
        kids.setdefault(a, []).append(b)

    def item(k: int) -> str:
        label = html.escape(picture.labels[k]).replace("\n", ": ")
        inner = "".join(item(c) for c in kids.get(k, []))
        return f"<li>{label}" + (f"<ul>{inner}</ul>" if inner else "") + "</li>"

    note = f"<p><em>{html.escape(_note(picture, max_nodes))}</em></p>" if picture.hidden else ""
    return f"<ul>{item(0)}</ul>{note}"


@attrs.frozen(repr=False)
class FamilyView:
    """A subtree to look at in a notebook (text, Markdown with Mermaid, and HTML).

    >>> h = AccountHierarchy.from_arrays(["hq", "eu"], ["", "hq"])
    >>> print(view(h, "hq", {"hq": 5, "eu": 7}))
    hq: 5
      eu: 7
    """

    hierarchy: AccountHierarchy
    root: str
    values: Any = None
    max_nodes: int = 50

    def _picture(self) -> _Picture:
        return _picture(self.hierarchy, self.root, self.values, self.max_nodes)

    def __str__(self) -> str:
        return _text_tree(self.hierarchy, self._picture(), self.max_nodes)

    def __repr__(self) -> str:
        return f"<FamilyView of {self.root!r}>\n{self}"

    def to_mermaid(self) -> str:
        """The view as a Mermaid flowchart."""
        return to_mermaid(self.hierarchy, self.root, self.values, max_nodes=self.max_nodes)

    def to_dot(self) -> str:
        """The view as Graphviz DOT."""
        return to_dot(self.hierarchy, self.root, self.values, max_nodes=self.max_nodes)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        picture = self._picture()
        return {
            "text/plain": _text_tree(self.hierarchy, picture, self.max_nodes),
            "text/markdown": f"```mermaid\n{self.to_mermaid()}\n```",
            "text/html": _html_tree(self.hierarchy, picture, self.max_nodes),
        }

    def _repr_html_(self) -> str:
        return self._repr_mimebundle_()["text/html"]

    def draw(self, ax: Axes | None = None) -> Axes:
        """Draw the view with matplotlib (see :func:`draw`)."""
        return draw(self.hierarchy, self.root, self.values, max_nodes=self.max_nodes, ax=ax)


def view(h: AccountHierarchy, root: str, values: Any = None, *, max_nodes: int = 50) -> FamilyView:
    """A :class:`FamilyView` of ``root``'s subtree (use the ultimate parent for a family).

    The view renders itself in notebooks (``_repr_html_``) and as Mermaid text.

    >>> h = AccountHierarchy.from_arrays(["hq", "eu"], [None, "hq"], names=["HQ", "EU"])
    >>> family_view = view(h, "hq", values={"hq": 30.0, "eu": 10.0})
    >>> family_view.root, "EU" in family_view._repr_html_()
    ('hq', True)
    """
    h.index(root)
    return FamilyView(hierarchy=h, root=root, values=values, max_nodes=max_nodes)


def hierarchy_bundle(h: AccountHierarchy) -> dict[str, str]:
    """Notebook display of a whole hierarchy: a summary and its largest families."""
    from crmkit.hierarchy._nav import largest_families

    top = largest_families(h, 10)
    text = [repr(h)]
    if not h.report.ok:
        text.append(str(h.report))
    text += [f"  {root}: {size} accounts" for root, size in top]
    rows = "".join(f"<tr><td>{html.escape(root)}</td><td>{size}</td></tr>" for root, size in top)
    problems = (
        ""
        if h.report.ok
        else "<ul>" + "".join(f"<li>{html.escape(str(p))}</li>" for p in h.report) + "</ul>"
    )
    body = (
        f"<p>{html.escape(repr(h))}</p>{problems}"
        f"<table><tr><th>largest families</th><th>accounts</th></tr>{rows}</table>"
    )
    return {"text/plain": "\n".join(text), "text/html": body}


def _layout_xy(h: AccountHierarchy, picture: _Picture) -> np.ndarray[Any, Any]:
    kids: dict[int, list[int]] = {}
    for a, b in _edges(h, picture):
        kids.setdefault(a, []).append(b)
    xy = np.zeros((len(picture.labels), 2))
    next_x = [0.0]

    def place(k: int, level: int) -> float:
        below = kids.get(k, [])
        if below:
            x = float(np.mean([place(c, level + 1) for c in below]))
        else:
            x = next_x[0]
            next_x[0] += 1.0
        xy[k] = (x, -level)
        return x

    place(0, 0)
    return xy


def draw(
    h: AccountHierarchy,
    root: str,
    values: Any = None,
    *,
    max_nodes: int = 50,
    ax: Axes | None = None,
) -> Axes:
    """Draw ``root``'s subtree as a tree with matplotlib (needs the ``plot`` extra).

    Returns the matplotlib ``Axes``; a truncated picture says so in its title.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> h = AccountHierarchy.from_arrays(["hq", "eu", "us"], [None, "hq", "hq"])
    >>> ax = draw(h, "hq")
    >>> sorted(t.get_text() for t in ax.texts)
    ['eu', 'hq', 'us']
    """
    Figure = require("matplotlib.figure", extra="plot", feature="draw()").Figure
    picture = _picture(h, root, values, max_nodes)
    if ax is None:
        ax = Figure(figsize=(8, 5)).subplots()
    xy = _layout_xy(h, picture)
    for a, b in _edges(h, picture):
        ax.plot([xy[a, 0], xy[b, 0]], [xy[a, 1], xy[b, 1]], color="0.6", zorder=1)
    for k, label in enumerate(picture.labels):
        ax.text(
            xy[k, 0],
            xy[k, 1],
            label,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.4"},
            zorder=2,
        )
    ax.set_xlim(float(xy[:, 0].min()) - 1, float(xy[:, 0].max()) + 1)
    ax.set_ylim(float(xy[:, 1].min()) - 1, 1)
    ax.set_axis_off()
    title = f"{root}" + (f" ({_note(picture, max_nodes)})" if picture.hidden else "")
    ax.set_title(title)
    return ax
