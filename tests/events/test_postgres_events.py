"""PostgreSQL specifics: a host's own connection, and LISTEN/NOTIFY waking a consumer."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from crmkit import Account
from crmkit.events import Consumer, read, subscribe

from .._stores import StoreFactory


def test_inside_a_host_transaction_events_commit_with_it(
    postgres_factory: StoreFactory,
) -> None:
    import psycopg

    from crmkit.store.postgres import PostgresStore

    postgres_factory(events=True).close()
    with psycopg.connect(postgres_factory.target) as host:  # not autocommit: the host's
        store = PostgresStore(connection=host, schema=postgres_factory.schema)
        heard: list[Any] = []
        subscribe(store, heard.append)
        store.accounts.add(Account(id="a1", name="Acme"))
        assert heard == []  # crmkit cannot see the host's commit: no subscriber call
        host.rollback()
        store.accounts.add(Account(id="a2", name="Globex"))
        host.commit()
        store.close()
    other = postgres_factory()
    try:
        assert [e.record_id for e in read(other)] == ["a2"]  # a1 rolled back with the host
        assert heard == []
    finally:
        other.close()


def test_a_waiting_consumer_is_woken_by_another_connections_commit(
    postgres_factory: StoreFactory,
) -> None:
    reader = postgres_factory(events=True)
    writer = postgres_factory()
    try:
        consumer = Consumer(reader, "waiter")
        assert consumer.wait(0) is False
        start = threading.Event()

        def write() -> None:
            start.wait(30)
            writer.accounts.add(Account(id="a1", name="Acme"))

        thread = threading.Thread(target=write)
        thread.start()
        start.set()
        woke = consumer.wait(60)
        thread.join()
        assert woke is True
        assert [e.record_id for e in consumer.poll()] == ["a1"]
    finally:
        reader.close()
        writer.close()


@pytest.mark.parametrize("batch", [1, 150, 450], ids=["one", "pipelined", "copy"])
def test_positions_of_a_transaction_are_consecutive(
    postgres_factory: StoreFactory, batch: int
) -> None:
    store = postgres_factory(events=True)
    heard: list[int] = []
    subscribe(store, lambda e: heard.append(e.position))
    try:
        store.accounts.add(Account(id="first", name="First"))
        store.accounts.add_many([Account(id=f"a{i:03d}", name="A") for i in range(batch)])
        stored = [e.position for e in read(store)]
        assert stored == list(range(1, batch + 2))
        assert heard == stored  # subscribers got the positions the rows have
    finally:
        store.close()
