"""Fit scoring, priority, ranks, tiers and segments: hand examples and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crmkit import F
from crmkit.codec import make_converter
from crmkit.errors import CriteriaError, NotFound, ValidationError
from crmkit.records import Account
from crmkit.scoring import (
    FitModel,
    PointsRule,
    RuleGroup,
    ScoreResult,
    fit_engagement_matrix,
    fit_scores,
    model_from_json,
    model_to_json,
    normalise,
    percentiles,
    priority_scores,
    ranks,
    segment_by_criteria,
    segment_by_quantiles,
    tiers,
)

MODEL = FitModel(
    rules=(
        PointsRule(name="big", criteria=F.employees >= 1000, points=30, group="size"),
        PointsRule(name="mid", criteria=F.employees >= 200, points=20, group="size"),
        PointsRule(name="north america", criteria=F.country.isin(["US", "CA"]), points=25),
        PointsRule(name="gold", criteria=F.custom["tier"] == "gold", points=10, group="extra"),
        PointsRule(name="no industry", criteria=F.industry.isnull(), points=-15, group="extra"),
    ),
    groups=(RuleGroup(name="size", cap=40), RuleGroup(name="extra", floor=-5)),
)


def test_fit_hand_example_from_store():
    from crmkit.store import MemoryStore

    store = MemoryStore()
    store.accounts.add_many(
        [
            Account(
                id="a",
                name="A",
                employees=5000,
                country="US",
                industry="Retail",
                custom={"tier": "gold"},
            ),
            Account(id="b", name="B", employees=300, country="FR"),
            Account(id="c", name="C", employees=10, country="CA", industry="Energy"),
        ]
    )
    r = fit_scores(store, MODEL)
    # a: size 30+20 capped at 40, north america 25, extra: gold 10 -> 75
    # b: size 20, extra: -15 floored at -5 -> 15
    # c: north america 25 -> 25
    assert r.ids.tolist() == ["a", "b", "c"]
    assert r.values.tolist() == pytest.approx([75.0, 15.0, 25.0])
    a = dict(r.explain("a"))
    assert a["big"] == pytest.approx(30 * 40 / 50)
    assert a["mid"] == pytest.approx(20 * 40 / 50)
    assert dict(r.explain("b"))["no industry"] == pytest.approx(-5.0)
    assert r.factors("a", 1) == ["north america +25"]


accounts = st.lists(
    st.tuples(
        st.none() | st.integers(0, 10_000),
        st.sampled_from(["US", "CA", "FR", ""]),
        st.sampled_from(["gold", "silver", None]),
        st.sampled_from(["Retail", ""]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=50, deadline=None)
@given(rows=accounts, cap=st.floats(0, 60), floor=st.floats(-30, 0))
def test_fit_contributions_add_up(rows, cap, floor):
    model = FitModel(
        rules=MODEL.rules,
        groups=(RuleGroup(name="size", cap=cap), RuleGroup(name="extra", floor=floor)),
    )
    cols = {
        "employees": np.array([np.nan if e is None else float(e) for e, _, _, _ in rows]),
        "country": np.array([c for _, c, _, _ in rows], dtype=str),
        "custom.tier": np.array([t or "" for _, _, t, _ in rows], dtype=str),
        "industry": np.array([i for _, _, _, i in rows], dtype=str),
    }
    r = fit_scores(cols, model)
    assert np.isfinite(r.values).all()
    np.testing.assert_allclose(r.contributions.sum(axis=1), r.values, atol=1e-9)
    # the one-record predicate agrees with the vectorised mask, rule by rule
    for i, (emp, country, tier, industry) in enumerate(rows):
        record = Account(
            id="x",
            name="X",
            employees=emp,
            country=country or None,
            industry=industry or None,
            custom={"tier": tier} if tier else {},
        )
        size = sum(rule.points for rule in model.rules[:2] if model.bound(rule).matches(record))
        extra = sum(rule.points for rule in model.rules[3:] if model.bound(rule).matches(record))
        na = 25.0 if model.bound(model.rules[2]).matches(record) else 0.0
        assert r.values[i] == pytest.approx(min(size, cap) + na + max(extra, floor), abs=1e-9)


def test_fit_model_checks_and_round_trips():
    with pytest.raises(CriteriaError, match="employes"):
        FitModel(rules=(PointsRule(name="x", criteria=F.employes > 1, points=1),))
    with pytest.raises(ValidationError, match="group"):
        FitModel(rules=(PointsRule(name="x", criteria=F.employees > 1, points=1, group="g"),))
    with pytest.raises(ValidationError, match="finite"):
        PointsRule(name="x", criteria=F.employees > 1, points=float("nan"))
    assert model_from_json(model_to_json(MODEL)) == MODEL
    converter = make_converter()
    assert converter.structure(converter.unstructure(MODEL), FitModel) == MODEL


def test_normalise_by_hand():
    assert normalise([1.0, 3.0, np.nan]).tolist() == [0.0, 1.0, 0.0]
    assert normalise([2.0, 2.0]).tolist() == [0.5, 0.5]
    assert normalise([1.0, 2.0, 2.0, 3.0], "rank").tolist() == [0.0, 0.5, 0.5, 1.0]
    z = normalise([0.0, 10.0], "zscore")  # z = -1, +1 -> (z + 3) / 6
    assert z.tolist() == pytest.approx([2 / 6, 4 / 6])
    with pytest.raises(ValidationError):
        normalise([1.0], "log")


@settings(max_examples=60, deadline=None)
@given(
    data=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 25), st.just(3)),
        elements=st.floats(-1e6, 1e6) | st.just(np.nan),
    ),
    weights=st.tuples(*[st.floats(0, 10)] * 3).filter(lambda w: sum(w) > 0),
    method=st.sampled_from(["minmax", "rank", "zscore"]),
)
def test_priority_is_0_100_and_adds_up(data, weights, method):
    features = {"f0": data[:, 0], "f1": data[:, 1], "f2": data[:, 2]}
    ids = np.arange(len(data))
    r = priority_scores(
        features,
        dict(zip(features, weights, strict=True)),
        ids=ids,
        normalisation=method,
        lower_is_better=["f2"],
    )
    assert np.isfinite(r.values).all()
    assert ((r.values >= -1e-9) & (r.values <= 100 + 1e-9)).all()
    np.testing.assert_allclose(r.contributions.sum(axis=1), r.values, atol=1e-9)
    again = priority_scores(
        features,
        dict(zip(features, weights, strict=True)),
        ids=ids,
        normalisation=method,
        lower_is_better=["f2"],
    )
    np.testing.assert_array_equal(again.values, r.values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5).map(float), min_size=1, max_size=30))
def test_ranks_and_percentiles_brute_force(values):
    r = ranks(values)
    p = percentiles(values)
    for i, v in enumerate(values):
        assert r[i] == 1 + sum(1 for w in values if w > v)
        assert p[i] == pytest.approx(100 * sum(1 for w in values if w <= v) / len(values))


def test_tiers_and_matrix():
    assert tiers([0.0, 50.0, 74.9, 75.0], thresholds=[50, 75]).tolist() == ["C", "B", "B", "A"]
    with pytest.raises(ValidationError):
        tiers([1.0], thresholds=[2, 1])
    with pytest.raises(ValidationError):
        tiers([1.0], thresholds=[1], quantiles=[0.5])
    m = fit_engagement_matrix(
        [80.0, 10.0, 80.0],
        [0.0, 9.0, 9.0],
        ids=["a", "b", "c"],
        fit_cuts=[30, 60],
        engagement_cuts=[3, 6],
    )
    assert m.labels.tolist() == ["A3", "C1", "A1"]
    assert m.sizes()["A1"] == 1
    assert sum(m.sizes().values()) == 3
    assert m.membership().sum(axis=0)[m.names.index("C1")] == 1


def test_segments_from_criteria_and_quantiles(crm):
    s = segment_by_criteria(
        crm, {"north america": F.country.isin(["US", "CA"]), "big": F.employees >= 1000}
    )
    cols = crm.accounts.columns(["id", "country", "employees"])
    na = np.isin(cols["country"], ["US", "CA"])
    big = cols["employees"] >= 1000
    assert s.sizes() == {
        "north america": int(na.sum()),
        "big": int((~na & big).sum()),
        "other": int((~na & ~big).sum()),
    }
    assert s.members("big").tolist() == cols["id"][~na & big].tolist()
    with pytest.raises(NotFound):
        s.mask("nope")
    q = segment_by_quantiles(np.arange(10.0), [0.5, 0.8], labels=["top", "middle", "rest"])
    assert q.sizes() == {"top": 2, "middle": 3, "rest": 5}
    assert q.to_pandas().loc[9] == "top"


# --- priority_scores lines ScoreResults up by id (issue 13, item 4) ----------------------


def test_priority_aligns_score_results_by_id():
    engagement = ScoreResult(ids=["b", "a", "c"], values=[10.0, 0.0, 5.0], name="engagement")
    fit = ScoreResult(ids=["c", "b", "a"], values=[40.0, 0.0, 20.0], name="fit")
    idle = np.array([0.0, 2.0, 4.0])  # a plain array follows ids= by position
    r = priority_scores(
        {"engagement": engagement, "fit": fit, "idle": idle},
        {"engagement": 2, "fit": 1, "idle": 1},
        ids=["a", "b", "c"],
        lower_is_better=["idle"],
    )
    # a: engagement 0 -> 0, fit 20 -> 0.5, idle 0 -> 1;  b: 1, 0, 0.5;  c: 0.5, 1, 0
    # weights 2, 1, 1 of 4 -> 100 * (2 * e + f + i) / 4
    assert r.ids.tolist() == ["a", "b", "c"]
    assert r.values.tolist() == pytest.approx([37.5, 62.5, 50.0])
    assert r["a"] == pytest.approx(100 * (2 * 0 + 0.5 + 1) / 4)


def test_priority_scores_a_subset_of_a_score_result():
    engagement = ScoreResult(ids=["x", "a", "b"], values=[99.0, 1.0, 3.0])
    r = priority_scores({"e": engagement}, {"e": 1}, ids=["b", "a"])
    assert r.values.tolist() == [100.0, 0.0]  # min-max over a and b only


def test_priority_refuses_unknown_and_duplicate_ids():
    engagement = ScoreResult(ids=["a", "b"], values=[1.0, 2.0])
    with pytest.raises(ValidationError, match="no score for id 'zz'") as err:
        priority_scores({"e": engagement}, {"e": 1}, ids=["a", "zz"])
    assert err.value.record_id == "zz"
    with pytest.raises(ValidationError, match="no score for id '0'"):
        priority_scores({"e": engagement}, {"e": 1}, ids=[0, 1])
    with pytest.raises(ValidationError, match="twice"):
        priority_scores({"e": engagement}, {"e": 1}, ids=["a", "a"])
    doubled = ScoreResult(ids=["a", "a", "b"], values=[1.0, 5.0, 2.0])
    with pytest.raises(ValidationError, match="twice"):
        priority_scores({"e": doubled}, {"e": 1}, ids=["a", "b"])
    with pytest.raises(ValidationError, match="3 values for 2 ids"):
        priority_scores({"e": [1.0, 2.0, 3.0]}, {"e": 1}, ids=["a", "b"])


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.just(3)),
        elements=st.floats(-1e3, 1e3) | st.just(np.nan),
    ),
    seeds=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    method=st.sampled_from(["minmax", "rank", "zscore"]),
)
def test_priority_per_id_ignores_the_order_of_inputs(values, seeds, method):
    n = len(values)
    ids = np.array([f"acc-{i}" for i in range(n)])
    weights = {"engagement": 2.0, "fit": 1.0, "idle": 1.0}

    def run(order_ids, order_e, order_f):
        features = {
            "engagement": ScoreResult(ids=ids[order_e], values=values[order_e, 0]),
            "fit": ScoreResult(ids=ids[order_f], values=values[order_f, 1]),
            "idle": values[order_ids, 2],  # an array follows ids= by position
        }
        r = priority_scores(
            features, weights, ids=ids[order_ids], normalisation=method, lower_is_better=["idle"]
        )
        return dict(zip(r.ids.tolist(), r.values.tolist(), strict=True))

    plain = run(np.arange(n), np.arange(n), np.arange(n))
    rng = np.random.default_rng(seeds)
    shuffled = run(rng.permutation(n), rng.permutation(n), rng.permutation(n))
    assert shuffled.keys() == plain.keys()
    for record_id, score in plain.items():
        assert shuffled[record_id] == pytest.approx(score, abs=1e-9)


def test_fit_engagement_matrix_aligns_by_id():
    fit = ScoreResult(ids=["a", "b", "c"], values=[80.0, 10.0, 80.0])
    engaged = ScoreResult(ids=["c", "a", "b"], values=[9.0, 0.0, 9.0])
    m = fit_engagement_matrix(fit, engaged, fit_cuts=[30, 60], engagement_cuts=[3, 6])
    assert dict(zip(m.ids.tolist(), m.labels.tolist(), strict=True)) == {
        "a": "A3",
        "b": "C1",
        "c": "A1",
    }
