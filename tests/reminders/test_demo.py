"""The reminders demo section leaves the store alone and prints the same every run."""

from __future__ import annotations

import io

from crmkit import MemoryStore
from crmkit._demo import run_demo
from crmkit.records import RECORD_TYPES
from crmkit.reminders._demo import section


def test_section_is_repeatable_and_read_only() -> None:
    store = MemoryStore()
    run_demo(store, seed=0, size="tiny", out=io.StringIO())
    before = {t.__name__: sorted(r.id for r in store.repository(t)) for t in RECORD_TYPES}
    first, second = io.StringIO(), io.StringIO()
    section(store, first)
    section(store, second)
    after = {t.__name__: sorted(r.id for r in store.repository(t)) for t in RECORD_TYPES}
    assert before == after
    assert first.getvalue() == second.getvalue()
    text = first.getvalue()
    assert "== Reminders: today's agenda ==" in text
    assert "== Cadence 'Intro sequence'" in text
    assert "due_today" in text


def test_section_on_an_empty_store() -> None:
    out = io.StringIO()
    section(MemoryStore(), out)
    assert "America/Sao_Paulo" in out.getvalue()
