"""``python -m crmkit dedupe``: CSV in, pairs and clusters out, through the real CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from crmkit.cli import main
from crmkit.dedupe import find_duplicate_pairs, generate_duplicates, pair_quality

PEOPLE = (
    "first_name,last_name,email,phone\n"
    "Robert,Smith,,+1 415 555 0100\n"
    "Bob,Smyth,,(415) 555-0100\n"
    "Ada,Lovelace,ada@example.com,\n"
    "A.,Byron,ADA@example.com,\n"
    "Grace,Hopper,,\n"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dedupe", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    return path


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_pairs_to_stdout_by_row_and_summary_to_stderr(
    capsys: pytest.CaptureFixture[str], people: Path
) -> None:
    code, out, err = run(capsys, str(people))
    assert code == 0
    assert rows(out) == [
        ["left_id", "right_id", "rule", "score", "fields"],
        ["row-2", "row-3", "contact-name-phone", "0.9444", "name phone"],
        ["row-4", "row-5", "contact-email", "1.0000", "email"],
    ]
    assert err.startswith("5 Contact records, 2 pairs compared, 2 duplicate pairs")


def test_rule_choice_and_clusters_file(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    target = tmp_path / "clusters.csv"
    code, out, _ = run(capsys, str(people), "--rule", "contact-email", "--clusters", str(target))
    assert (code, out) == (0, "")
    assert rows(target.read_text(encoding="utf-8")) == [
        ["cluster", "id"],
        ["1", "row-4"],
        ["1", "row-5"],
    ]


def test_json_has_pairs_with_explanations_and_clusters(
    capsys: pytest.CaptureFixture[str], people: Path
) -> None:
    code, out, _ = run(capsys, str(people), "--json", "-")
    assert code == 0
    data = json.loads(out)
    assert data["records"] == 5
    assert data["clusters"] == [["row-2", "row-3"], ["row-4", "row-5"]]
    first = data["pairs"][0]
    assert first["rule"] == "contact-name-phone"
    assert [(f["field"], f["left"], f["right"], f["passed"]) for f in first["fields"]] == [
        ("name", "robert smith", "robert smyth", True),
        ("phone", "155550100", "155550100", True),
    ]


def test_rules_file_ids_and_leads(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "Lead ID,company,email\nA,Acme,x@acme.com\nB,ACME Inc.,y@acme.com\nC,Globex,z@g.com\n",
        encoding="utf-8",
    )
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps({"rules": [{"id": "same-company", "record_type": "Lead",
                               "fields": [{"field": "company"}]}]}),
        encoding="utf-8",
    )  # fmt: skip
    code, out, err = run(
        capsys, str(leads), "--type", "leads", "--rules", str(rules), "--id-column", "Lead ID",
        "--pairs", "-",
    )  # fmt: skip
    assert code == 0, err
    assert rows(out)[1:] == [["A", "B", "same-company", "1.0000", "company"]]


def test_bad_input_exits_1_with_a_message(
    capsys: pytest.CaptureFixture[str], people: Path, tmp_path: Path
) -> None:
    code, out, err = run(capsys, str(people), "--rule", "nope")
    assert (code, out) == (1, "")
    assert "no rule 'nope' for contacts; choose from contact-email" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("id,email,created_at\nc1,a@x.com,yesterday\n", encoding="utf-8")
    code, _, err = run(capsys, str(bad))
    assert code == 1
    assert "row 2, column 'created_at'" in err
    code, _, err = run(capsys, str(tmp_path / "missing.csv"))
    assert code == 1
    assert "missing.csv" in err


def test_generated_truth_through_the_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = generate_duplicates(400, seed=5)
    names = ["id", "first_name", "last_name", "email", "phone", "account_id"]
    path = tmp_path / "gen.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(zip(*(data.columns[n].tolist() for n in names), strict=True))
    target = tmp_path / "clusters.csv"
    code, _, _ = run(capsys, str(path), "--clusters", str(target))
    assert code == 0
    clusters: dict[str, list[str]] = {}
    for number, record_id in rows(target.read_text(encoding="utf-8"))[1:]:
        clusters.setdefault(number, []).append(record_id)
    found = tuple(tuple(c) for c in clusters.values())
    direct = find_duplicate_pairs(data.columns, record_type="Contact")
    assert sorted(found) == sorted(direct.clusters)
    precision, recall = pair_quality(data.columns["id"], data.truth, found)
    assert precision >= 0.95
    assert recall >= 0.9
