"""Naive Bayes lead scoring against Odoo's counting, worked by hand and by a plain reference."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import ValidationError
from crmkit.scoring import NaiveBayesLeadScorer, backtest, model_from_json, model_to_json

D = Fraction(1, 10)  # every frequency row starts at 0.1 (Odoo's zero-frequency guard)


def p_won(prior_won, prior_lost, factors):
    """Odoo: P = Pw / (Pw + Pl), Pw = team_won / team_total * prod(won / won_total) ..."""
    pw, pl = Fraction(prior_won), Fraction(prior_lost)
    for won, won_total, lost, lost_total in factors:
        pw *= Fraction(won) / Fraction(won_total)
        pl *= Fraction(lost) / Fraction(lost_total)
    return float(pw / (pw + pl))


# --- item 1: stage semantics ------------------------------------------------------------


def test_issue_repro_stage_reached_counts_like_odoo():
    history = {"stage": np.array(["S0", "S0", "S0", "S0", "S2"])}
    outcomes = ["won", "won", "lost", "lost", "lost"]
    nb = NaiveBayesLeadScorer(["stage"], stages=["S0", "S1", "S2"]).fit(history, outcomes)
    # Counting, pipeline S0 < S1 < S2:
    #   2 won leads count in every stage:                 won  S0 = S1 = S2 = 2
    #   lost at S0, S0 count in S0; the lost at S2 in S0, S1, S2:
    #                                                     lost S0 = 3, S1 = 1, S2 = 1
    #   team totals (the first stage's row): won 2 + 0.1 = 2.1, lost 3 + 0.1 = 3.1
    # A lead in S1: Pw = 2.1/5.2 * (2 + 0.1)/2.1, Pl = 3.1/5.2 * (1 + 0.1)/3.1
    #   P = 2.1 / (2.1 + 1.1) = 2.1 / 3.2
    assert nb.won_["stage"] == [[2.0, 2.0, 2.0]]
    assert nb.lost_["stage"] == [[3.0, 1.0, 1.0]]
    got = nb.predict_proba({"stage": np.array(["S1"])})[0, 1]
    assert got == pytest.approx(2.1 / 3.2, rel=1e-12)
    assert got == pytest.approx(0.65625, rel=1e-12)
    # S0: Pw = 2.1/2.1, Pl = 3.1/3.1 -> the prior only; S2 like S1.
    s0, s2 = nb.predict_proba({"stage": np.array(["S0", "S2"])})[:, 1]
    assert s0 == pytest.approx(2.1 / 5.2, rel=1e-12)
    assert s2 == pytest.approx(2.1 / 3.2, rel=1e-12)


def test_stage_as_a_plain_category_only_when_asked():
    history = {"stage": np.array(["S0", "S0", "S0", "S0", "S2"])}
    outcomes = ["won", "won", "lost", "lost", "lost"]
    plain = NaiveBayesLeadScorer(["stage"], stage=None).fit(history, outcomes)
    # S1 never occurs, so a plain category skips it: the prior 2.1 / (2.1 + 3.1) remains.
    got = plain.predict_proba({"stage": np.array(["S1"])})[0, 1]
    assert got == pytest.approx(2.1 / 5.2, rel=1e-12)


def test_stage_factor_divides_by_team_totals_other_features_by_their_own():
    # team, stage reached, source, outcome
    rows = [
        ("T1", "new", "web", 1),
        ("T1", "new", "", 1),  # no source: counts in the team's totals, not in source's
        ("T1", "demo", "web", 0),
        ("T1", "new", "ads", 0),
        ("T1", "offer", "ads", 0),
    ]
    X = {
        "team": np.array([r[0] for r in rows]),
        "stage": np.array([r[1] for r in rows]),
        "source": np.array([r[2] for r in rows]),
    }
    nb = NaiveBayesLeadScorer(["stage", "source"], team="team", stages=["new", "demo", "offer"])
    nb.fit(X, [r[3] for r in rows])
    # T1: won 2, lost 3 -> team_won 2.1, team_lost 3.1
    # stage rows: won 2 in new, demo, offer; lost new 3 (all), demo 2 (demo, offer), offer 1
    # source rows: web won 1 lost 1, ads won 0 lost 2 -> won_total 1.1 + 0.1 = 1.2,
    #              lost_total 1.1 + 2.1 = 3.2
    lead = {"team": np.array(["T1"]), "stage": np.array(["demo"]), "source": np.array(["web"])}
    expected = p_won(
        2 + D,
        3 + D,
        [
            (2 + D, 2 + D, 2 + D, 3 + D),  # stage demo, over the team's totals
            (1 + D, 1 + D + D, 1 + D, 1 + D + 2 + D),  # source web, over source's totals
        ],
    )
    assert nb.predict_proba(lead)[0, 1] == pytest.approx(expected, rel=1e-12)


def test_default_stage_order_is_the_default_pipeline():
    X = {"stage": np.array(["qualification", "negotiation", "prospecting", "closed_won"])}
    nb = NaiveBayesLeadScorer(["stage"]).fit(X, [0, 0, 0, 1])  # a won lead's stage is not read
    assert nb.categories_["stage"] == ["prospecting", "qualification", "proposal", "negotiation"]
    # won 1 everywhere; lost: prospecting 3, qualification 2, proposal 1, negotiation 1
    assert nb.lost_["stage"] == [[3.0, 2.0, 1.0, 1.0]]
    got = nb.predict_proba({"stage": np.array(["proposal"])})[0, 1]
    assert got == pytest.approx(p_won(1 + D, 3 + D, [(1 + D, 1 + D, 1 + D, 3 + D)]), rel=1e-12)


def test_stage_refusals_name_the_value_and_row():
    X = {"id": np.array(["l1", "l2", "l3"]), "stage": np.array(["S0", "S9", "S1"])}
    with pytest.raises(ValidationError, match=r"'S9'.*stage it reached") as err:
        NaiveBayesLeadScorer(["stage"], stages=["S0", "S1"]).fit(X, [1, 0, 0])
    assert err.value.record_id == "l2"
    blank = {"stage": np.array(["S0", "", "S1"])}
    with pytest.raises(ValidationError, match="stage it reached"):
        NaiveBayesLeadScorer(["stage"], stages=["S0", "S1"]).fit(blank, [1, 0, 0])
    with pytest.raises(ValidationError, match="each pipeline stage once"):
        NaiveBayesLeadScorer(["stage"], stages=["S0", "S1", "S0"]).fit(X, [1, 0, 0])
    with pytest.raises(ValidationError, match="prospecting"):
        NaiveBayesLeadScorer(["stage"]).fit(X, [1, 0, 0])  # default pipeline names


# --- item 2: the all-teams table ---------------------------------------------------------

# team, source, outcome
HISTORY = [
    ("T1", "web", 1),
    ("T1", "web", 0),
    ("T1", "ads", 0),
    ("T2", "web", 1),
    ("T2", "ads", 1),
    ("T2", "ads", 0),
    ("T3", "web", 0),  # T3 has no wins
    ("", "ads", 1),  # no team: a group of its own, like Odoo's team 0
    ("", "web", 0),
]


def nb_fit():
    X = {
        "team": np.array([t for t, _, _ in HISTORY]),
        "source": np.array([s for _, s, _ in HISTORY]),
    }
    return NaiveBayesLeadScorer(["source"], team="team").fit(X, [y for _, _, y in HISTORY])


def test_naive_bayes_hand_computed_per_team():
    nb = nb_fit()
    X = {
        "team": np.array(["T1", "T1", "", "T2"]),
        "source": np.array(["web", "ads", "web", ""]),
    }
    got = nb.predict_proba(X)[:, 1]
    # T1: won 1, lost 2. web: won 1, lost 1; ads: won 0, lost 1 (in the table: it was seen)
    t1_web = p_won(1 + D, 2 + D, [(1 + D, 1 + D + D, 1 + D, 1 + D + 1 + D)])
    t1_ads = p_won(1 + D, 2 + D, [(D, 1 + D + D, 1 + D, 1 + D + 1 + D)])
    # no team: won 1 (ads), lost 1 (web)
    none_web = p_won(1 + D, 1 + D, [(D, D + 1 + D, 1 + D, 1 + D + D)])
    # T2 with a missing source: only the prior (won 2, lost 1)
    t2_blank = p_won(2 + D, 1 + D, [])
    np.testing.assert_allclose(got, [t1_web, t1_ads, none_web, t2_blank], rtol=1e-12)


def test_all_teams_table_sums_each_teams_smoothed_rows():
    nb = nb_fit()
    # Each team's smoothed rows (won, lost), each row +0.1 once per team that has it:
    #          totals        web          ads
    #   T1     1.1  2.1      1.1  1.1     0.1  1.1
    #   T2     2.1  1.1      1.1  0.1     1.1  1.1
    #   T3     0.1  1.1      0.1  1.1     -    -     (T3 never saw ads: no row)
    #   none   1.1  1.1      0.1  1.1     1.1  0.1
    #   sum    4.4  5.4      2.4  3.4     2.3  2.3
    # (recounting the raw leads and smoothing once would give 4.1 / 5.1, web 2.1 / 3.1.)
    web = p_won(
        Fraction("4.4"), Fraction("5.4"), [("2.4", Fraction("4.7"), "3.4", Fraction("5.7"))]
    )
    ads = p_won(
        Fraction("4.4"), Fraction("5.4"), [("2.3", Fraction("4.7"), "2.3", Fraction("5.7"))]
    )
    got = nb.predict_proba({"team": np.array(["T9", "T9"]), "source": np.array(["web", "ads"])})
    np.testing.assert_allclose(got[:, 1], [web, ads], rtol=1e-12)
    recounted = p_won(Fraction("4.1"), Fraction("5.1"), [("2.1", "4.2", "3.1", "5.2")])
    assert abs(got[0, 1] - recounted) > 1e-3  # the difference the issue reported


# --- item 3: teams that cannot be scored -------------------------------------------------


def test_team_without_wins_is_unscoreable_with_a_reason():
    nb = nb_fit()
    X = {
        "id": np.array(["a", "b", "c"]),
        "team": np.array(["T3", "T1", "T3"]),
        "source": np.array(["web", "web", "ads"]),
    }
    s = nb.score(X)
    assert s.scoreable.tolist() == [False, True, False]
    assert s.reasons[0] == "team 'T3' has no won leads in the training data"
    assert s.reasons[1] == ""
    assert np.isnan(s.values[[0, 2]]).all()
    assert np.isnan(s.raw[[0, 2]]).all()
    assert s.explain("a") == []
    assert s.factors("c") == []
    p = nb.predict_proba(X)
    assert np.isnan(p[[0, 2]]).all()
    assert p[1, 1] == s.values[1]
    assert s.order().tolist()[-2:] == [0, 2]  # unscoreable rows rank last


def test_team_without_losses_is_unscoreable_too():
    X = {"team": np.array(["T1", "T1", "T2"]), "source": np.array(["web", "ads", "web"])}
    nb = NaiveBayesLeadScorer(["source"], team="team").fit(X, [1, 0, 1])
    s = nb.score({"team": np.array(["T2", "T1"]), "source": np.array(["web", "web"])})
    assert s.scoreable.tolist() == [False, True]
    assert s.reasons[0] == "team 'T2' has no lost leads in the training data"
    X = {"team": np.array(["T1", "T1", ""]), "source": np.array(["web", "ads", "web"])}
    nb = NaiveBayesLeadScorer(["source"], team="team").fit(X, [1, 0, 1])
    s = nb.score({"team": np.array([""]), "source": np.array(["web"])})
    assert s.reason(0) == "leads with no team have no lost leads in the training data"


def test_explanations_keep_the_team_prior_out_of_the_factors():
    nb = nb_fit()
    s = nb.score({"id": np.array(["x"]), "team": np.array(["T1"]), "source": np.array(["web"])})
    assert s.feature_names == ("source",)
    # baseline: T1's prior log(1.1 / 2.1); the lead's only factor: web log((1.1/1.2)/(1.1/2.2))
    assert s.baseline.tolist() == pytest.approx([np.log(1.1 / 2.1)], rel=1e-12)
    assert s.explain("x") == [("source", pytest.approx(np.log((1.1 / 1.2) / (1.1 / 2.2))))]
    assert s.raw[0] == pytest.approx(s.baseline[0] + s.contributions[0].sum(), abs=1e-15)


def test_backtest_leaves_unscoreable_rows_out_of_the_metrics():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    teams = ["T1", "T1", "T2", "T1", "T1", "T2", "T2"]
    source = ["web", "ads", "web", "web", "ads", "web", "ads"]
    y = [1, 0, 0, 1, 0, 1, 0]  # T2 has no wins before the cutoff
    at = [t0 + timedelta(days=d) for d in range(7)]
    X = {"team": np.array(teams), "source": np.array(source)}
    model = NaiveBayesLeadScorer(["source"], team="team")
    r = backtest(model, X, y, at, t0 + timedelta(days=3))
    assert (r.n_test, r.n_unscoreable) == (4, 2)
    assert r.scores.scoreable.tolist() == [True, True, False, False]
    assert r.auc == 1.0  # the two T1 test leads: web won, ads lost


# --- properties ---------------------------------------------------------------------------

STAGES = ["S0", "S1", "S2"]


def odoo_reference(rows, features, stage):
    """Odoo's counting written the plain way: frequency rows per team, +0.1 per row."""
    rows_by_team: dict[str, dict[str, dict[str, list[float]]]] = {}
    totals: dict[str, list[int]] = {}
    for row in rows:
        won = row["y"] == 1
        team = rows_by_team.setdefault(row["team"], {f: {} for f in features})
        totals.setdefault(row["team"], [0, 0])[0 if won else 1] += 1
        for f in features:
            if f == stage:
                reached = STAGES if won else STAGES[: STAGES.index(row[f]) + 1]
                values = reached
            else:
                values = [row[f]] if row[f] else []
            for v in values:
                counts = team[f].setdefault(v, [0.0, 0.0])
                counts[0 if won else 1] += 1
    tables = {}
    for name, team in rows_by_team.items():
        smooth = {f: {v: [c[0] + 0.1, c[1] + 0.1] for v, c in team[f].items()} for f in team}
        won, lost = totals[name]
        tables[name] = (smooth, won + 0.1, lost + 0.1, won > 0 and lost > 0)
    every = {f: {} for f in features}
    for smooth, _, _, _ in tables.values():
        for f in features:
            for v, (w, lo) in smooth[f].items():
                acc = every[f].setdefault(v, [0.0, 0.0])
                acc[0] += w
                acc[1] += lo
    all_won = sum(t[1] for t in tables.values())
    all_lost = sum(t[2] for t in tables.values())
    tables[None] = (every, all_won, all_lost, True)
    return tables


