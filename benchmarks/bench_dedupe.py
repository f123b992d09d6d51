"""Duplicate detection: a full job over generated contacts with known duplicates, the
incremental check of one record, and a brute-force rapidfuzz comparison on a sample.

python benchmarks/bench_dedupe.py [--quick] [-n N] [--million] [--splink N | --no-splink]

1. ``find_duplicate_pairs`` over n contacts (about 5% duplicates made the ways real ones
   arise: nicknames, typos, swapped names, phone formats, changed emails) with the
   default contact rules: time, candidate pairs, precision and recall of the clusters
   against the generated truth. Target (issue 16): 1e6 contacts in under 60 s,
   precision >= 0.95, recall >= 0.90.
2. ``DuplicateIndex.find`` for one record against the n indexed contacts (median of many
   probes). Target: under 1 ms at 1e6.
3. Beside a brute-force peer on a sample: every pair of the sample's full names scored by
   rapidfuzz ``cdist`` (then the same phone/email/account checks as the rules), which is
   what a user would write without blocking; its time extrapolated to n by pair count.

4. Beside splink (DuckDB backend, ``pip install 'crmkit[bench]'``) on ``--splink``
   contacts made the same way (default 100,000): a Fellegi-Sunter model over the
   same fields (first and last name with swaps, email, phone key, account), blocked on
   email, phone and account like crmkit's rules, trained by random-sampling u and EM,
   pairs and clusters at match probability 0.99; time (training included), precision and
   recall. Skipped with a note when splink is not installed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from rapidfuzz import fuzz, process

from _common import Table, bench_args, timed
from crmkit.dedupe import (
    DuplicateIndex,
    find_duplicate_pairs,
    generate_duplicates,
    normalise_email,
    normalise_person_name,
    pair_quality,
    phone_key,
    strip_accents,
)
from crmkit.records import Contact


def brute_force(cols: dict[str, np.ndarray]) -> list[tuple[str, ...]]:
    """Every pair of a sample, vectorised: fuzzy names by ``cdist`` into a matrix, the
    rules' exact checks as broadcast comparisons, components by networkx."""
    import networkx as nx

    names = [
        normalise_person_name(f, last) or ""
        for f, last in zip(cols["first_name"].tolist(), cols["last_name"].tolist(), strict=True)
    ]
    scores = process.cdist(names, names, scorer=fuzz.ratio, dtype=np.uint8, workers=1)

    def same(values: list[str]) -> np.ndarray:
        _, codes = np.unique(np.array(values, dtype=str), return_inverse=True)
        known = np.array([v != "" for v in values])
        return (codes[:, None] == codes[None, :]) & known[:, None] & known[None, :]

    emails = same([normalise_email(e) or "" for e in cols["email"].tolist()])
    phones = same([phone_key(p) or "" for p in cols["phone"].tolist()])
    accounts = same(cols["account_id"].tolist())
    matched = emails | ((scores >= 85) & phones) | ((scores >= 90) & accounts)
    left, right = np.nonzero(np.triu(matched, k=1))
    ids = cols["id"]
    graph = nx.Graph()
    graph.add_edges_from(zip(ids[left].tolist(), ids[right].tolist(), strict=True))
    return [tuple(sorted(c)) for c in nx.connected_components(graph)]


def splink_clusters(
    cols: dict[str, np.ndarray], threshold: float = 0.99
) -> tuple[list[tuple[str, ...]], int]:
    """splink's clusters of the contacts (DuckDB, in memory) and its predicted pairs."""
    import logging

    import pandas as pd
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    logging.getLogger("splink").setLevel(logging.WARNING)

    def text(values: list[str]) -> list[str | None]:
        return [strip_accents(v).strip().lower() or None for v in values]

    frame = pd.DataFrame(
        {
            "unique_id": cols["id"].tolist(),
            "first_name": text(cols["first_name"].tolist()),
            "last_name": text(cols["last_name"].tolist()),
            "email": [normalise_email(e) for e in cols["email"].tolist()],
            "phone": [phone_key(p) for p in cols["phone"].tolist()],
            "account_id": [a or None for a in cols["account_id"].tolist()],
        }
    )
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ForenameSurnameComparison("first_name", "last_name"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("account_id"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("account_id"),
        ],
    )
    linker = Linker(DuckDBAPI().register(frame), settings, log_level="WARNING")
    training = linker.training
    training.estimate_probability_two_random_records_match([block_on("email")], recall=0.8)
    training.estimate_u_using_random_sampling(max_pairs=1e6)
    training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    predicted = linker.inference.predict(threshold_match_probability=threshold)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(predicted, threshold)
    groups = clustered.as_pandas_dataframe().groupby("cluster_id")["unique_id"].apply(list)
    pairs = len(predicted.as_pandas_dataframe())
    return [tuple(sorted(g)) for g in groups if len(g) > 1], pairs


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--million", action="store_true", help="n = 1,000,000 (the issue's target size)"
    )
    parser.add_argument("--splink", type=int, default=100_000, help="rows compared with splink")
    parser.add_argument("--no-splink", action="store_true", help="skip the splink peer")


