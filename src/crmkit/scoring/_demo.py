"""The scoring section of ``python -m crmkit demo``: priorities and a lead-score backtest."""

from __future__ import annotations

from typing import Any, TextIO

import numpy as np

from crmkit import F
from crmkit.errors import CrmError
from crmkit.records import Lead, Opportunity
from crmkit.scoring._backtest import backtest, training_data
from crmkit.scoring._engagement import engagement_scores
from crmkit.scoring._fit import FitModel, PointsRule, RuleGroup, fit_scores
from crmkit.scoring._inputs import index_of
from crmkit.scoring._models import LogisticLeadScorer, NaiveBayesLeadScorer
from crmkit.scoring._priority import fit_engagement_matrix, priority_scores
from crmkit.scoring._result import ScoreResult, Segments

DEMO_WEIGHTS = {
    "meeting": 10.0,
    "call": 5.0,
    "email_replied": 4.0,
    "form_submit": 4.0,
    "event": 3.0,
    "download": 2.0,
    "email_clicked": 1.5,
    "web_visit": 1.0,
    "email_opened": 0.5,
}
DEMO_HALF_LIVES = dict.fromkeys(DEMO_WEIGHTS, 30.0) | {"meeting": 60.0, "web_visit": 14.0}

DEMO_FIT = FitModel(
    rules=(
        PointsRule(name="enterprise", criteria=F.employees >= 1000, points=30, group="size"),
        PointsRule(name="mid-market", criteria=F.employees >= 200, points=20, group="size"),
        PointsRule(name="revenue 10M+", criteria=F.annual_revenue >= 10_000_000, points=20),
        PointsRule(name="industry known", criteria=F.industry.notnull(), points=10),
        PointsRule(name="customer", criteria=F.account_type == "customer", points=15),
        PointsRule(name="competitor", criteria=F.account_type == "competitor", points=-50),
    ),
    groups=(RuleGroup(name="size", cap=35),),
)


def section(store: Any, out: TextIO) -> None:
    """Print the top 10 priority accounts with their top factors, and a lead-score AUC."""
    accounts = store.accounts.columns(["id", "name", "parent_id"])
    if len(accounts["id"]) == 0:
        print("scoring: no accounts in the store", file=out)
        return
    priority, matrix = _priorities(store, accounts)
    print("Top 10 accounts by priority (0-100) and what drives them:", file=out)
    names = dict(zip(accounts["id"].tolist(), accounts["name"].tolist(), strict=True))
    for rank, record_id in enumerate(priority.top(10).ids, start=1):
        factors = ", ".join(priority.factors(record_id, 3, sign="positive")) or "-"
        print(
            f"  {rank:2d}. {names[str(record_id)][:28]:<28} {priority[record_id]:5.1f}  {factors}",
            file=out,
        )
    cells = "  ".join(f"{name}:{size}" for name, size in matrix.sizes().items())
    print(f"Fit x engagement matrix (A = best fit, 1 = most engaged): {cells}", file=out)
    _lead_backtest(store, out)


def _priorities(store: Any, accounts: dict[str, Any]) -> tuple[ScoreResult, Segments]:
    ids = accounts["id"]
    events = store.activities.columns(["account_id", "contact_id", "kind", "at"])
    now = events["at"].max() if len(events["at"]) else np.datetime64("now", "us")
    engagement = engagement_scores(
        events,
        weights=DEMO_WEIGHTS,
        half_lives=DEMO_HALF_LIVES,
        now=now,
        ids=ids,
        contacts=store.contacts.columns(["id", "account_id"]),
        parent_ids=np.where(np.isin(accounts["parent_id"], ids), accounts["parent_id"], ""),
        caps={"web_visit": 20.0},
    )
    fit = fit_scores(store, DEMO_FIT)
    fit_by_id = fit.values[index_of(ids, fit.ids, "demo", "id")]

    deals = store.opportunities.columns(["account_id", "amount", "status"])
    open_deal = (deals["status"] == "open") & np.isin(deals["account_id"], ids)
    pipeline = np.bincount(
        index_of(deals["account_id"][open_deal], ids, "demo", "account_id"),
        np.nan_to_num(deals["amount"][open_deal]),
        minlength=len(ids),
    )
    known = np.isin(events["account_id"], ids)
    last = np.full(len(ids), np.iinfo(np.int64).min)
    np.maximum.at(
        last,
        index_of(events["account_id"][known], ids, "demo", "account_id"),
        events["at"][known].astype(np.int64),
    )
    idle_days = np.where(
        last > np.iinfo(np.int64).min,
        (now.astype(np.int64) - last) / 86_400e6,
        np.nan,
    )
    matrix = fit_engagement_matrix(fit_by_id, engagement, ids=ids)
    priority = priority_scores(
        {
            "engagement": engagement,
            "fit": fit_by_id,
            "open pipeline": pipeline,
            "days since last touch": idle_days,
        },
        {"engagement": 0.35, "fit": 0.35, "open pipeline": 0.2, "days since last touch": 0.1},
        ids=ids,
        normalisation={"engagement": "rank", "open pipeline": "rank"},
        lower_is_better=["days since last touch"],
    )
    return priority, matrix


def _lead_backtest(store: Any, out: TextIO) -> None:
    shown = False
    for record_type, label, categorical, numeric in (
        (
            Lead,
            "leads (converted vs disqualified)",
            ["source", "industry", "country"],
            ["employees"],
        ),
        (Opportunity, "deals (won vs lost)", ["source", "product"], ["amount"]),
    ):
        cols, y, at = training_data(store, [*categorical, *numeric], record_type=record_type)
        if len(y) < 20:
            continue
        cutoff = np.sort(at)[int(len(at) * 0.7)]
        try:
            logistic = backtest(LogisticLeadScorer(categorical, numeric), cols, y, at, cutoff)
            bayes = backtest(NaiveBayesLeadScorer(categorical), cols, y, at, cutoff)
        except CrmError as err:
            print(f"Lead scoring backtest on {label} skipped: {err}", file=out)
            continue
        print(
            f"Lead scoring backtest on {label}: fit on {logistic.n_train} created before "
            f"{str(cutoff)[:10]}, tested on the {logistic.n_test} after (win rate "
            f"{logistic.base_rate:.0%}): ROC AUC logistic {logistic.auc:.3f}, "
            f"naive Bayes {bayes.auc:.3f} (0.5 = chance)",
            file=out,
        )
        shown = True
    if not shown:
        print("Lead scoring backtest skipped: fewer than 20 closed leads or deals", file=out)