def reference_probability(tables, lead, features, stage):
    table, team_won, team_lost, ok = tables.get(lead["team"], tables[None])
    if not ok:
        return None
    pw = team_won / (team_won + team_lost)
    pl = team_lost / (team_won + team_lost)
    for f in features:
        counts = table[f].get(lead[f])
        if counts is None:
            continue
        if f == stage:
            won_total, lost_total = team_won, team_lost
        else:
            won_total = sum(c[0] for c in table[f].values())
            lost_total = sum(c[1] for c in table[f].values())
        pw *= counts[0] / won_total
        pl *= counts[1] / lost_total
    return min(max(pw / (pw + pl), 0.0001), 0.9999)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "team": st.sampled_from(["T1", "T2", ""]),
                "stage": st.sampled_from(STAGES),
                "source": st.sampled_from(["a", "b", ""]),
                "y": st.integers(0, 1),
            }
        ),
        min_size=2,
        max_size=30,
    ).filter(lambda r: len({x["y"] for x in r}) == 2)
)
def test_matches_a_plain_odoo_reference(rows):
    features = ["stage", "source"]
    X = {k: np.array([r[k] for r in rows]) for k in ("team", "stage", "source")}
    nb = NaiveBayesLeadScorer(features, team="team", stages=STAGES).fit(X, [r["y"] for r in rows])
    grid = list(itertools.product(["T1", "T2", "", "T9"], [*STAGES, ""], ["a", "b", "c", ""]))
    leads = [dict(zip(("team", "stage", "source"), g, strict=True)) for g in grid]
    cols = {k: np.array([lead[k] for lead in leads]) for k in ("team", "stage", "source")}
    tables = odoo_reference(rows, features, "stage")
    expected = [reference_probability(tables, lead, features, "stage") for lead in leads]
    s = nb.score(cols)
    assert s.scoreable.tolist() == [e is not None for e in expected]
    want = np.array([np.nan if e is None else e for e in expected])
    np.testing.assert_allclose(s.values, want, rtol=1e-9)
    np.testing.assert_allclose(nb.predict_proba(cols)[:, 1], want, rtol=1e-9)
    ok = s.scoreable
    np.testing.assert_allclose(
        s.baseline[ok] + s.contributions[ok].sum(axis=1), s.raw[ok], atol=1e-12
    )
    order = np.random.default_rng(len(rows)).permutation(len(leads))
    shuffled = nb.predict_proba({k: v[order] for k, v in cols.items()})[:, 1]
    np.testing.assert_array_equal(shuffled, nb.predict_proba(cols)[order, 1])


