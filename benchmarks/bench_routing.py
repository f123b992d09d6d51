"""Routing and territory benchmarks: crmkit beside the strongest numpy floors, pure Python
and a naive loop.

python benchmarks/bench_routing.py [--quick] [--repeat N]

1. Lead routing as the peer harness's W3 (n leads, 500 rules, 20 round-robin queues of 10
   reps with capacities): crmkit ``Router.route_columns`` (rules + round robin, answer
   read from ``owner_code``/``owner_ids``) and ``RuleSet.first_match_columns`` (rules
   only) beside the harness's ``numpy_indexed`` floor on integer columns
   (``_workloads.w3_floor``). crmkit gets the same leads as text columns.
2. The older rule set of this script (country/employees, industry/source rules to 20
   teams) beside a numpy first-match floor (progressive masks), the best pure Python
   (rules indexed by country) and a naive loop, both subsampled and extrapolated.
3. Single-lead routing throughput: ``Router.route(lead, apply=False)`` (decide),
   ``Router.route(lead)`` (decide and write to a MemoryStore) and the rule index alone.
4. Territory assignment as the harness's W4 (n accounts, 5,000 territories: half-open
   postal ranges per country, overlays with industry sets and employee bands): crmkit
   ``assign_columns`` from the Territory records and from a ``TerritoryIndex`` built once
   (count read from ``match_count``; one row counts from the listed pairs instead),
   beside the harness's ``numpy_decision_table`` floor on integer columns.

For 1 and 4 every time is a median of ``--repeat`` (at least 3) rounds that run the
contenders interleaved, in this one run; the answers are checked equal to the floor's
first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

import _workloads as wl
from _common import Table, bench_args, best_of, timed
from crmkit import F, FixedClock, Lead, MemoryStore, Rep, RoutingRule, Territory
from crmkit.routing import Router, RuleSet, Target, TerritoryIndex, assign_columns
from crmkit.routing._territories import match_territories

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
COUNTRIES = np.array([f"C{i:02}" for i in range(50)])
INDUSTRIES = np.array([f"I{i:02}" for i in range(20)])
SOURCES = np.array(["web", "event", "partner", "ads", "referral"])


def interleaved(contenders: dict[str, Any], repeat: int) -> dict[str, float]:
    """The median wall time of each contender over ``max(repeat, 3)`` rounds; every round
    runs each contender once, starting one further along each time, so that machine load
    drifting during the run falls on all of them alike."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(repeat, 3)):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(best_of(contenders[name], repeat=1))
    return {name: float(np.median(t)) for name, t in times.items()}


def bench_w3(n: int, repeat: int) -> None:
    d = wl.w3_data(n)
    p = wl.w3_crmkit_input(d)
    store = MemoryStore()
    store.reps.add_many(p["reps"])
    store.routing_rules.add_many(p["rules"])
    default = Target("team", f"q{d['default_queue']:02d}")

    def router() -> Router:
        return Router(store, default=default, clock=FixedClock(NOW), respect_hours=False)

    built = router()
    floor = wl.w3_floor(d)
    ours = wl.w3_answer(p, built.route_columns(p["cols"]))
    assert np.array_equal(floor[0], ours[0])
    assert np.array_equal(floor[1], ours[1])
    t = interleaved(
        {
            "floor": lambda: wl.w3_floor(d),
            "route": lambda: wl.w3_answer(p, built.route_columns(p["cols"])),
            "build+route": lambda: wl.w3_answer(p, router().route_columns(p["cols"])),
            "rules": lambda: built.rules.first_match_columns(p["cols"], NOW),
        },
        repeat,
    )
    table = Table(f"lead routing (harness W3): {n:,} leads, 500 rules, medians, interleaved")
    base = table.add("numpy_indexed floor (integer columns)", t["floor"], per=n)
    table.add(
        "crmkit route_columns + answer", t["route"], base=base, target=2.0, per=n,
        note="Router built once",
    )  # fmt: skip
    table.add("crmkit Router(...) + route_columns + answer", t["build+route"], base=base, per=n)
    table.add("crmkit RuleSet.first_match_columns (rules only)", t["rules"], base=base, per=n)
    table.print()


