from __future__ import annotations

import io

import pytest

from crmkit import Account, MemoryStore, Opportunity, ValidationError
from crmkit.hierarchy import AccountHierarchy, draw, rollup, to_dot, to_mermaid, view
from crmkit.hierarchy._demo import section


def _wide(n: int) -> AccountHierarchy:
    ids = ["root"] + [f"c{i:03d}" for i in range(n)]
    return AccountHierarchy.from_arrays(ids, [""] + ["root"] * n)


def test_mermaid_escapes_and_values() -> None:
    h = AccountHierarchy.from_arrays(["a", "b"], ["", "a"], names=['Say "hi" <co>', ""])
    text = to_mermaid(h, "a", rollup(h, [1000.0, 2.5]))
    assert 'n0["Say #quot;hi#quot; #lt;co#gt;<br/>1,002.50"]' in text
    assert 'n1["b<br/>2.50"]' in text  # empty name falls back to the id
    assert "n0 --> n1" in text


def test_large_families_are_truncated_visibly() -> None:
    h = _wide(120)
    text = to_mermaid(h, "root", max_nodes=50)
    assert text.count("-->") == 49
    assert "71 more accounts not shown (max_nodes=50)" in text
    dot = to_dot(h, "root", max_nodes=10)
    assert dot.count(" -> n") == 9
    assert "111 more accounts not shown" in dot
    assert "more accounts" not in to_mermaid(h, "root", max_nodes=500)
    with pytest.raises(ValidationError, match="max_nodes"):
        to_mermaid(h, "root", max_nodes=0)


def test_dot_escapes() -> None:
    h = AccountHierarchy.from_arrays(["a"], [""], names=['A "quoted" \\ name'])
    assert 'label="A \\"quoted\\" \\\\ name"' in to_dot(h, "a")


def test_notebook_views() -> None:
    h = AccountHierarchy.from_arrays(["a", "b", "c"], ["", "a", "b"])
    bundle = view(h, "a", max_nodes=2)._repr_mimebundle_()
    assert bundle["text/plain"].splitlines()[:2] == ["a", "  b"]
    assert "1 more accounts not shown" in bundle["text/plain"]
    assert bundle["text/markdown"].startswith("```mermaid\ngraph TD")
    assert "<li>a<ul><li>b</li></ul></li>" in bundle["text/html"]
    assert "not shown" in bundle["text/html"]
    whole = h._repr_mimebundle_()
    assert "3 accounts" in whole["text/plain"]
    assert "<table>" in h._repr_html_()


def test_draw_with_matplotlib() -> None:
    h = _wide(60)
    ax = draw(h, "root", max_nodes=5)
    assert len(ax.texts) == 5
    assert "56 more accounts not shown" in ax.get_title()
    ax2 = view(h, "root", max_nodes=3).draw()
    assert len(ax2.texts) == 3


def test_demo_section() -> None:
    store = MemoryStore()
    store.accounts.add_many(
        [Account(id="big", name="Big Co", annual_revenue=10)]
        + [Account(id=f"b{i}", name=f"B{i}", parent_id="big", annual_revenue=1) for i in range(4)]
        + [Account(id="small", name="Small", annual_revenue=3)]
    )
    store.opportunities.add(Opportunity(id="o", name="o", account_id="b1", amount=42))
    out = io.StringIO()
    section(store, out)
    text = out.getvalue()
    lines = text.splitlines()
    big = next(line for line in lines if line.startswith("Big Co"))
    assert big.split() == ["Big", "Co", "5", "1", "14", "42"]
    assert lines.index(big) < next(i for i, line in enumerate(lines) if line.startswith("Small"))
    assert "graph TD" in text
    empty = io.StringIO()
    section(MemoryStore(), empty)
    assert "no accounts" in empty.getvalue()
