"""Campaign attribution over many touches: crmkit.campaigns beside pandas.

    python benchmarks/bench_attribution.py [--quick]

Input: ``n`` campaign members (default 1e6) and ``n / 10`` opportunities, as the numpy
columns ``store.campaign_members.columns`` / ``store.opportunities.columns`` return. 80% of
the members are contacts, 20% accounts; every opportunity has a contact and an account, so a
member touches an opportunity through either key, and a member matching through both counts
once. Both sides compute the U-shaped (40/20/40) credit of every touch and sum it per
campaign.

- crmkit: :func:`crmkit.campaigns.attribution_from_columns` (``touch_credits``: member
  keys found by binary search in the sorted opportunity keys, one lexsort, vectorised
  weights; then ``np.bincount`` per campaign for amount, pipeline and won revenue).
- pandas: the same columns in DataFrames, ``merge`` on contact_id and on account_id,
  ``concat``, filter by time, ``drop_duplicates``, ``sort_values``,
  ``groupby().cumcount()`` / ``transform("size")`` for the weights, ``groupby`` campaign sum.
  Timed including building the DataFrames from the columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _common import Table, bench_args, best_of
from crmkit.campaigns import attribution_from_columns, touch_credits

Array = np.ndarray[Any, Any]


def generate(n: int, seed: int = 7) -> tuple[dict[str, Array], dict[str, Array]]:
    rng = np.random.default_rng(seed)
    n_opps = max(n // 10, 1)
    n_contacts = max(n // 10, 1)
    n_accounts = max(n // 50, 1)
    contacts = np.char.add("k", np.arange(n_contacts).astype(str))
    accounts = np.char.add("a", np.arange(n_accounts).astype(str))
    is_contact = rng.random(n) < 0.8
    member_contact = np.where(is_contact, rng.choice(contacts, n), "")
    member_account = np.where(is_contact, "", rng.choice(accounts, n))
    start = np.datetime64("2025-01-01T00:00", "us")
    responded = start + rng.integers(0, 365 * 24, n).astype("m8[h]")
    responded[rng.random(n) < 0.3] = np.datetime64("NaT")
    members = {
        "id": np.char.add("m", np.arange(n).astype(str)),
        "campaign_id": rng.choice(np.char.add("c", np.arange(200).astype(str)), n),
        "contact_id": member_contact.astype(str),
        "lead_id": np.full(n, "", dtype="<U1"),
        "account_id": member_account.astype(str),
        "responded_at": responded,
    }
    opps = {
        "id": np.char.add("o", np.arange(n_opps).astype(str)),
        "contact_id": rng.choice(contacts, n_opps),
        "lead_id": np.full(n_opps, "", dtype="<U1"),
        "account_id": rng.choice(accounts, n_opps),
        "amount": rng.integers(1, 1000, n_opps) * 100.0,
        "status": rng.choice(np.array(["open", "won", "lost"]), n_opps),
        "created_at": start + rng.integers(0, 400 * 24, n_opps).astype("m8[h]"),
    }
    return members, opps


def crmkit_by_campaign(members: dict[str, Array], opps: dict[str, Array]) -> dict[str, float]:
    table = attribution_from_columns(members, opps, "u_shaped")
    return {str(k): float(v) for k, v in zip(table["campaign_id"], table["amount"], strict=True)}


def pandas_by_campaign(members: dict[str, Array], opps: dict[str, Array]) -> dict[str, float]:
    import pandas as pd

    m = pd.DataFrame(members)
    m["member"] = np.arange(len(m))
    o = pd.DataFrame(opps)
    o["opp"] = np.arange(len(o))
    m = m[m["responded_at"].notna()]
    pairs = []
    for key in ("contact_id", "lead_id", "account_id"):
        left = o.loc[o[key] != "", ["opp", key, "created_at", "amount"]]
        right = m.loc[m[key] != "", ["member", key, "responded_at", "campaign_id"]]
        pairs.append(left.merge(right, on=key).drop(columns=key))
    t = pd.concat(pairs, ignore_index=True)
    t = t[t["responded_at"] < t["created_at"]].drop_duplicates(["opp", "member"])
    t = t.sort_values(["opp", "responded_at", "member"], kind="stable")
    group = t.groupby("opp", sort=False)
    rank = group.cumcount().to_numpy()
    k = group["member"].transform("size").to_numpy()
    weight = np.where(
        (rank == 0) | (rank == k - 1),
        np.where(k == 1, 1.0, np.where(k == 2, 0.5, 0.4)),
        0.2 / np.maximum(k - 2, 1),
    )
    t = t.assign(credit=weight * t["amount"].to_numpy())
    sums = t.groupby("campaign_id")["credit"].sum()
    return {str(k): float(v) for k, v in sums.items()}


def main() -> None:
    args = bench_args(__doc__, default_n=1_000_000, quick_n=100_000)
    members, opps = generate(args.n)
    ours = crmkit_by_campaign(members, opps)
    theirs = pandas_by_campaign(members, opps)
    touched = touch_credits(members, opps, "u_shaped")
    assert set(theirs) <= set(ours)
    for name, value in ours.items():
        assert abs(value - theirs.get(name, 0.0)) <= 1e-6 * max(1.0, abs(value)), name
    table = Table(
        f"U-shaped attribution: {args.n:,} members, {len(opps['id']):,} opportunities, "
        f"{len(touched['credit_minor']):,} touches"
    )
    base = table.add(
        "pandas merge + groupby",
        best_of(lambda: pandas_by_campaign(members, opps), repeat=args.repeat),
        per=args.n,
    )
    table.add(
        "crmkit attribution_from_columns",
        best_of(lambda: crmkit_by_campaign(members, opps), repeat=args.repeat),
        base=base,
        target=1.5,
        per=args.n,
    )
    table.print()


if __name__ == "__main__":
    main()
