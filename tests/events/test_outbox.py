"""Change events: one per committed write, in the writing transaction, in every store."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest

from crmkit import Account, CampaignMember, ValidationError, acting_as
from crmkit.criteria import F
from crmkit.errors import BatchError, ConflictError
from crmkit.events import (
    ChangeEvent,
    Consumer,
    DomainEvent,
    emit,
    enabled,
    read,
    subscribe,
    trim,
)
from crmkit.records import Campaign
from crmkit.store import MemoryStore


class Boom(Exception):
    pass


def _summary(events: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (e.record_type, e.record_id, e.operation, e.version)
        if isinstance(e, ChangeEvent)
        else (e.name, e.subject)
        for e in events
    ]


def test_every_write_yields_one_change_event(store: Any) -> None:
    accounts = store.accounts
    accounts.add(Account(id="a1", name="Acme"))
    accounts.update(attrs.evolve(accounts.get("a1"), name="Acme Inc", country="US"))
    accounts.patch("a1", employees=12)
    accounts.put(Account(id="a2", name="Globex"))
    accounts.put(Account(id="a2", name="Globex", industry="Energy"))
    accounts.add_many([Account(id="b1", name="B1"), Account(id="b2", name="B2")])
    accounts.put_many([Account(id="b1", name="B1 Ltd"), Account(id="b3", name="B3")])
    accounts.patch_many({"b2": {"country": "FR"}, "b3": {"country": "DE"}})
    accounts.delete("b1")
    events = read(store)
    assert _summary(events) == [
        ("Account", "a1", "insert", 1),
        ("Account", "a1", "update", 2),
        ("Account", "a1", "update", 3),
        ("Account", "a2", "insert", 1),
        ("Account", "a2", "update", 2),
        ("Account", "b1", "insert", 1),
        ("Account", "b2", "insert", 1),
        ("Account", "b1", "update", 2),
        ("Account", "b3", "insert", 1),
        ("Account", "b2", "update", 2),
        ("Account", "b3", "update", 2),
        ("Account", "b1", "delete", 2),
    ]
    fields = [e.fields for e in events]
    assert fields[1] == ("name", "country")
    assert fields[2] == ("employees",)
    assert fields[4] == ("industry",)
    assert fields[7] == ("name",)
    assert "name" in fields[0]
    assert "id" not in fields[0]
    assert "version" not in fields[0]
    assert fields[-1] == ()
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))
    assert len({e.key for e in events}) == len(events)


def test_a_rolled_back_transaction_writes_no_event(store: Any) -> None:
    store.accounts.add(Account(id="a1", name="Acme"))

    def fail(*records: Account, event: str | None = None) -> None:
        with store.transaction():
            store.accounts.add_many(records)
            if event is not None:
                emit(store, event, subject=records[0].id)
            raise Boom

    with pytest.raises(Boom):
        fail(Account(id="a2", name="Gone"), event="test.gone")
    with store.transaction():
        store.accounts.add(Account(id="a3", name="Kept"))
        with pytest.raises(Boom):
            fail(Account(id="a4", name="Inner, undone"))
        emit(store, "test.kept", subject="a3")
    assert _summary(read(store)) == [
        ("Account", "a1", "insert", 1),
        ("Account", "a3", "insert", 1),
        ("test.kept", "a3"),
    ]


def test_a_refused_write_writes_no_event(store: Any) -> None:
    store.accounts.add(Account(id="a1", name="Acme"))
    with pytest.raises(ConflictError):
        store.accounts.update(Account(id="a1", name="Stale", version=7))
    with pytest.raises(BatchError):
        store.accounts.add_many([Account(id="a2", name="New"), Account(id="a1", name="Dup")])
    store.campaigns.add(Campaign(id="c1", name="Launch"))
    with pytest.raises(ValidationError):  # a rule spanning records, checked after the write
        store.campaign_members.add(CampaignMember(id="m1", campaign_id="nope", contact_id="x"))
    assert _summary(read(store)) == [
        ("Account", "a1", "insert", 1),
        ("Campaign", "c1", "insert", 1),
    ]


def test_a_conditional_patch_emits_only_when_it_applies(store: Any) -> None:
    store.accounts.add(Account(id="a1", name="Acme", country="US"))
    with pytest.raises(ConflictError, match="condition"):
        store.accounts.patch("a1", where=F.country == "FR", name="Never")
    with pytest.raises(BatchError):
        store.accounts.patch_many({"a1": {"name": "Never"}}, where=F.country == "FR")
    store.accounts.patch("a1", where=F.country == "US", employees=5)
    store.accounts.patch_many({"a1": {"name": "Acme Inc"}}, where=F.employees == 5)
    events = read(store)
    assert _summary(events) == [
        ("Account", "a1", "insert", 1),
        ("Account", "a1", "update", 2),
        ("Account", "a1", "update", 3),
    ]
    assert [e.fields for e in events[1:]] == [("employees",), ("name",)]


def test_events_are_off_unless_asked_for() -> None:
    store = MemoryStore()
    store.accounts.add(Account(id="a1", name="Acme"))
    emit(store, "test.nothing")
    assert not enabled(store)
    assert read(store) == []


def test_subscribers_run_after_the_outermost_commit_only(store: Any) -> None:
    seen: list[str] = []
    stop = subscribe(store, lambda e: seen.append(e.record_id))
    with store.transaction():
        store.accounts.add(Account(id="a1", name="Acme"))
        with store.transaction():
            store.accounts.add(Account(id="a2", name="Globex"))
        assert seen == []  # not inside, not at the inner commit
    assert seen == ["a1", "a2"]

    def fail() -> None:
        with store.transaction():
            store.accounts.add(Account(id="a3", name="Rolled back"))
            raise Boom

    with pytest.raises(Boom):
        fail()
    assert seen == ["a1", "a2"]
    stop()
    store.accounts.add(Account(id="a4", name="Unheard"))
    assert seen == ["a1", "a2"]


def test_a_failing_subscriber_is_logged_and_loses_nothing(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("search index is down")

    heard: list[int] = []
    subscribe(store, broken)
    subscribe(store, lambda e: heard.append(e.position))
    with caplog.at_level(logging.ERROR, logger="crmkit.events"):
        stored = store.accounts.add(Account(id="a1", name="Acme"))
    assert stored.version == 1
    assert store.accounts.get("a1").name == "Acme"
    assert [r.name for r in caplog.records] == ["crmkit.events"]
    assert "search index is down" in caplog.text
    assert "Account:a1:1:insert@" in caplog.text
    (event,) = Consumer(store, "indexer").poll()
    assert heard == [event.position]


def test_consumers_resume_from_their_last_ack(store: Any) -> None:
    store.accounts.add_many([Account(id=f"a{i}", name=f"A{i}") for i in range(5)])
    first = Consumer(store, "search-index")
    batch = first.poll(limit=2)
    assert [e.record_id for e in batch] == ["a0", "a1"]
    assert [e.record_id for e in first.poll(limit=2)] == ["a0", "a1"]  # not acked: again
    first.ack(batch[-1])
    again = Consumer(store, "search-index")  # a restarted process
    assert again.position == batch[-1].position
    assert [e.record_id for e in again.poll()] == ["a2", "a3", "a4"]
    assert [e.record_id for e in Consumer(store, "mailer").poll(limit=1)] == ["a0"]
    again.ack(batch[0])  # an older ack never moves the cursor back
    assert again.position == batch[-1].position
    assert again.wait(0) is True


def test_an_ack_in_the_effects_transaction_rolls_back_with_them(store: Any) -> None:
    store.accounts.add(Account(id="a1", name="Acme"))
    consumer = Consumer(store, "welcome")
    (event,) = consumer.poll()

    def effect_and_ack(fail: bool) -> None:
        with store.transaction():
            store.save_state("welcome.sent", {"a1": True})
            consumer.ack(event)
            if fail:
                raise Boom

    with pytest.raises(Boom):
        effect_and_ack(fail=True)
    assert consumer.position == 0
    assert store.load_state("welcome.sent") is None
    effect_and_ack(fail=False)
    assert consumer.position == event.position
    assert consumer.poll() == []
    assert consumer.wait(0) is False


def test_the_actor_is_in_events_and_fills_history(store: Any) -> None:
    from datetime import UTC, datetime

    from crmkit.ownership import reassign
    from crmkit.records import Rep

    at = datetime(2026, 1, 5, tzinfo=UTC)
    store.reps.add(Rep(id="ana", name="Ana"))
    store.accounts.add(Account(id="a1", name="Acme"))
    with acting_as("alice"):
        change = reassign(store, "Account", "a1", "ana", reason="territory", at=at)
    assert change is not None
    assert change.changed_by == "alice"
    assert store.ownership_changes.get(change.id).changed_by == "alice"
    with acting_as("alice"):
        kept = reassign(store, "Account", "a1", "ana", reason="again", at=at)
    assert kept is None
    events = read(store)
    assert [e.actor for e in events][-3:] == ["alice", "alice", "alice"]
    owner = [e for e in events if isinstance(e, DomainEvent)]
    assert [(e.name, e.subject, e.payload["to_owner_id"]) for e in owner] == [
        ("owner.changed", "a1", "ana")
    ]
    with acting_as("bob"):
        store.ownership_changes.add(
            attrs.evolve(change, id="oc-2", changed_by="carol")  # the caller's own stands
        )
    assert store.ownership_changes.get("oc-2").changed_by == "carol"


def test_the_events_setting_is_kept_in_the_database(tmp_path: Any) -> None:
    from crmkit.store.sqlite import SQLiteStore

    path = tmp_path / "crm.db"
    with SQLiteStore(path) as plain:
        assert not enabled(plain)
    with SQLiteStore(path, events=True) as on:
        on.accounts.add(Account(id="a1", name="Acme"))
    with SQLiteStore(path) as later:  # another process, opened later
        assert enabled(later)
        later.accounts.add(Account(id="a2", name="Globex"))
        assert [e.record_id for e in read(later)] == ["a1", "a2"]
    with SQLiteStore(path, events=False) as off:
        off.accounts.add(Account(id="a3", name="Unheard"))
    with SQLiteStore(path) as last:
        assert not enabled(last)
        assert len(read(last)) == 2


def test_an_actor_given_as_an_argument_wins_over_the_context(store: Any) -> None:
    with acting_as("alice"):
        emit(store, "invoice.sent", subject="i1", actor="billing-job")
        emit(store, "invoice.sent", subject="i2")
    assert [e.actor for e in read(store)] == ["billing-job", "alice"]


def test_trimmed_positions_are_never_reused(store: Any) -> None:
    store.accounts.add_many([Account(id=f"a{i}", name="A") for i in range(3)])
    consumer = Consumer(store, "indexer")
    consumer.ack(consumer.poll(limit=2)[-1])
    assert trim(store, through=consumer.position) == 2
    assert [e.record_id for e in consumer.poll()] == ["a2"]
    store.accounts.add(Account(id="a3", name="After"))
    assert [e.position for e in read(store)] == [3, 4]
    assert trim(store, through=0) == 0


def test_bad_event_input_is_refused(store: Any) -> None:
    with pytest.raises(ValidationError, match="dotted lowercase"):
        emit(store, "Lead Routed")
    with pytest.raises(ValidationError, match="JSON-able"):
        emit(store, "test.bad", payload={"x": object()})
    with pytest.raises(ValidationError, match="actor"):
        emit(store, "test.bad", actor="")
    with pytest.raises(ValidationError, match="consumer name"):
        Consumer(store, "")
    with pytest.raises(ValidationError, match="actor"), acting_as(""):
        pass
    assert read(store) == []
