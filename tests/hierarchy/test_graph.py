from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit import Account, HierarchyCycleError, MemoryStore, NotFound, ValidationError
from crmkit.hierarchy import (
    AccountHierarchy,
    ancestors,
    children,
    depth,
    descendants,
    family,
    largest_families,
    parent,
    path_to_root,
    roots,
    siblings,
    ultimate_parent,
)

from ._forests import forests, naive_subtrees

#        hq
#      /    \
#    eu      us
#   /  \       \
#  fr  de      ca
#   |
#  paris         solo (a root alone)
IDS = ["hq", "eu", "us", "fr", "de", "ca", "paris", "solo"]
PARENTS = ["", "hq", "hq", "eu", "eu", "us", "fr", None]


@pytest.fixture
def h() -> AccountHierarchy:
    return AccountHierarchy.from_arrays(IDS, PARENTS)


def test_navigation(h: AccountHierarchy) -> None:
    assert roots(h) == ["hq", "solo"]
    assert children(h, "eu") == ["de", "fr"]
    assert children(h, "paris") == []
    assert siblings(h, "fr") == ["de"]
    assert siblings(h, "hq") == []
    assert parent(h, "fr") == "eu"
    assert parent(h, "hq") is None
    assert path_to_root(h, "paris") == ["paris", "fr", "eu", "hq"]
    assert ancestors(h, "paris") == ["fr", "eu", "hq"]
    assert ancestors(h, "hq") == []
    assert ultimate_parent(h, "ca") == "hq"
    assert ultimate_parent(h, "solo") == "solo"
    assert depth(h, "paris") == 3
    assert depth(h, "solo") == 0
    assert descendants(h, "hq") == ["eu", "us", "de", "fr", "ca", "paris"]
    assert family(h, "de") == ["hq", "eu", "us", "de", "fr", "ca", "paris"]
    assert family(h, "solo") == ["solo"]
    assert largest_families(h, 5) == [("hq", 7), ("solo", 1)]


def test_arrays_align_with_input_order(h: AccountHierarchy) -> None:
    assert h.ids.tolist() == IDS
    assert h.parent_ids.tolist() == ["", "hq", "hq", "eu", "eu", "us", "fr", ""]
    assert h.depths.tolist() == [0, 1, 1, 2, 2, 2, 3, 0]
    assert h.ids[h.tops].tolist() == ["hq"] * 7 + ["solo"]
    assert h.index("ca") == 5
    assert h.indices(["ca", "nope", "hq"]).tolist() == [5, -1, 0]
    assert "paris" in h
    assert "nope" not in h
    assert len(h) == 8


def test_graph_is_a_networkx_digraph(h: AccountHierarchy) -> None:
    graph = h.graph
    assert isinstance(graph, nx.DiGraph)
    assert set(graph.edges) == {(p, c) for c, p in zip(IDS, PARENTS, strict=True) if p}
    assert set(graph.nodes) == set(IDS)
    copy = h.to_networkx()
    copy.add_edge("solo", "hq")
    assert not h.graph.has_edge("solo", "hq")


def test_unknown_ids_raise_notfound(h: AccountHierarchy) -> None:
    for fn in (children, siblings, ancestors, descendants, family, depth, ultimate_parent):
        with pytest.raises(NotFound, match="nope"):
            fn(h, "nope")


def test_build_from_records_and_store() -> None:
    accounts = [
        Account(id=i, name=i.upper(), parent_id=p or None)
        for i, p in zip(IDS, PARENTS, strict=True)
    ]
    store = MemoryStore()
    store.accounts.add_many(accounts)
    for built in (AccountHierarchy.from_records(accounts), AccountHierarchy.from_store(store)):
        assert descendants(built, "eu") == ["de", "fr", "paris"]
        assert built.names is not None
        assert built.names[built.index("paris")] == "PARIS"
        assert built.graph.nodes["paris"]["name"] == "PARIS"


def test_empty_hierarchy() -> None:
    h = AccountHierarchy.from_arrays([], [])
    assert len(h) == 0
    assert roots(h) == []
    assert "x" not in h


def test_duplicate_and_empty_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"'a'.*more than once"):
        AccountHierarchy.from_arrays(["a", "b", "a"], ["", "", ""])
    with pytest.raises(ValidationError, match="empty id"):
        AccountHierarchy.from_arrays(["a", ""], ["", ""])
    with pytest.raises(ValidationError, match="one parent per account"):
        AccountHierarchy.from_arrays(["a", "b"], [""])
    with pytest.raises(ValidationError, match="text"):
        AccountHierarchy.from_arrays(np.arange(3), np.arange(3))