def main() -> None:
    args = bench_args(
        __doc__,
        default_n=100_000,
        quick_n=20_000,
        configure=options,
    )
    if args.million:
        args.n = 1_000_000
        print("--million: n = 1,000,000")
    gen_seconds, data = timed(lambda: generate_duplicates(args.n, seed=7))
    print(f"generated {len(data):,} contacts, {len(data.true_clusters()):,} true clusters "
          f"in {gen_seconds:.1f} s (not timed below)")  # fmt: skip

    table = Table(f"duplicate job over {args.n:,} contacts (default contact rules)")
    job_seconds, report = timed(lambda: find_duplicate_pairs(data.columns, record_type="Contact"))
    precision, recall = pair_quality(data.columns["id"], data.truth, report.clusters)
    table.add(
        "crmkit find_duplicate_pairs",
        job_seconds,
        per=args.n,
        note=f"precision {precision:.3f}, recall {recall:.3f}, "
        f"{report.candidates:,} pairs compared",
    )

    sample = min(args.n, 3_000)
    pick = np.random.default_rng(1).choice(args.n, sample, replace=False)
    # the sample keeps whole true clusters where it can: add every row of a picked person
    people = set(data.truth[pick].tolist())
    rows = np.flatnonzero(np.isin(data.truth, list(people)))[: sample * 2]
    sub = {k: v[rows] for k, v in data.columns.items()}
    brute_seconds, brute_clusters = timed(lambda: brute_force(sub))
    pairs_sample = rows.size * (rows.size - 1) / 2
    pairs_full = args.n * (args.n - 1) / 2
    bp, br = pair_quality(sub["id"], data.truth[rows], brute_clusters)
    crm_seconds, sub_report = timed(lambda: find_duplicate_pairs(sub, record_type="Contact"))
    cp, cr = pair_quality(sub["id"], data.truth[rows], sub_report.clusters)
    table.add(
        f"brute force rapidfuzz cdist, {rows.size:,} rows",
        brute_seconds,
        note=f"precision {bp:.3f}, recall {br:.3f}; extrapolated to n: "
        f"{brute_seconds * pairs_full / pairs_sample:,.0f} s",
    )
    table.add(
        f"crmkit on the same {rows.size:,} rows",
        crm_seconds,
        base=brute_seconds,
        note=f"precision {cp:.3f}, recall {cr:.3f}",
    )
    table.print()
    if not args.no_splink:
        compare_splink(min(args.n, args.splink))

    single = Table(f"one record against {args.n:,} indexed contacts")
    build_seconds, index = timed(
        lambda: DuplicateIndex(record_type="Contact").add_many(data.columns)
    )
    single.add("DuplicateIndex.add_many (build)", build_seconds, per=args.n)
    probes = data.records() if args.n <= 20_000 else None
    rng = np.random.default_rng(2)
    times = []
    found = 0
    for k in rng.choice(args.n, 300, replace=False).tolist():
        if probes is not None:
            record = probes[k]
        else:
            cols = data.columns
            record = Contact(
                id=f"probe-{k}",
                **{
                    f: (str(cols[f][k]) or None)
                    for f in ("first_name", "last_name", "email", "phone", "account_id")
                },
            )
        start = time.perf_counter()
        matches = index.find(record)
        times.append(time.perf_counter() - start)
        found += bool(matches)
    single.add(
        "DuplicateIndex.find (median of 300)",
        statistics.median(times),
        note=f"p90 {sorted(times)[269] * 1e3:.2f} ms; {found} probes had matches "
        f"({'indexed rows' if probes is not None else 'copies of indexed rows, new ids'})",
    )
    single.print()


def compare_splink(size: int) -> None:
    """crmkit and splink on ``size`` generated contacts (their own set, so that it has
    the usual 5% duplicates)."""
    try:
        import splink  # noqa: F401
    except ImportError:
        print("splink is not installed (pip install 'crmkit[bench]'): not compared")
        return
    data = generate_duplicates(size, seed=8)
    sub, truth = data.columns, data.truth
    table = Table(f"beside splink (DuckDB) on {size:,} other generated contacts")
    crm_seconds, report = timed(lambda: find_duplicate_pairs(sub, record_type="Contact"))
    cp, cr = pair_quality(sub["id"], truth, report.clusters)
    table.add(
        "crmkit find_duplicate_pairs",
        crm_seconds,
        per=size,
        note=f"precision {cp:.3f}, recall {cr:.3f}, {len(report.pairs):,} pairs",
    )
    splink_seconds, (clusters, pairs) = timed(lambda: splink_clusters(sub))
    sp, sr = pair_quality(sub["id"], truth, clusters)
    table.add(
        "splink, train + predict + cluster at 0.99",
        splink_seconds,
        base=crm_seconds,
        note=f"precision {sp:.3f}, recall {sr:.3f}, {pairs:,} pairs",
    )
    table.print()


if __name__ == "__main__":
    main()
