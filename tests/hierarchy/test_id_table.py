"""Finding text ids: exact integer keys for short Latin-1 ids, hashes for the others.
Both ways must find exactly what a dict finds, and refuse repeated ids alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.hierarchy import AccountHierarchy, _graph

# short ids over a small alphabet (keys fit a direct table), some Latin-1 beyond ASCII,
# and characters outside Latin-1 (hashes)
ALPHABETS = ["ab01-", "xyzé\xff", "ab\u4e00\U0001f600"]
texts = st.sampled_from(ALPHABETS).flatmap(
    lambda a: st.lists(st.text(alphabet=a, min_size=1, max_size=7), min_size=1, max_size=30)
)
queries = st.lists(
    st.text(alphabet="ab01-xyzé\xff\u4e00\x00", min_size=0, max_size=9), max_size=20
)


WAYS = pytest.mark.parametrize("way", ["keys", "hashes"])


def _table(way: str, ids: list[str]) -> _graph._IdTable:
    with pytest.MonkeyPatch.context() as patch:
        if way == "hashes":
            patch.setattr(_graph, "_DENSE_SPAN", 0)
        return _graph._IdTable(np.array(ids, dtype=str))


@WAYS
@settings(max_examples=150, deadline=None)
@given(ids=texts, extra=queries)
def test_lookups_match_a_dict(way: str, ids: list[str], extra: list[str]) -> None:
    unique = list(dict.fromkeys(ids))
    table = _table(way, unique)
    assert (table.radix is not None) <= (way == "keys")
    near = [i + c for i in unique for c in ("\x00", "a", "\u4e00", "\u0100", "\U0001f600")]
    asked = [*unique, *extra, *near, *(i[:-1] for i in unique)]
    where = {account: k for k, account in enumerate(unique)}
    # numpy drops trailing NULs: "ab\x00" is the id "ab"
    expected = [where.get(q.rstrip("\x00"), -1) for q in asked]
    for width in ("", "U12"):
        array = np.array(asked, dtype=width or str)
        assert table.find(array).tolist() == expected
    assert table.id_order().tolist() == sorted(range(len(unique)), key=unique.__getitem__)


@WAYS
@settings(max_examples=60, deadline=None)
@given(ids=texts)
def test_repeated_ids_are_refused_either_way(way: str, ids: list[str]) -> None:
    unique = list(dict.fromkeys(ids))
    doubled = [*unique, unique[len(unique) // 2]]
    with pytest.raises(ValidationError, match=f"= {doubled[-1]!r}: appears more than once"):
        _table(way, doubled)


def test_direct_keys_are_used_for_short_latin1_ids() -> None:
    ids = np.char.add("acc-", np.char.zfill(np.arange(1000).astype(str), 7))
    table = _graph._IdTable(ids)
    assert table.radix is not None
    assert table.radix.span <= 1000 * 11
    assert _graph._IdTable(np.array(["a\u4e00"])).radix is None
    h = AccountHierarchy.from_arrays(ids, np.where(np.arange(1000) > 0, ids[0], ""))
    assert h.indices(["acc-0000999", "acc-0001000", "acc-000099", "ACC-0000001"]).tolist() == [
        999,
        -1,
        -1,
        -1,
    ]