def test_clamps():
    n = 1000
    X = {"a": np.array(["x"] * n + ["y"]), "b": np.array(["u"] * n + ["v"])}
    y = np.array([1] * n + [0])
    nb = NaiveBayesLeadScorer(["a", "b"]).fit(X, y)
    p = nb.predict_proba({"a": np.array(["x", "y"]), "b": np.array(["u", "v"])})[:, 1]
    assert p[0] == 0.9999
    assert 0.0001 <= p[1] < 0.5
    low = NaiveBayesLeadScorer(["a", "b"]).fit(X, 1 - y)
    assert low.predict_proba({"a": np.array(["x"]), "b": np.array(["u"])})[0, 1] == 0.0001


def test_round_trip_keeps_stage_order():
    X = {"stage": np.array(["S0", "S0", "S2"]), "team": np.array(["T1", "T1", "T2"])}
    nb = NaiveBayesLeadScorer(["stage"], team="team", stages=["S0", "S1", "S2"]).fit(X, [1, 0, 0])
    back = model_from_json(model_to_json(nb))
    assert back.get_params() == nb.get_params()
    assert back.stages == ("S0", "S1", "S2")
    lead = {"stage": np.array(["S1", "S1"]), "team": np.array(["T1", "T2"])}
    np.testing.assert_array_equal(back.predict_proba(lead), nb.predict_proba(lead))


