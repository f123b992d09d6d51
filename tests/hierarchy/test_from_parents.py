"""Building a hierarchy from integer parent positions (the columnar entry point)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.errors import HierarchyCycleError, NotFound, ValidationError
from crmkit.hierarchy import AccountHierarchy, rollup

from ._forests import forests, naive_subtrees


def _positions(ids: list[str], parents: list[str]) -> list[int]:
    where = {account: i for i, account in enumerate(ids)}
    return [where[p] if p else -1 for p in parents]


@given(forests(), st.data())
def test_positions_and_text_ids_build_the_same_hierarchy(
    forest: tuple[list[str], list[str]], data: st.DataObject
) -> None:
    ids, parents = forest
    by_text = AccountHierarchy.from_arrays(ids, parents)
    by_position = AccountHierarchy.from_parents(_positions(ids, parents), ids=ids)
    assert by_position.parents.tolist() == by_text.parents.tolist()
    assert by_position.depths.tolist() == by_text.depths.tolist()
    assert by_position.tops.tolist() == by_text.tops.tolist()
    assert by_position.parent_ids.tolist() == parents
    values = data.draw(
        st.lists(st.floats(-1e6, 1e6), min_size=len(ids), max_size=len(ids)), label="values"
    )
    subtrees = naive_subtrees(ids, parents)
    total = rollup(by_position, np.array(values), "sum")
    for i, account in enumerate(ids):
        expected = sum(values[ids.index(member)] for member in subtrees[account])
        assert total.get(account) == pytest.approx(expected, abs=1e-6)
        assert total.values[i] == pytest.approx(expected, abs=1e-6)


@given(forests())
def test_without_ids_accounts_are_named_by_position(forest: tuple[list[str], list[str]]) -> None:
    ids, parents = forest
    positions = _positions(ids, parents)
    h = AccountHierarchy.from_parents(np.array(positions, dtype=np.int32))
    assert h.ids.tolist() == [str(i) for i in range(len(ids))]
    assert h.parent_ids.tolist() == [str(p) if p >= 0 else "" for p in positions]
    assert h.index(str(len(ids) - 1)) == len(ids) - 1
    with pytest.raises(NotFound):
        h.index(str(len(ids)))


def test_positions_outside_the_array_are_missing_parents() -> None:
    h = AccountHierarchy.from_parents([-1, 7, 0, -3], ids=["hq", "eu", "fr", "us"])
    assert h.parents.tolist() == [-1, -1, 0, -1]
    assert [p.kind for p in h.report] == ["missing_parent", "missing_parent"]
    assert "'eu' has parent position 7" in str(h.report)
    with pytest.raises(ValidationError, match=r"'eu'.*parent_id"):
        AccountHierarchy.from_parents([-1, 7], ids=["hq", "eu"], strict=True)


def test_cycles_and_self_parents_are_cut_and_reported() -> None:
    h = AccountHierarchy.from_parents([1, 0, 2, -1])
    assert h.parents.tolist() == [-1, 0, -1, -1]
    assert sorted(p.kind for p in h.report) == ["cycle", "self_parent"]
    assert "0 -> 1 -> 0" in str(h.report)
    with pytest.raises(HierarchyCycleError):
        AccountHierarchy.from_parents([1, 0], strict=True)


@pytest.mark.parametrize(
    ("parents", "ids", "match"),
    [
        ([0.5, -1], None, "whole numbers"),
        (["0", "-1"], None, "whole numbers"),
        ([[0], [1]], None, "one-dimensional"),
        ([-1, 0], ["a", "a"], "more than once"),
        ([-1, 0], ["a", ""], "empty id"),
        ([-1, 0], ["a"], "one id per parent"),
    ],
)
def test_bad_input_is_a_validation_error(parents: object, ids: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        AccountHierarchy.from_parents(parents, ids=ids)  # type: ignore[arg-type]


@given(forests())
def test_ids_are_found_exactly_even_when_every_hash_collides(
    forest: tuple[list[str], list[str]],
) -> None:
    """Hashes only narrow the search: with a hash that sends every id to one value the
    lookups fall back to sorted ids and still find exactly the right accounts."""
    from crmkit.hierarchy import _graph

    ids, parents = forest
    expected = AccountHierarchy.from_arrays(ids, parents)
    original = _graph._hash_ids
    _graph._hash_ids = lambda array: np.zeros(array.size, dtype=np.uint64)
    try:
        colliding = AccountHierarchy.from_arrays(ids, parents)
        found = colliding.indices([*ids, "not-an-id", ""])
    finally:
        _graph._hash_ids = original
    assert colliding.parents.tolist() == expected.parents.tolist()
    assert found.tolist() == [*range(len(ids)), -1, -1]


def test_repeated_ids_are_refused_whatever_their_hash() -> None:
    with pytest.raises(ValidationError, match="field 'id' = 'b': appears more than once"):
        AccountHierarchy.from_arrays(["a", "b", "c", "b"], ["", "a", "", ""])
    with pytest.raises(ValidationError, match="more than once"):
        AccountHierarchy.from_parents([-1, 0, 0], ids=["x", "y", "x"])