def test_integrity_problems_are_reported_with_their_accounts() -> None:
    # c -> d -> e -> c is a cycle, f hangs under it, s is its own parent, m has a ghost parent
    ids = ["a", "c", "d", "e", "f", "s", "m"]
    parents = ["", "d", "e", "c", "e", "s", "ghost"]
    h = AccountHierarchy.from_arrays(ids, parents)
    kinds = {p.kind: p for p in h.report}
    assert set(kinds) == {"cycle", "self_parent", "missing_parent"}
    assert kinds["cycle"].accounts == ("c", "d", "e", "c")
    assert kinds["self_parent"].accounts == ("s",)
    assert kinds["missing_parent"].accounts == ("m", "ghost")
    # repaired: the cycle is cut at its smallest id, c becomes a root
    assert roots(h) == ["a", "c", "m", "s"]
    assert path_to_root(h, "f") == ["f", "e", "c"]
    assert path_to_root(h, "d") == ["d", "e", "c"]
    assert nx.is_directed_acyclic_graph(h.graph)
    assert not h.report.ok
    assert "c -> d -> e -> c" in str(h.report)


def test_strict_raises() -> None:
    with pytest.raises(HierarchyCycleError) as err:
        AccountHierarchy.from_arrays(["x", "y"], ["y", "x"], strict=True)
    assert err.value.cycle == ["x", "y", "x"]
    with pytest.raises(HierarchyCycleError):
        AccountHierarchy.from_arrays(["x"], ["x"], strict=True)
    with pytest.raises(ValidationError, match="ghost") as missing:
        AccountHierarchy.from_arrays(["x"], ["ghost"], strict=True)
    assert not isinstance(missing.value, HierarchyCycleError)
    assert missing.value.record_id == "x"


def test_non_ascii_ids() -> None:
    h = AccountHierarchy.from_arrays(["zürich", "genève", "bern"], ["", "zürich", "zürich"])
    assert children(h, "zürich") == ["bern", "genève"]
    assert h.indices(["genève", "x"]).tolist() == [1, -1]


@settings(max_examples=60, deadline=None)
@given(forests())
def test_navigation_matches_naive(forest: tuple[list[str], list[str]]) -> None:
    ids, parents = forest
    h = AccountHierarchy.from_arrays(ids, parents)
    assert h.report.ok
    subtrees = naive_subtrees(ids, parents)
    up = dict(zip(ids, parents, strict=True))
    for account in ids:
        assert sorted(descendants(h, account)) == sorted(subtrees[account][1:])
        chain = [account]
        while up[chain[-1]]:
            chain.append(up[chain[-1]])
        assert path_to_root(h, account) == chain
        assert depth(h, account) == len(chain) - 1
        assert ultimate_parent(h, account) == chain[-1]
        assert sorted(family(h, account)) == sorted(subtrees[chain[-1]])


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=1, max_value=25).flatmap(
        lambda n: st.lists(st.integers(min_value=-1, max_value=n + 2), min_size=n, max_size=n)
    )
)
def test_any_parent_links_give_a_forest(links: list[int]) -> None:
    """Arbitrary links (cycles, self-parents, ghosts): the result is always a forest,
    every cut link is reported, and strict mode raises exactly when something is wrong."""
    ids = [f"a{i:02d}" for i in range(len(links))]
    parents = [f"a{p:02d}" if p >= 0 else "" for p in links]
    h = AccountHierarchy.from_arrays(ids, parents)
    assert nx.is_directed_acyclic_graph(h.graph)
    assert all(d <= 1 for _, d in h.graph.in_degree())
    reported = {p.accounts[0] for p in h.report}
    for child, kept, given_parent in zip(ids, h.parent_ids.tolist(), parents, strict=True):
        if kept != given_parent:
            assert child in reported
    original = nx.DiGraph((p, c) for c, p in zip(ids, parents, strict=True) if p)
    for problem in h.report.of_kind("cycle"):
        path = problem.accounts
        assert all(original.has_edge(path[k + 1], path[k]) for k in range(len(path) - 1))
    if h.report.ok:
        AccountHierarchy.from_arrays(ids, parents, strict=True)
    else:
        with pytest.raises(ValidationError):
            AccountHierarchy.from_arrays(ids, parents, strict=True)
