"""``python -m crmkit``: the demo command, its summary, reuse/refuse/--fresh, and sections.

Expected numbers are computed straight from :func:`crmkit.datasets.generate`'s records,
never from the summary code.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import types
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import crmkit
from crmkit import _demo
from crmkit._progress import ProgressReporter
from crmkit.cli import main
from crmkit.datasets import Dataset, generate
from crmkit.records import Account, OpportunityStatus
from crmkit.store.memory import MemoryStore
from crmkit.store.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def tiny0() -> Dataset:
    return generate(seed=0, size="tiny")


def sections(text: str) -> dict[str, list[list[str]]]:
    """``== Title ==`` blocks as rows of cells (cells split on 2+ spaces; header dropped)."""
    found: dict[str, list[list[str]]] = {}
    title = None
    for line in text.splitlines():
        head = re.fullmatch(r"== (.+) ==", line)
        if head:
            title = head.group(1)
            found[title] = []
        elif title is not None and line.strip():
            found[title].append(re.split(r"\s{2,}", line.strip()))
    return {t: rows[1:] for t, rows in found.items()}


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["demo", "--no-progress", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_summary(out: str, data: Dataset) -> None:
    found = sections(out)
    # record counts
    counts = {row[0]: number(row[1]) for row in found["Records"]}
    for name, records in data.records().items():
        assert counts[name] == len(records)
    assert counts["reminders"] == 0
    # accounts by country
    by_country = {row[0]: number(row[1]) for row in found["Accounts by country and region"]}
    assert by_country == dict(Counter(a.country for a in data.accounts))
    # open pipeline by stage
    open_deals = [o for o in data.opportunities if o.status is OpportunityStatus.OPEN]
    pipeline = {row[0]: row[1:] for row in found["Open pipeline by stage"]}
    for stage in {o.stage for o in open_deals}:
        mine = [o for o in open_deals if o.stage == stage]
        assert number(pipeline[stage][0]) == len(mine)
        assert number(pipeline[stage][1]) == sum(o.amount or Decimal(0) for o in mine)
    assert number(pipeline["total"][0]) == len(open_deals)
    # leads by status
    leads = {row[0]: (number(row[1]), number(row[2])) for row in found["Leads by status"]}
    statuses = Counter(lead.status.value for lead in data.leads)
    queued = Counter(lead.status.value for lead in data.leads if lead.owner_id is None)
    assert leads == {s: (statuses[s], queued[s]) for s in leads}
    assert sum(n for n, _ in leads.values()) == len(data.leads)
    # activities per month
    months = {row[0]: number(row[1]) for row in found["Activities per month"]}
    assert months == dict(Counter(f"{a.at:%Y-%m}" for a in data.activities))
    # top owners by open pipeline, ties by id
    totals: dict[str, Decimal] = {}
    for o in open_deals:
        if o.owner_id:
            totals[o.owner_id] = totals.get(o.owner_id, Decimal(0)) + (o.amount or 0)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    rows = found["Top 5 owners by open pipeline"]
    assert [row[0] for row in rows] == [rep for rep, _ in ranked]
    assert [number(row[-1]) for row in rows] == [int(total) for _, total in ranked]
    names = {r.id: r.name for r in data.reps}
    assert [row[1] for row in rows] == [names[rep] for rep, _ in ranked]
    assert {row[0] for row in found["Timings"]} >= {"summary"}


def test_demo_builds_and_summarises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny0: Dataset
) -> None:
    db = tmp_path / "demo.db"
    code, out, err = run(capsys, "--db", str(db), "--size", "tiny")
    assert code == 0, err
    assert "Built the demo data (seed 0, size tiny" in out
    check_summary(out, tiny0)
    steps = {row[0] for row in sections(out)["Timings"]}
    assert steps == {"generate", "load", "summary", *_demo.SECTIONS}
    assert _demo.SECTIONS  # every engine adds its section to the demo
    store = SQLiteStore(db)
    try:
        assert len(store.activities) == len(tiny0.activities)
        assert store.accounts.get(tiny0.accounts[0].id).name == tiny0.accounts[0].name
    finally:
        store.close()


def test_demo_twice_reuses_and_a_different_seed_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny0: Dataset
) -> None:
    db = str(tmp_path / "demo.db")
    assert run(capsys, "--db", db, "--size", "tiny")[0] == 0
    code, out, _ = run(capsys, "--db", db, "--size", "tiny")
    assert code == 0
    assert "Reusing the demo data" in out
    assert "Built" not in out
    check_summary(out, tiny0)
    assert "generate" not in {row[0] for row in sections(out)["Timings"]}
    assert out.count("== Lead routing ==") == 1  # the engines' sections run on reuse too

    code, out, err = run(capsys, "--db", db, "--size", "tiny", "--seed", "1")
    assert code == 1
    assert "seed 0, size tiny" in err
    assert "--fresh" in err
    code, _, err = run(capsys, "--db", db, "--size", "small")
    assert code == 1
    assert "--fresh" in err
    store = SQLiteStore(db)
    try:
        assert (store.load_state(_demo.STATE_KEY) or {})["seed"] == 0
        assert len(store.accounts) == len(tiny0.accounts)
    finally:
        store.close()


def test_fresh_rebuilds_with_the_new_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "demo.db")
    assert run(capsys, "--db", db, "--size", "tiny")[0] == 0
    code, out, err = run(capsys, "--db", db, "--size", "tiny", "--seed", "1", "--fresh")
    assert code == 0, err
    assert "--fresh" in out
    assert "Built the demo data (seed 1, size tiny" in out
    check_summary(out, generate(seed=1, size="tiny"))


def test_foreign_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "mine.db"
    store = SQLiteStore(db)
    store.accounts.add(Account(id="keep-me", name="Mine"))
    store.close()
    code, _, err = run(capsys, "--db", str(db), "--size", "tiny")
    assert code == 1
    assert "not crmkit demo data" in err
    store = SQLiteStore(db)
    try:
        assert [a.id for a in store.accounts] == ["keep-me"]
    finally:
        store.close()


def test_default_database_is_in_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "--size", "tiny")[0] == 0
    assert (tmp_path / "crmkit-demo.db").is_file()


def test_memory_store_option(capsys: pytest.CaptureFixture[str], tiny0: Dataset) -> None:
    code, out, _ = run(capsys, "--memory", "--size", "tiny")
    assert code == 0
    assert "in-memory" in out
    check_summary(out, tiny0)


def test_version_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"crmkit {crmkit.__version__}"
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err
    assert main(["demo", "--size", "gigantic"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["demo", "--seed", "-3"]) == 2
    assert "seed must be >= 0" in capsys.readouterr().err


def test_csv_commands_are_wired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny0: Dataset
) -> None:
    db, target = str(tmp_path / "demo.db"), tmp_path / "accounts.csv"
    assert run(capsys, "--db", db, "--size", "tiny")[0] == 0
    assert main(["export", "--db", db, "--type", "accounts", str(target)]) == 0
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["id"] for r in rows) == sorted(a.id for a in tiny0.accounts)


# -- run_demo sections and progress ----------------------------------------------------------


def test_sections_run_after_the_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def section(store: Any, out: io.StringIO) -> None:
        seen.append(store)
        out.write(f"== Fake ==\n  what  count\n  accounts seen  {len(store.accounts)}\n")

    fake = types.ModuleType("crmkit_fake_demo_section")
    fake.section = section  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setattr(_demo, "SECTIONS", (fake.__name__,))
    store, out = MemoryStore(), io.StringIO()
    _demo.run_demo(store, seed=2, size="tiny", out=out)
    text = out.getvalue()
    assert seen == [store]
    assert text.index("== Top 5 owners") < text.index("== Fake ==") < text.index("== Timings")
    assert sections(text)["Fake"] == [["accounts seen", str(len(generate(2, "tiny").accounts))]]
    assert fake.__name__ in {row[0] for row in sections(text)["Timings"]}


def test_run_demo_reuses_a_memory_store() -> None:
    store = MemoryStore()
    _demo.run_demo(store, seed=0, size="tiny", out=io.StringIO())
    again = io.StringIO()
    _demo.run_demo(store, seed=0, size="tiny", out=again)
    assert again.getvalue().startswith("Reusing")
    with pytest.raises(_demo.DemoDataError, match="seed 0, size tiny"):
        _demo.run_demo(store, seed=9, size="tiny", out=io.StringIO())


def test_progress_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    stream = io.StringIO()
    report = ProgressReporter(stream)
    for done in range(0, 1001, 100):
        report("activities", done, 1000)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "loading activities: 0% (0/1,000)"
    assert lines[-1] == "loading activities: 100% (1,000/1,000)"
    assert len(lines) == 5  # a non-terminal stream sees 25 % steps only


def test_progress_with_tqdm() -> None:
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    report = ProgressReporter(stream, min_total=10)
    report("teams", 0, 5)  # too small to show
    report("accounts", 0, 40)
    report("accounts", 40, 40)
    text = stream.getvalue()
    assert "teams" not in text
    assert "loading accounts" in text
    assert "40/40" in text
