"""Campaign attribution over many touches: crmkit.campaigns beside pandas and plain numpy.

    python benchmarks/bench_attribution.py [--quick]

Two tables:

1. Linear attribution, ``n / 10`` deals (default 1e5) x about 10 touches each, beside the
   plain-numpy floor written here (``linear_floor``): member contact ids found among the
   deals' sorted contact ids (one ``np.unique`` and one ``searchsorted`` of text), one sort
   join, the time filter, ``1 / k`` per touch, and one ``np.bincount`` per campaign (campaign
   ids factorised once). Median of ``--repeat`` runs each, ratios within one run.
2. U-shaped attribution beside pandas, as below.

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


def generate_linear(n_deals: int, touches: int = 10, seed: int = 11) -> tuple[dict, dict]:
    """``n_deals`` deals, one contact each, and ``touches`` members per deal on average
    (contacts only; 10% respond after the deal was created, so they earn nothing)."""
    rng = np.random.default_rng(seed)
    n = n_deals * touches
    contacts = np.char.add("k", np.arange(n_deals).astype(str))
    start = np.datetime64("2025-01-01T00:00", "us")
    created = start + rng.integers(30 * 24, 400 * 24, n_deals).astype("m8[h]")
    which = rng.integers(0, n_deals, n)
    responded = created[which] - rng.integers(-3 * 24, 30 * 24, n).astype("m8[h]")
    members = {
        "id": np.char.add("m", np.arange(n).astype(str)),
        "campaign_id": rng.choice(np.char.add("c", np.arange(200).astype(str)), n),
        "contact_id": contacts[which],
        "lead_id": np.full(n, "", dtype="<U1"),
        "account_id": np.full(n, "", dtype="<U1"),
        "responded_at": responded,
    }
    opps = {
        "id": np.char.add("o", np.arange(n_deals).astype(str)),
        "contact_id": contacts[rng.permutation(n_deals)],
        "lead_id": np.full(n_deals, "", dtype="<U1"),
        "account_id": np.full(n_deals, "", dtype="<U1"),
        "amount": rng.integers(1, 1000, n_deals) * 100.0,
        "status": rng.choice(np.array(["open", "won", "lost"]), n_deals),
        "created_at": created,
    }
    return members, opps


def linear_floor(members: dict[str, Array], opps: dict[str, Array]) -> tuple[Array, Array]:
    """Plain numpy: linear credit per campaign, float sums (the floor: no exact money, no
    rounding to the cent, contacts only)."""
    keys, opp_code = np.unique(opps["contact_id"], return_inverse=True)
    member_key = members["contact_id"]
    pos = np.minimum(np.searchsorted(keys, member_key), keys.size - 1)
    hit = (keys[pos] == member_key) & ~np.isnat(members["responded_at"])
    m_rows = np.flatnonzero(hit)
    m_code = pos[m_rows]
    # join: the deals of each key (a deal per key here, but written for many)
    by_key = np.argsort(opp_code, kind="stable")
    first = np.searchsorted(opp_code[by_key], m_code, "left")
    last = np.searchsorted(opp_code[by_key], m_code, "right")
    count = last - first
    member_rows = np.repeat(m_rows, count)
    opp_rows = by_key[
        np.repeat(first, count)
        + np.arange(count.sum())
        - np.repeat(np.cumsum(count) - count, count)
    ]
    keep = members["responded_at"][member_rows] < opps["created_at"][opp_rows]
    member_rows, opp_rows = member_rows[keep], opp_rows[keep]
    k = np.bincount(opp_rows, minlength=opps["amount"].size)
    credit = opps["amount"][opp_rows] / k[opp_rows]
    campaigns, campaign_code = np.unique(members["campaign_id"][member_rows], return_inverse=True)
    return campaigns, np.bincount(campaign_code, weights=credit, minlength=campaigns.size)


def linear_floor_codes(codes: dict[str, Array]) -> Array:
    """The same floor when every id is already an integer code (factorised before the
    timing): what is left once no text is handled at all."""
    opp_of_key = np.full(codes["n_keys"], -1, dtype=np.int64)
    opp_of_key[codes["opp_contact"]] = np.arange(codes["opp_contact"].size)
    opp_rows = opp_of_key[codes["member_contact"]]
    member_rows = np.flatnonzero(opp_rows >= 0)
    opp_rows = opp_rows[member_rows]
    keep = codes["responded_at"][member_rows] < codes["created_at"][opp_rows]
    member_rows, opp_rows = member_rows[keep], opp_rows[keep]
    k = np.bincount(opp_rows, minlength=codes["amount"].size)
    credit = codes["amount"][opp_rows] / k[opp_rows]
    return np.bincount(
        codes["campaign"][member_rows], weights=credit, minlength=codes["n_campaigns"]
    )


def as_codes(members: dict[str, Array], opps: dict[str, Array]) -> dict[str, Any]:
    keys, inverse = np.unique(
        np.concatenate([members["contact_id"], opps["contact_id"]]), return_inverse=True
    )
    n = len(members["contact_id"])
    campaigns, campaign = np.unique(members["campaign_id"], return_inverse=True)
    return {
        "n_keys": keys.size,
        "member_contact": inverse[:n],
        "opp_contact": inverse[n:],
        "responded_at": members["responded_at"].view(np.int64),
        "created_at": opps["created_at"].view(np.int64),
        "amount": opps["amount"],
        "campaign": campaign,
        "n_campaigns": campaigns.size,
        "campaigns": campaigns,
    }


def median_of(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(max(repeat, 3)):
        times.append(best_of(fn, repeat=1))
    return float(np.median(times))


def bench_linear(n_deals: int, repeat: int) -> None:
    members, opps = generate_linear(n_deals)
    campaigns, floor = linear_floor(members, opps)
    table = attribution_from_columns(members, opps, "linear")
    at = np.searchsorted(table["campaign_id"], campaigns)
    ours = np.array([float(v) for v in table["amount"]])[at]
    assert np.allclose(ours, floor, rtol=1e-9, atol=0.01 * 200)
    touched = touch_credits(members, opps, "linear")
    result = Table(
        f"linear attribution: {n_deals:,} deals, {len(members['id']):,} members, "
        f"{len(touched['credit_minor']):,} touches (median of {max(repeat, 3)})"
    )
    codes = as_codes(members, opps)
    by_codes = linear_floor_codes(codes)[np.searchsorted(codes["campaigns"], campaigns)]
    assert np.allclose(by_codes, floor, rtol=1e-9)
    base = result.add(
        "plain numpy floor (text ids, float credit per campaign)",
        median_of(lambda: linear_floor(members, opps), repeat),
        per=n_deals,
    )
    result.add(
        "plain numpy, ids already integer codes (untimed)",
        median_of(lambda: linear_floor_codes(codes), repeat),
        base=base,
        per=n_deals,
    )
    result.add(
        "crmkit touch_credits (exact cents per touch)",
        median_of(lambda: touch_credits(members, opps, "linear"), repeat),
        base=base,
        per=n_deals,
    )
    result.add(
        "crmkit attribution_from_columns",
        median_of(lambda: attribution_from_columns(members, opps, "linear"), repeat),
        base=base,
        target=1.5,
        per=n_deals,
    )
    result.print()


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
    bench_linear(args.n // 10, args.repeat)
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
