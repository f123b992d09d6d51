"""Hypothesis strategies for random account forests, shared by the hierarchy tests."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def forests(draw: st.DrawFn, max_size: int = 40) -> tuple[list[str], list[str]]:
    """(ids, parent ids) of a random forest, in a random order; ``""`` marks a root."""
    n = draw(st.integers(min_value=1, max_value=max_size))
    names = draw(
        st.lists(
            st.text(alphabet="abcdefgh0123456789-", min_size=1, max_size=6),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    parents: list[str] = []
    for i in range(n):
        choice = draw(st.integers(min_value=-1, max_value=i - 1))
        parents.append("" if choice < 0 else names[choice])
    order = draw(st.permutations(range(n)))
    return [names[i] for i in order], [parents[i] for i in order]


def naive_subtrees(ids: list[str], parents: list[str]) -> dict[str, list[str]]:
    """Every account's subtree (itself included) by plain recursion."""
    kids: dict[str, list[str]] = {i: [] for i in ids}
    for child, parent in zip(ids, parents, strict=True):
        if parent:
            kids[parent].append(child)

    def collect(node: str) -> list[str]:
        out = [node]
        for child in kids[node]:
            out += collect(child)
        return out

    return {i: collect(i) for i in ids}