def bench_w4(n: int, repeat: int) -> None:
    d = wl.w4_data(n)
    p = wl.w4_crmkit_input(d)
    index = TerritoryIndex(p["territories"])
    floor = wl.w4_floor(d)
    for answer in (wl.w4_answer, wl.w4_answer_pairs):
        ours = answer(p, assign_columns(p["territories"], p["cols"]))
        assert np.array_equal(floor[0], ours[0])
        assert np.array_equal(floor[1], ours[1])
    t = interleaved(
        {
            "floor": lambda: wl.w4_floor(d),
            "index": lambda: wl.w4_answer(p, assign_columns(index, p["cols"])),
            "records": lambda: wl.w4_answer(p, assign_columns(p["territories"], p["cols"])),
            "pairs": lambda: wl.w4_answer_pairs(p, assign_columns(index, p["cols"])),
            "compile": lambda: TerritoryIndex(p["territories"]),
        },
        repeat,
    )
    table = Table(f"territories (harness W4): {n:,} accounts, 5,000 territories, medians")
    base = table.add("numpy_decision_table floor (integer columns)", t["floor"], per=n)
    table.add(
        "crmkit assign_columns(TerritoryIndex) + answer", t["index"], base=base, target=2.0,
        per=n, note="territories compiled once",
    )  # fmt: skip
    table.add(
        "crmkit assign_columns(territories) + answer", t["records"], base=base, target=2.0, per=n
    )
    table.add(
        "crmkit assign_columns(TerritoryIndex), count from pair_account", t["pairs"], base=base,
        per=n, note="lists every pair",
    )  # fmt: skip
    table.add("crmkit TerritoryIndex(territories) alone", t["compile"], base=base, per=n)
    table.print()


def lead_columns(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "id": np.char.add("l", np.arange(n).astype(str)),
        "country": COUNTRIES[rng.integers(0, COUNTRIES.size, n)],
        "industry": INDUSTRIES[rng.integers(0, INDUSTRIES.size, n)],
        "source": SOURCES[rng.integers(0, SOURCES.size, n)],
        "employees": rng.integers(1, 20_000, n).astype(np.float64),
    }


def make_rules(rng: np.random.Generator) -> tuple[list[RoutingRule], list[tuple]]:
    """500 rules; the plain tuples describe the same rules for the hand-written peers."""
    rules, plain = [], []
    for i in range(500):
        team = f"t{i % 20}"
        if i % 2 == 0:
            c = str(COUNTRIES[rng.integers(0, 50)])
            e = float(rng.integers(1000, 20_000))
            crit = (F.country == c) & (F.employees >= e)
            plain.append(("ce", c, e))
        else:
            ind = str(INDUSTRIES[rng.integers(0, 20)])
            src = str(SOURCES[rng.integers(0, 5)])
            crit = (F.industry == ind) & (F.source == src) & (F.country == str(COUNTRIES[i % 50]))
            plain.append(("is", ind, src, str(COUNTRIES[i % 50])))
        rules.append(
            RoutingRule(
                id=f"r{i:03}",
                position=i,
                criteria=crit.to_dict(),
                target_kind="team",
                target_id=team,
            )
        )
    return rules, plain


def numpy_floor(cols: dict[str, np.ndarray], plain: list[tuple]) -> np.ndarray:
    n = cols["country"].size
    result = np.full(n, -1)
    rows = np.arange(n)
    c, e, ind, src = cols["country"], cols["employees"], cols["industry"], cols["source"]
    for i, rule in enumerate(plain):
        if rule[0] == "ce":
            m = (c == rule[1]) & (e >= rule[2])
        else:
            m = (ind == rule[1]) & (src == rule[2]) & (c == rule[3])
        hit = np.flatnonzero(m)
        result[rows[hit]] = i
        keep = ~m
        rows, c, e, ind, src = rows[keep], c[keep], e[keep], ind[keep], src[keep]
    return result


def naive_loop(rows: list[tuple], plain: list[tuple]) -> list[int]:
    out = []
    for country, industry, source, employees in rows:
        found = -1
        for i, rule in enumerate(plain):
            if rule[0] == "ce":
                ok = country == rule[1] and employees >= rule[2]
            else:
                ok = industry == rule[1] and source == rule[2] and country == rule[3]
            if ok:
                found = i
                break
        out.append(found)
    return out


