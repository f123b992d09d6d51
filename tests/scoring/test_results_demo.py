"""ScoreResult, Segments, plots and the demo section."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from crmkit.errors import CrmError, NotFound, ValidationError
from crmkit.scoring import ScoreResult, Segments
from crmkit.scoring._demo import section

from .conftest import fill_store


def result():
    return ScoreResult(
        ids=np.array(["a", "b", "c", "d"]),
        values=np.array([2.0, 9.0, 2.0, np.nan]),
        contributions=np.array([[2.0, 0.0], [10.0, -1.0], [1.0, 1.0], [0.0, 0.0]]),
        feature_names=("meetings", "unsubscribes"),
        name="engagement",
    )


def test_top_keeps_ties_in_order_and_nan_last():
    r = result()
    assert r.top(3).ids.tolist() == ["b", "a", "c"]
    assert r.top(10).ids.tolist() == ["b", "a", "c", "d"]
    assert r.top(0).ids.tolist() == []
    assert r.top(2).contributions.tolist() == [[10.0, -1.0], [2.0, 0.0]]


def test_explanations_in_words():
    r = result()
    assert r.explain("b") == [("meetings", 10.0), ("unsubscribes", -1.0)]
    assert r.factors("b") == ["meetings +10", "unsubscribes -1"]
    assert r.factors("b", sign="negative") == ["unsubscribes -1"]
    assert r.factors("d") == []
    with pytest.raises(NotFound):
        r.factors("zz")
    with pytest.raises(ValidationError):
        r.factors("b", sign="up")
    bare = ScoreResult(ids=["x"], values=[1.0])
    with pytest.raises(CrmError, match="explain=True"):
        bare.explain("x")


def test_shape_checks():
    with pytest.raises(ValidationError, match="one value per id"):
        ScoreResult(ids=["a", "b"], values=[1.0])
    with pytest.raises(ValidationError, match="contributions"):
        ScoreResult(ids=["a"], values=[1.0], contributions=[[1.0, 2.0]], feature_names=("x",))


def unscored():
    return ScoreResult(
        ids=["a", "b", "c"],
        values=[0.7, np.nan, 0.2],
        contributions=[[0.5], [np.nan], [-0.4]],
        feature_names=("source",),
        baseline=[0.3, np.nan, -1.0],
        raw=[0.8, np.nan, -1.4],
        name="lead",
        scoreable=[True, False, True],
        reasons=["", "team 'T3' has no won leads in the training data", ""],
    )


def test_scoreable_defaults_and_per_row_baseline():
    bare = ScoreResult(ids=["x", "y"], values=[1.0, 2.0])
    assert bare.scoreable.tolist() == [True, True]
    assert bare.reasons.tolist() == ["", ""]
    assert bare.baseline == 0.0
    r = unscored()
    assert r.reason("b") == "team 'T3' has no won leads in the training data"
    assert r.reason("a") == ""
    assert r.explain("b") == []
    assert r.factors("c") == ["source -0.4"]
    top = r.top(3)  # per-row fields travel with their rows
    assert top.ids.tolist() == ["a", "c", "b"]
    assert top.baseline.tolist()[:2] == [0.3, -1.0]
    assert top.scoreable.tolist() == [True, True, False]
    assert top.reason("b").startswith("team 'T3'")
    with pytest.raises(ValidationError, match="baseline"):
        ScoreResult(ids=["a", "b"], values=[1.0, 2.0], baseline=[0.0, 1.0, 2.0])
    with pytest.raises(ValidationError, match="scoreable"):
        ScoreResult(ids=["a", "b"], values=[1.0, 2.0], scoreable=[True])


def test_unscoreable_rows_in_pandas_and_html():
    pytest.importorskip("pandas")
    frame = unscored().to_pandas()
    assert list(frame.columns) == [
        "lead", "lead_raw", "lead_baseline", "scoreable", "reason", "source"
    ]  # fmt: skip
    assert frame.loc["b", "reason"].startswith("team 'T3'")
    assert "has no won leads" in unscored()._repr_html_()


def test_pandas_and_html():
    pytest.importorskip("pandas")
    frame = result().to_pandas()
    assert list(frame.columns) == ["engagement", "meetings", "unsubscribes"]
    assert frame.loc["b", "meetings"] == 10.0
    html = result()._repr_html_()
    assert "<table>" in html
    assert "meetings +10" in html
    seg = Segments(ids=["a", "b"], labels=["x", "y"], names=("x", "y", "z"))
    assert seg.sizes() == {"x": 1, "y": 1, "z": 0}
    assert seg.to_pandas().cat.categories.tolist() == ["x", "y", "z"]


def test_plots():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = ScoreResult(ids=np.arange(6), values=np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]))
    ax = r.plot_distribution()
    assert ax.get_xlabel() == "score"
    ax = r.plot_lift([1, 1, 0, 1, 0, 0], bins=3)
    line = ax.get_lines()[0]
    assert line.get_ydata().tolist() == pytest.approx([0.0, 2 / 3, 1.0, 1.0])
    plt.close("all")


def test_demo_section_prints_priorities_and_auc():
    out = io.StringIO()
    section(fill_store(seed=11, n_accounts=80), out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("Top 10 accounts by priority")
    ranked = [line for line in lines if re.match(r"^\s+\d+\. ", line)]
    assert len(ranked) == 10
    scores = [float(re.split(r"\s{2,}", line.strip())[1]) for line in ranked]
    assert scores == sorted(scores, reverse=True)
    assert "Fit x engagement matrix" in text
    assert "AUC logistic" in text
    assert "naive Bayes" in text
    again = io.StringIO()
    section(fill_store(seed=11, n_accounts=80), again)
    assert again.getvalue() == text


def test_demo_section_on_an_empty_store():
    from crmkit.store import MemoryStore

    out = io.StringIO()
    section(MemoryStore(), out)
    assert "no accounts" in out.getvalue()


def test_public_surface_is_pinned():
    import crmkit.scoring

    assert crmkit.scoring.__all__ == sorted(crmkit.scoring.__all__)
    assert set(crmkit.scoring.__all__) == {
        "BacktestResult", "FeatureEncoder", "FitModel", "LogisticLeadScorer",
        "LogisticRegression", "ModelState", "NaiveBayesLeadScorer", "PointsRule", "RuleGroup",
        "ScoreResult", "Segments", "average_ranks", "backtest", "brier_score",
        "calibration_bins", "engagement_scores", "fit_engagement_matrix", "fit_scores",
        "lift_table", "model_from_dict", "model_from_json", "model_to_dict", "model_to_json",
        "normalise", "percentiles", "priority_scores", "ranks", "roc_auc",
        "segment_by_criteria", "segment_by_quantiles", "tiers", "training_data",
    }  # fmt: skip
    for name in crmkit.scoring.__all__:
        assert getattr(crmkit.scoring, name) is not None