# --- from a store: the stage a closed deal reached comes from its stage history ------------


def deals_in(store):
    from crmkit.pipeline import close_lost, close_won, move
    from crmkit.records import Opportunity

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.opportunities.add_many(
        [Opportunity(id=f"o{i}", name=f"Deal {i}", created_at=t0) for i in range(5)]
    )
    path = {"o0": ["qualification", "proposal"], "o1": ["qualification"], "o2": []}
    for deal, stages in path.items():
        for day, stage in enumerate(stages, start=1):
            move(store, deal, stage, at=t0 + timedelta(days=day))
        close_lost(store, deal, at=t0 + timedelta(days=9))
    move(store, "o3", "negotiation", at=t0 + timedelta(days=1))
    close_won(store, "o3", at=t0 + timedelta(days=2))
    close_won(store, "o4", at=t0 + timedelta(days=2))
    return store


def check_stage_history_training(store):
    from crmkit.records import Opportunity
    from crmkit.scoring import training_data

    cols, y, _ = training_data(deals_in(store), ["stage"], record_type=Opportunity)
    pairs = zip(cols["stage"].tolist(), y.tolist(), strict=True)
    got = dict(zip(cols["id"].tolist(), pairs, strict=True))
    assert got == {
        "o0": ("proposal", 0.0),  # lost from proposal, not "closed_lost"
        "o1": ("qualification", 0.0),
        "o2": ("prospecting", 0.0),
        "o3": ("negotiation", 1.0),
        "o4": ("prospecting", 1.0),
    }
    nb = NaiveBayesLeadScorer(["stage"]).fit(cols, y)  # the default pipeline's order
    # won 2 in every stage; lost: prospecting 3, qualification 2, proposal 1, negotiation 0
    assert nb.won_["stage"] == [[2.0, 2.0, 2.0, 2.0]]
    assert nb.lost_["stage"] == [[3.0, 2.0, 1.0, 0.0]]
    p = nb.predict_proba({"stage": np.array(["negotiation"])})[0, 1]
    assert p == pytest.approx(p_won(2 + D, 3 + D, [(2 + D, 2 + D, D, 3 + D)]), rel=1e-12)


def test_training_data_reads_the_stage_reached_memory():
    from crmkit.store import MemoryStore

    check_stage_history_training(MemoryStore())


def test_training_data_reads_the_stage_reached_durable(store_factory):
    store = store_factory()
    try:
        check_stage_history_training(store)
    finally:
        store.close()


def test_tables_of_another_layout_are_refused():
    nb = nb_fit()
    nb.won_["source"] = [[0.0, 0.0], *nb.won_["source"]]  # an all-teams row up front (0.1)
    nb.lost_["source"] = [[0.0, 0.0], *nb.lost_["source"]]
    with pytest.raises(ValidationError, match="one row per team"):
        nb.predict_proba({"team": np.array(["T1"]), "source": np.array(["web"])})