def best_python(rows: list[tuple], plain: list[tuple]) -> list[int]:
    by_country: dict[str, list[int]] = {}
    for i, rule in enumerate(plain):
        key = rule[1] if rule[0] == "ce" else rule[3]
        by_country.setdefault(key, []).append(i)
    out = []
    for country, industry, source, employees in rows:
        found = -1
        for i in by_country.get(country, ()):
            rule = plain[i]
            if rule[0] == "ce":
                ok = employees >= rule[2]
            else:
                ok = industry == rule[1] and source == rule[2]
            if ok:
                found = i
                break
        out.append(found)
    return out


def routing_store(rules: list[RoutingRule]) -> MemoryStore:
    store = MemoryStore()
    store.reps.add_many(
        Rep(id=f"rep{t:02}{k}", name="R", team_ids=[f"t{t}"]) for t in range(20) for k in range(5)
    )
    store.routing_rules.add_many(rules)
    return store


def bench_bulk(n: int, repeat: int) -> None:
    rng = np.random.default_rng(5)
    rules, plain = make_rules(rng)
    cols = lead_columns(n, rng)
    store = routing_store(rules)
    router = Router(store, clock=FixedClock(NOW))
    ruleset = router.rules
    got = ruleset.first_match_columns(cols, NOW)
    floor = numpy_floor(cols, plain)
    assert np.array_equal(got, floor), "crmkit and the floor disagree"
    sample = min(n, 20_000)
    rows = list(
        zip(
            cols["country"][:sample].tolist(),
            cols["industry"][:sample].tolist(),
            cols["source"][:sample].tolist(),
            cols["employees"][:sample].tolist(),
            strict=True,
        )
    )
    assert naive_loop(rows[:2000], plain) == best_python(rows[:2000], plain) == got[:2000].tolist()
    table = Table(f"bulk routing: {n:,} leads through {len(rules)} rules")
    base = table.add(
        "numpy first-match floor (by hand)",
        best_of(lambda: numpy_floor(cols, plain), repeat=repeat),
        per=n,
    )
    table.add(
        "crmkit RuleSet.first_match_columns",
        best_of(lambda: ruleset.first_match_columns(cols, NOW), repeat=repeat),
        base=base,
        target=2.0,
        per=n,
    )
    result = router.route_columns(cols)
    table.add(
        "crmkit Router.route_columns (rules+teams)",
        best_of(lambda: router.route_columns(cols), repeat=repeat),
        base=base,
        target=2.0,
        per=n,
        note=f"{int(np.not_equal(result.owner, None).sum()):,} assigned",
    )
    seconds, _ = timed(lambda: best_python(rows, plain))
    table.add(
        "best pure Python (index by country)",
        seconds * n / sample,
        base=base,
        per=n,
        note=f"{sample:,} leads, extrapolated",
    )
    small = rows[: sample // 4]
    seconds, _ = timed(lambda: naive_loop(small, plain))
    table.add(
        "naive per-lead loop over all rules",
        seconds * n / len(small),
        base=base,
        per=n,
        note=f"{len(small):,} leads, extrapolated",
    )
    table.print()


def bench_single(repeat: int) -> None:
    rng = np.random.default_rng(6)
    rules, _ = make_rules(rng)
    cols = lead_columns(20_000, rng)
    leads = [
        Lead(id=str(i), country=c, industry=ind, source=s, employees=int(e))
        for i, (c, ind, s, e) in enumerate(
            zip(
                cols["country"].tolist(),
                cols["industry"].tolist(),
                cols["source"].tolist(),
                cols["employees"].tolist(),
                strict=True,
            )
        )
    ]
    table = Table("single-lead routing, 500 rules, 20 teams (throughput = 1 / per item)")
    ruleset = RuleSet(rules)
    m = len(leads)
    table.add(
        "RuleSet.first_match_index (rules only)",
        best_of(lambda: [ruleset.first_match_index(x, NOW) for x in leads], repeat=repeat),
        per=m,
        note="leads/s = 1/per item",
    )
    router = Router(routing_store(rules), clock=FixedClock(NOW))
    decide = best_of(lambda: [router.route(x, apply=False) for x in leads], repeat=repeat)
    table.add(
        "Router.route(apply=False) (decide)", decide, per=m, note=f"{m / decide:,.0f} leads/s"
    )
    k = 5000
    writer = Router(routing_store(rules), clock=FixedClock(NOW))
    seconds, _ = timed(lambda: [writer.route(x) for x in leads[:k]])
    table.add(
        "Router.route (decide + write, MemoryStore)",
        seconds,
        per=k,
        note=f"{k / seconds:,.0f} leads/s",
    )
    table.print()


def territory_data(n: int, rng: np.random.Generator) -> tuple[list[Territory], dict, list[tuple]]:
    terrs, plain = [], []
    for c in range(50):
        edges = np.linspace(0, 100_000, 101).astype(int)
        for k in range(100):
            lo, hi = f"{edges[k]:06d}", f"{edges[k + 1] - 1:06d}"
            terrs.append(
                Territory(
                    id=f"T{c:02}-{k:03}",
                    name="t",
                    model_id="m",
                    priority=k % 7,
                    criteria=(
                        (F.country == str(COUNTRIES[c])) & F.postal_code.between(lo, hi)
                    ).to_dict(),
                )
            )
            plain.append((str(COUNTRIES[c]), lo, hi))
    postal = np.char.zfill(rng.integers(0, 100_000, n).astype(str), 6)
    cols = {
        "id": np.char.add("a", np.arange(n).astype(str)),
        "country": COUNTRIES[rng.integers(0, 50, n)],
        "postal_code": postal,
    }
    return terrs, cols, plain


def indexed_floor(cols: dict, plain: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    cu, cc = np.unique(cols["country"], return_inverse=True)
    pu, pc = np.unique(cols["postal_code"], return_inverse=True)
    comp = cc.astype(np.int64) * (pu.size + 1) + pc
    order = np.argsort(comp, kind="stable")
    sc = comp[order]
    t_c = np.searchsorted(cu, [p[0] for p in plain])
    lo = t_c * (pu.size + 1) + np.searchsorted(pu, [p[1] for p in plain], "left")
    hi = t_c * (pu.size + 1) + np.searchsorted(pu, [p[2] for p in plain], "right")
    a, b = np.searchsorted(sc, lo), np.searchsorted(sc, hi)
    lengths = b - a
    ter = np.repeat(np.arange(len(plain)), lengths)
    acc = order[np.arange(lengths.sum()) + np.repeat(a - (np.cumsum(lengths) - lengths), lengths)]
    return acc, ter


def bench_territories(n: int, repeat: int) -> None:
    rng = np.random.default_rng(7)
    terrs, cols, plain = territory_data(n, rng)
    acc, ter, _ = match_territories(terrs, cols)
    facc, fter = indexed_floor(cols, plain)
    assert np.array_equal(np.lexsort((ter, acc)).size, np.lexsort((fter, facc)).size)
    assert set(zip(acc[:1000].tolist(), ter[:1000].tolist(), strict=True)) <= set(
        zip(facc.tolist(), fter.tolist(), strict=True)
    )
    table = Table(f"territory assignment: {n:,} accounts x {len(terrs):,} territories")
    base = table.add(
        "indexed numpy floor (by hand)",
        best_of(lambda: indexed_floor(cols, plain), repeat=repeat),
        per=n,
    )
    table.add(
        "crmkit match_territories",
        best_of(lambda: match_territories(terrs, cols), repeat=repeat),
        base=base,
        target=2.0,
        per=n,
    )
    table.add(
        "crmkit assign_columns (+ primary, ties)",
        best_of(lambda: assign_columns(terrs, cols), repeat=repeat),
        base=base,
        per=n,
    )
    k = 100
    c, p = cols["country"], cols["postal_code"]
    seconds, _ = timed(
        lambda: [np.flatnonzero((c == t[0]) & (p >= t[1]) & (p <= t[2])) for t in plain[:k]]
    )
    table.add(
        "per-territory numpy mask",
        seconds * len(plain) / k,
        base=base,
        per=n,
        note=f"{k} territories, extrapolated",
    )
    m = 200
    rows = list(zip(c[:m].tolist(), p[:m].tolist(), strict=True))
    seconds, _ = timed(
        lambda: [
            [i for i, t in enumerate(plain) if cc == t[0] and t[1] <= pp <= t[2]]
            for cc, pp in rows
        ]
    )
    table.add(
        "Python loop (account x territory)",
        seconds * n / m,
        base=base,
        per=n,
        note=f"{m} accounts, extrapolated",
    )
    table.print()


def main() -> None:
    args = bench_args(__doc__, default_n=1_000_000, quick_n=100_000)
    bench_w3(args.n, args.repeat)
    bench_w4(args.n, args.repeat)
    bench_bulk(args.n, args.repeat)
    bench_single(args.repeat)
    bench_territories(args.n, args.repeat)


if __name__ == "__main__":
    main()
