"""Routing and territory workloads with the strongest numpy floors known for them.

The data follow the peer harness's W3 (lead routing, 500 rules) and W4 (territories, 5,000
territories) generators, and the floors are the same algorithms as the harness's:

- ``w3_floor``: ``numpy_indexed`` - leads sorted by country once, a rule with a country
  equality only looks at that country's slice, first match = the smallest rule index kept
  in one int array; then a vectorised round robin.
- ``w4_floor``: ``numpy_decision_table`` - elementary postal segments per country, and the
  answer (count, best priority) precomputed per (segment, industry, employee bucket) cell.

Both take integer columns; crmkit gets the same data as text columns and records
(``w3_crmkit_input`` / ``w4_crmkit_input``), as a user holds them.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from crmkit import F, Rep, RoutingRule, Territory

Array = np.ndarray[Any, Any]

N_COUNTRIES, N_STATES, N_INDUSTRIES, N_SOURCES = 50, 20, 30, 8
N_QUEUES, REPS_PER_QUEUE, POSTAL_SPACE = 20, 10, 100_000
COUNTRY = np.array([chr(65 + i // 26) + chr(65 + i % 26) for i in range(N_COUNTRIES)])
_STEMS = [
    *("Aero", "Agri", "Appa", "Bank", "Biot", "Chem", "Comm", "Cons", "Cnsl", "Educ"),
    *("Elec", "Ener", "Engi", "Ente", "Envi", "Fina", "Food", "Gove", "Heal", "Hosp"),
    *("Insu", "Mach", "Manu", "Medi", "Nonp", "Recr", "Reta", "Ship", "Tech", "Tran"),
]
INDUSTRY = np.array([w + "x" * (4 + i % 8) for i, w in enumerate(_STEMS)])  # 8 to 15 letters
REGION = np.array([f"R{i:02d}" for i in range(N_STATES)])
SOURCE = np.array([f"src{i}" for i in range(N_SOURCES)])
EMP_BANDS = [(1, 50), (50, 200), (200, 1000), (1000, 5000), (5000, 10**9), (1, 200), (200, 10**9)]
SCORE_BANDS = [(0.0, 30.0), (30.0, 60.0), (60.0, 80.0), (80.0, 101.0), (50.0, 101.0)]
W4_EMP_BANDS = [
    (1, 50), (50, 250), (250, 1000), (1000, 10_000), (10_000, 10**9), (1, 250), (250, 10**9)
]  # fmt: skip


def _zipf(k: int, s: float) -> Array:
    p = 1.0 / np.arange(1, k + 1, dtype=np.float64) ** s
    return p / p.sum()


# -- W3 ---------------------------------------------------------------------------------------


def w3_data(n: int, seed: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 0])
    rrng = np.random.default_rng([seed, 1])
    pc = _zipf(N_COUNTRIES, 0.8)
    pi = _zipf(N_INDUSTRIES, 0.5)[rrng.permutation(N_INDUSTRIES)]
    leads = {
        "country": rng.choice(N_COUNTRIES, size=n, p=pc).astype(np.int16),
        "state": rng.integers(0, N_STATES, size=n).astype(np.int8),
        "industry": rng.choice(N_INDUSTRIES, size=n, p=pi).astype(np.int8),
        "employees": np.clip(np.exp(rng.normal(3.5, 1.8, size=n)), 1, 500_000).astype(np.int32),
        "source": rng.integers(0, N_SOURCES, size=n).astype(np.int8),
        "score": np.round(rng.random(n) * 100.0, 1),
    }
    card = {"country": N_COUNTRIES, "state": N_STATES, "industry": N_INDUSTRIES}
    card["source"] = N_SOURCES
    rules = []
    for _ in range(500):
        n_crit = int(rrng.choice([1, 2, 3], p=[0.25, 0.45, 0.30]))
        crits: list[dict[str, Any]] = []
        used = set()
        if rrng.random() < 0.7:
            value = int(rrng.choice(N_COUNTRIES, p=pc))
            crits.append({"field": "country", "op": "eq", "value": value})
            used.add("country")
        while len(crits) < n_crit:
            field = str(
                rrng.choice(
                    ["state", "industry", "source", "employees", "score", "country"],
                    p=[0.15, 0.3, 0.15, 0.2, 0.1, 0.1],
                )
            )
            if field in used:
                continue
            used.add(field)
            if field in ("employees", "score"):
                bands = EMP_BANDS if field == "employees" else SCORE_BANDS
                lo, hi = bands[rrng.integers(len(bands))]
                crits.append({"field": field, "op": "range", "value": [lo, hi]})
            elif rrng.random() < 0.5:
                value = int(rrng.integers(card[field]))
                crits.append({"field": field, "op": "eq", "value": value})
            else:
                k = int(rrng.integers(2, 6 if field != "source" else 4))
                values = sorted(int(v) for v in rrng.choice(card[field], size=k, replace=False))
                crits.append({"field": field, "op": "in", "value": values})
        rules.append({"criteria": crits, "queue": int(rrng.integers(N_QUEUES))})
    order = sorted(range(500), key=lambda i: (-len(rules[i]["criteria"]), rrng.random()))
    per_rep = n / (N_QUEUES * REPS_PER_QUEUE)
    capacity = rng.integers(0, int(2.2 * per_rep) + 2, size=(N_QUEUES, REPS_PER_QUEUE))
    capacity[rng.random((N_QUEUES, REPS_PER_QUEUE)) < 0.1] = 0
    rr_start = rng.integers(0, REPS_PER_QUEUE, size=N_QUEUES)
    return {"leads": leads, "rules": [rules[i] for i in order], "capacity": capacity,
            "rr_start": rr_start, "default_queue": 0}  # fmt: skip


def _crit_mask(col: Array, op: str, v: Any) -> Array:
    if op == "eq":
        return np.asarray(col == v)
    if op == "in":
        if len(v) <= 8:
            m = col == v[0]
            for x in v[1:]:
                m |= col == x
            return np.asarray(m)
        lut = np.zeros(int(max(v)) + 1 + 256, dtype=bool)
        lut[list(v)] = True
        return np.take(lut, col.astype(np.intp), mode="clip")
    lo, hi = v
    return np.asarray((col >= lo) & (col < hi))


def round_robin(queue: Array, capacity: Array, rr_start: Array) -> Array:
    """The k-th lead of queue q gets the k-th slot in (round, (rep - rr_start) mod R)
    order over the slots each rep has capacity for."""
    n, (q_count, r_count) = len(queue), capacity.shape
    order = np.argsort(queue.astype(np.int8), kind="stable")
    qstart = np.searchsorted(queue[order], np.arange(q_count + 1))
    rep = np.full(n, -1, dtype=np.int64)
    for q in range(q_count):
        cnt, cap = qstart[q + 1] - qstart[q], capacity[q]
        total = int(cap.sum())
        m = min(int(cnt), total)
        if m == 0:
            continue
        j = np.repeat(np.arange(r_count), cap)
        r = np.arange(total) - np.repeat(np.cumsum(cap) - cap, cap)
        key = r * r_count + (j - rr_start[q]) % r_count
        if m < total:
            first = np.argpartition(key, m - 1)[:m]
            slots = j[first[np.argsort(key[first], kind="stable")]]
        else:
            slots = j[np.argsort(key, kind="stable")]
        rep[order[qstart[q] : qstart[q] + m]] = q * r_count + slots
    return rep


def w3_floor(d: dict[str, Any]) -> tuple[Array, Array]:
    cols, rules = d["leads"], d["rules"]
    n = len(cols["country"])
    order = np.argsort(cols["country"], kind="stable")
    sc = {f: c[order] for f, c in cols.items()}
    bounds = np.searchsorted(sc["country"], np.arange(N_COUNTRIES + 1))
    none = len(rules)
    best = np.full(n, none, dtype=np.int32)
    for i, rule in enumerate(rules):
        crit, lo, hi = rule["criteria"], 0, n
        rest = crit
        for c in crit:
            if c["field"] == "country" and c["op"] == "eq":
                lo, hi = int(bounds[c["value"]]), int(bounds[c["value"] + 1])
                rest = [x for x in crit if x is not c]
                break
        if hi <= lo:
            continue
        seg = best[lo:hi]
        free = seg == none
        for c in rest:
            free &= _crit_mask(sc[c["field"]][lo:hi], c["op"], c["value"])
        seg[free] = i
    rq = np.append(np.array([r["queue"] for r in rules], dtype=np.int64), d["default_queue"])
    queue = np.empty(n, dtype=np.int64)
    queue[order] = rq[best]
    return queue, round_robin(queue, d["capacity"], d["rr_start"])


_W3_TEXT = {"country": ("country", COUNTRY), "state": ("region", REGION),
            "industry": ("industry", INDUSTRY), "source": ("source", SOURCE)}  # fmt: skip


def _w3_condition(c: dict[str, Any]) -> Any:
    field, op, v = c["field"], c["op"], c["value"]
    if field in _W3_TEXT:
        name, table = _W3_TEXT[field]
        if op == "eq":
            return F[name] == str(table[v])
        return F[name].isin([str(table[x]) for x in v])
    ref = F.employees if field == "employees" else F.custom["score"]
    return ref.range(*v)


def w3_crmkit_input(d: dict[str, Any]) -> dict[str, Any]:
    """Reps named so that id order is the rotation from ``rr_start``, the rules as
    ``RoutingRule`` records, the leads as text and number columns."""
    reps, rep_int = [], {}
    for q in range(N_QUEUES):
        start = int(d["rr_start"][q])
        for r in range(REPS_PER_QUEUE):
            rid = f"q{q:02d}-{(r - start) % REPS_PER_QUEUE}"
            rep_int[rid] = q * REPS_PER_QUEUE + r
            reps.append(
                Rep(id=rid, name=rid, team_ids=[f"q{q:02d}"], capacity=int(d["capacity"][q, r]))
            )
    rules = []
    for i, rule in enumerate(d["rules"]):
        crit = _w3_condition(rule["criteria"][0])
        for c in rule["criteria"][1:]:
            crit = crit & _w3_condition(c)
        team = f"q{rule['queue']:02d}"
        rules.append(RoutingRule(id=f"r{i:03d}", position=i, criteria=crit.to_dict(),
                                 target_kind="team", target_id=team))  # fmt: skip
    leads = d["leads"]
    n = len(leads["country"])
    cols = {"id": np.arange(n).astype(f"U{len(str(n))}"), "country": COUNTRY[leads["country"]],
            "region": REGION[leads["state"]], "industry": INDUSTRY[leads["industry"]],
            "source": SOURCE[leads["source"]], "employees": leads["employees"],
            "custom.score": leads["score"]}  # fmt: skip
    rule_queue = np.array([r["queue"] for r in d["rules"]] + [d["default_queue"]])
    return {"reps": reps, "rules": rules, "cols": cols, "rep_int": rep_int,
            "rule_queue": rule_queue}  # fmt: skip


def w3_answer(p: dict[str, Any], batch: Any) -> tuple[Array, Array]:
    """crmkit's batch as the floor's (queue, rep) integers: rule index -> queue, owner
    code -> rep through the small owner id table."""
    table = np.array([p["rep_int"][r] for r in batch.owner_ids] + [-1], dtype=np.int64)
    return p["rule_queue"][batch.rule], table[batch.owner_code]


# -- W4 ---------------------------------------------------------------------------------------


def w4_data(n: int, n_territories: int = 5000, seed: int = 4) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 0])
    trng = np.random.default_rng([seed, 1])
    pc = _zipf(N_COUNTRIES, 0.7)
    pi = _zipf(N_INDUSTRIES, 0.5)[trng.permutation(N_INDUSTRIES)]
    accounts = {
        "country": rng.choice(N_COUNTRIES, size=n, p=pc).astype(np.int16),
        "postal": rng.integers(0, POSTAL_SPACE, size=n).astype(np.int32),
        "industry": rng.choice(N_INDUSTRIES, size=n, p=pi).astype(np.int8),
        "employees": np.clip(np.exp(rng.normal(4.0, 2.0, size=n)), 1, 1e6).astype(np.int32),
    }
    n_base = int(0.6 * n_territories)
    base_counts = np.maximum(1, np.floor(pc * (n_base - N_COUNTRIES)).astype(np.int64))
    base_counts[0] += n_base - base_counts.sum()
    t: dict[str, list[Any]] = {k: [] for k in ("country", "lo", "hi", "ind", "elo", "ehi")}

    def add(c: int, lo: int, hi: int, ind: Any, elo: int, ehi: int) -> None:
        for key, value in zip(t, (c, lo, hi, ind, elo, ehi), strict=True):
            t[key].append(value)

    for c in range(N_COUNTRIES):
        k = int(base_counts[c])
        cuts = (
            np.sort(trng.choice(np.arange(1, POSTAL_SPACE), size=k - 1, replace=False))
            if k > 1
            else np.array([], dtype=np.int64)
        )
        edges = np.concatenate([[0], cuts, [POSTAL_SPACE]])
        for a, b in itertools.pairwise(edges):
            lo, hi = int(a), int(b)
            if trng.random() < 0.05:
                hi = lo + max(1, (hi - lo) // 2)
            add(c, lo, hi, None, -1, -1)
    for _ in range(n_territories - n_base):
        c = int(trng.choice(N_COUNTRIES, p=pc))
        length = int(np.clip(np.exp(trng.normal(np.log(4000), 1.0)), 50, POSTAL_SPACE))
        lo = int(trng.integers(0, POSTAL_SPACE - min(length, POSTAL_SPACE - 1)))
        hi = min(POSTAL_SPACE, lo + length)
        ind = None
        if trng.random() < 0.7:
            size = int(trng.integers(1, 6))
            ind = sorted(int(v) for v in trng.choice(N_INDUSTRIES, size=size, replace=False))
        elo, ehi = -1, -1
        if trng.random() < 0.5:
            elo, ehi = W4_EMP_BANDS[trng.integers(len(W4_EMP_BANDS))]
        add(c, lo, hi, ind, int(elo), int(ehi))
    nt = len(t["country"])
    shuffle = trng.permutation(nt)
    territories = {
        "country": np.array(t["country"], dtype=np.int16)[shuffle],
        "postal_lo": np.array(t["lo"], dtype=np.int32)[shuffle],
        "postal_hi": np.array(t["hi"], dtype=np.int32)[shuffle],
        "industries": [t["ind"][i] for i in shuffle],
        "emp_lo": np.array(t["elo"], dtype=np.int64)[shuffle],
        "emp_hi": np.array(t["ehi"], dtype=np.int64)[shuffle],
        "priority": trng.permutation(nt).astype(np.int64),
    }
    return {"accounts": accounts, "territories": territories}


def _expand(counts: Array) -> tuple[Array, Array]:
    tot = int(counts.sum())
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(tot) - np.repeat(np.cumsum(counts) - counts, counts)


def w4_floor(d: dict[str, Any]) -> tuple[Array, Array]:
    """(best territory or -1, number of matching territories) per account."""
    a, t = d["accounts"], d["territories"]
    p_space, ni = np.int64(POSTAL_SPACE), N_INDUSTRIES
    nt, n, prio = len(t["priority"]), len(a["country"]), t["priority"]
    tlo = t["country"].astype(np.int64) * p_space + t["postal_lo"]
    thi = t["country"].astype(np.int64) * p_space + t["postal_hi"]
    edges = np.unique(np.concatenate([tlo, thi]))
    s_count = len(edges)
    s0 = np.searchsorted(edges, tlo)
    span = np.searchsorted(edges, thi) - s0
    has_emp = t["emp_lo"] >= 0
    has_ind = np.array([x is not None for x in t["industries"]])
    e_edges = np.unique(np.concatenate([t["emp_lo"][has_emp], t["emp_hi"][has_emp]]))
    b_count = len(e_edges) + 1
    terr_of_prio = np.empty(nt, dtype=np.int64)
    terr_of_prio[prio] = np.arange(nt)
    key = a["country"].astype(np.int64) * p_space + a["postal"]
    if n * 16 >= int(edges[-1] - edges[0]):
        lut = np.repeat(np.arange(s_count - 1, dtype=np.int32), np.diff(edges))
        rel = key - edges[0]
        inside = (rel >= 0) & (rel < len(lut))
        s = np.full(n, s_count - 1, dtype=np.int64)
        s[inside] = lut[rel[inside]]
    else:
        s = np.searchsorted(edges, key, side="right") - 1
        s[(s < 0) | (s >= s_count - 1)] = s_count - 1
    count = np.zeros(n, dtype=np.int64)
    bestp = np.full(n, -1, dtype=np.int64)

    def paint(tt: Array, cell: Array, acell: Array, ncell: int) -> None:
        nonlocal count
        bp = np.full(ncell, -1, dtype=np.int64)
        np.maximum.at(bp, cell, prio[tt])
        count += np.bincount(cell, minlength=ncell)[acell]
        np.maximum(bestp, bp[acell], out=bestp)

    sel = np.flatnonzero(~has_ind & ~has_emp)
    o, w = _expand(span[sel])
    tt = sel[o]
    paint(tt, s0[tt] + w, s, s_count)
    sel = np.flatnonzero(has_ind & ~has_emp)
    o, w = _expand(span[sel])
    tt, seg = sel[o], s0[sel[o]] + w
    nind = np.array([len(t["industries"][i]) for i in sel], dtype=np.int64)
    flat = np.fromiter((v for i in sel for v in t["industries"][i]), np.int64, int(nind.sum()))
    ptr = np.zeros(nt, dtype=np.int64)
    ptr[sel] = np.cumsum(nind) - nind
    n_i = np.zeros(nt, dtype=np.int64)
    n_i[sel] = nind
    o2, w2 = _expand(n_i[tt])
    tt, seg, ind = tt[o2], seg[o2], flat[ptr[tt[o2]] + w2]
    a_si = s * ni + a["industry"]
    paint(tt, seg * ni + ind, a_si, s_count * ni)
    sel = np.flatnonzero(has_emp)
    b0 = np.searchsorted(e_edges, t["emp_lo"], side="right")
    b1 = np.searchsorted(e_edges, t["emp_hi"], side="right")
    o, w = _expand(span[sel])
    tt, seg = sel[o], s0[sel[o]] + w
    lists = [list(range(ni)) if t["industries"][i] is None else t["industries"][i] for i in sel]
    n_i = np.zeros(nt, dtype=np.int64)
    n_i[sel] = [len(x) for x in lists]
    flat = np.fromiter((v for x in lists for v in x), np.int64, int(n_i.sum()))
    ptr = np.zeros(nt, dtype=np.int64)
    ptr[sel] = np.cumsum(n_i[sel]) - n_i[sel]
    o2, w2 = _expand(n_i[tt])
    tt, seg, ind = tt[o2], seg[o2], flat[ptr[tt[o2]] + w2]
    o3, w3 = _expand((b1 - b0)[tt])
    tt, seg, ind, eb = tt[o3], seg[o3], ind[o3], b0[tt[o3]] + w3
    a_sie = a_si * b_count + np.searchsorted(e_edges, a["employees"], side="right")
    paint(tt, (seg * ni + ind) * b_count + eb, a_sie, s_count * ni * b_count)
    return np.where(bestp >= 0, terr_of_prio[np.maximum(bestp, 0)], -1), count


def w4_crmkit_input(d: dict[str, Any]) -> dict[str, Any]:
    """Territory records (half-open postal and employee ranges; crmkit's lowest priority
    wins, so priority is reversed) and the accounts as text and number columns."""
    t, a = d["territories"], d["accounts"]
    nt = len(t["priority"])
    width = len(str(nt - 1))
    terrs = []
    for i in range(nt):
        crit = (F.country == str(COUNTRY[t["country"][i]])) & F.postal_code.range(
            f"{int(t['postal_lo'][i]):06d}", f"{int(t['postal_hi'][i]):06d}"
        )
        if t["industries"][i] is not None:
            crit = crit & F.industry.isin([str(INDUSTRY[x]) for x in t["industries"][i]])
        if t["emp_lo"][i] >= 0:
            crit = crit & F.employees.range(int(t["emp_lo"][i]), int(t["emp_hi"][i]))
        priority = int(nt - 1 - t["priority"][i])  # crmkit: the lowest priority wins
        terrs.append(Territory(id=f"{i:0{width}d}", name=f"T{i}", priority=priority,
                               criteria=crit.to_dict()))  # fmt: skip
    n = len(a["country"])
    cols = {"id": np.arange(n).astype(f"U{len(str(n))}"), "country": COUNTRY[a["country"]],
            "postal_code": np.char.zfill(a["postal"].astype("U6"), 6),
            "industry": INDUSTRY[a["industry"]], "employees": a["employees"]}  # fmt: skip
    return {"territories": terrs, "cols": cols, "n": n}


def w4_answer(p: dict[str, Any], result: Any) -> tuple[Array, Array]:
    """crmkit's assignment as the floor's (best, count) integers (``match_count``: no
    (account, territory) pair is listed)."""
    return result.primary_index, result.match_count


def w4_answer_pairs(p: dict[str, Any], result: Any) -> tuple[Array, Array]:
    """The same answer counted from the listed pairs (as the harness plugin does)."""
    return result.primary_index, np.bincount(result.pair_account, minlength=p["n"])
