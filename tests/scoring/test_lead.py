"""Predictive lead scoring: logistic regression, metrics, backtests (naive Bayes: its own file)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import NotFittedError, ValidationError
from crmkit.records import Lead
from crmkit.scoring import (
    FeatureEncoder,
    LogisticLeadScorer,
    LogisticRegression,
    NaiveBayesLeadScorer,
    backtest,
    brier_score,
    calibration_bins,
    lift_table,
    model_from_json,
    model_to_json,
    roc_auc,
    training_data,
)


def synthetic(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    source = rng.choice(["web", "ads", "referral"], n)
    size = rng.lognormal(4, 1, n)
    size[rng.random(n) < 0.05] = np.nan
    logit = (
        -0.5
        + 1.2 * (source == "referral")
        - 0.8 * (source == "ads")
        + 0.4 * np.log(np.nan_to_num(size, nan=50.0))
        - 1.5
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return {"source": source, "employees": size}, y


def test_logistic_matches_its_optimality_conditions():
    X, y = synthetic()
    matrix = FeatureEncoder(["source"], ["employees"]).fit_transform(X)
    m = LogisticRegression(C=0.5).fit(matrix, y)
    p = 1 / (1 + np.exp(-(matrix @ m.coef_ + m.intercept_)))
    grad_w = 0.5 * matrix.T @ (p - y) + m.coef_
    grad_b = 0.5 * np.sum(p - y)
    assert np.abs(grad_w).max() < 1e-6
    assert abs(grad_b) < 1e-6


def test_logistic_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = synthetic(800)
    matrix = FeatureEncoder(["source"], ["employees"]).fit_transform(X)
    ours = LogisticRegression(C=2.0).fit(matrix, y)
    theirs = sklearn.LogisticRegression(C=2.0, tol=1e-9, max_iter=2000).fit(matrix, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_[0], atol=1e-5)
    assert ours.intercept_ == pytest.approx(theirs.intercept_[0], abs=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.floats(0.01, 100))
def test_logistic_explanations_add_up(seed, c):
    X, y = synthetic(200, seed)
    scorer = LogisticLeadScorer(["source"], ["employees"], C=c).fit(X, y)
    s = scorer.score(X)
    np.testing.assert_allclose(s.baseline + s.contributions.sum(axis=1), s.raw, atol=1e-9)
    np.testing.assert_allclose(s.raw, scorer.decision_function(X), atol=1e-9)
    np.testing.assert_allclose(s.values, scorer.predict_proba(X)[:, 1], atol=1e-12)
    assert np.isfinite(s.values).all()
    again = LogisticLeadScorer(["source"], ["employees"], C=c).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), scorer.predict_proba(X))


def test_not_fitted_and_bad_labels():
    for model in (LogisticLeadScorer(["a"]), NaiveBayesLeadScorer(["a"]), LogisticRegression()):
        with pytest.raises(NotFittedError, match="fit"):
            model.predict_proba(
                {"a": np.array(["x"])}
                if not isinstance(model, LogisticRegression)
                else np.zeros((1, 1))
            )
    with pytest.raises(ValidationError, match="both outcomes"):
        NaiveBayesLeadScorer(["a"]).fit({"a": np.array(["x", "y"])}, [1, 1])
    with pytest.raises(ValidationError, match="outcomes"):
        NaiveBayesLeadScorer(["a"]).fit({"a": np.array(["x", "y"])}, [1, 2])
    with pytest.raises(ValidationError, match="'b' is missing"):
        NaiveBayesLeadScorer(["b"]).fit({"a": np.array(["x", "y"])}, ["won", "lost"])


def test_models_round_trip_through_json():
    X, y = synthetic(500)
    for model in (
        LogisticLeadScorer(["source"], ["employees"], encoding="frequency").fit(X, y),
        NaiveBayesLeadScorer(["source"]).fit(X, y),
        NaiveBayesLeadScorer(["source"], team="source").fit(X, y),
        LogisticLeadScorer(["source"]),
    ):
        back = model_from_json(model_to_json(model))
        assert type(back) is type(model)
        assert back.get_params() == model.get_params()
        if hasattr(model, "predict_proba") and (
            hasattr(model, "model_") or hasattr(model, "won_")
        ):
            np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
        assert model_to_json(back) == model_to_json(model)


@settings(max_examples=80, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 6)), min_size=2, max_size=40
    ).filter(lambda p: len({y for y, _ in p}) == 2)
)
def test_auc_equals_pairwise_count(pairs):
    y = np.array([a for a, _ in pairs])
    s = np.array([b for _, b in pairs], dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    assert roc_auc(y, s) == pytest.approx(wins / (len(pos) * len(neg)))


def test_metrics_by_hand():
    assert brier_score([1, 0, 1], [1.0, 0.5, 0.0]) == pytest.approx((0 + 0.25 + 1) / 3)
    t = lift_table([1, 1, 0, 0, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], bins=3)
    assert t["positives"].tolist() == [2, 0, 1]
    assert t["lift"].tolist() == pytest.approx([2.0, 0.0, 1.0])
    assert t["gain"].tolist() == pytest.approx([2 / 3, 2 / 3, 1.0])
    c = calibration_bins([1, 0, 1, 1], [0.05, 0.15, 0.95, 1.0], bins=10)
    assert c["count"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert c["observed"][9] == 1.0
    assert np.isnan(c["observed"][5])
    with pytest.raises(ValidationError):
        roc_auc([1, 1], [0.2, 0.3])


def test_backtest_on_store_history(crm):
    cols, y, at = training_data(crm, ["source", "industry", "employees"], record_type=Lead)
    statuses = crm.leads.columns(["status"])["status"]
    assert len(y) == int(np.isin(statuses, ["converted", "disqualified"]).sum())
    assert y.sum() == int((statuses == "converted").sum())
    cutoff = datetime(2025, 8, 1, tzinfo=UTC)
    for model in (
        NaiveBayesLeadScorer(["source", "industry"]),
        LogisticLeadScorer(["source", "industry"], ["employees"]),
    ):
        result = backtest(model, cols, y, at, cutoff)
        assert not hasattr(model, "won_")
        assert not hasattr(model, "model_")
        before = at < np.datetime64(cutoff.replace(tzinfo=None), "us")
        assert result.n_train == int(before.sum())
        assert result.n_test == int((~before).sum())
        assert result.auc > 0.65  # the conftest store makes referral leads convert more
        assert 0 < result.brier < 0.25
        assert result.scores.ids.tolist() == cols["id"][~before].tolist()
    with pytest.raises(ValidationError, match="cutoff"):
        backtest(NaiveBayesLeadScorer(["source"]), cols, y, at, datetime(2020, 1, 1, tzinfo=UTC))
