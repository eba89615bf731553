"""What only the PostgreSQL journal has: schema versions, fencing, a server that goes away.

The protocol itself (append, replay, read, checkpoints, kill -9) is tested
on both backends in test_journal_backends.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import psycopg
import pytest

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway, StartupError
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.cli.flags import build_parser, config_from_args
from gateway.ha.config import PostgresConfig
from gateway.journal import CorruptRecord, IncompatibleJournal, pg_schema
from gateway.journal.postgres import (
    Fenced,
    JournalUnavailable,
    PostgresJournal,
    ShardMismatch,
    redact,
)
from tests.conftest import gateway_test_config
from tests.integration.test_sqlite_journal import make_records, stored
from tests.pg_server import PgServer, server_or_skip
from tests.support import eventually, place_request, resting_buy

if TYPE_CHECKING:
    from gateway._proto.execution.v1.execution_pb2_grpc import ExecutionServiceAsyncStub


def tables(dsn: str) -> dict[str, int]:
    """Each table of the journal with its row count."""
    with psycopg.connect(dsn) as conn:
        names = [
            str(name)
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]  # noqa: S608 - our own table names
            for name in names
        }


# ---------------------------------------------------------------- schema


async def test_a_new_database_gets_the_current_schema_once(pg_dsn: str) -> None:
    journal = PostgresJournal.open(pg_dsn)
    await journal.append(make_records(1, 3))
    await journal.close()
    assert tables(pg_dsn) == {
        "gateway_leases": 0,
        "gateway_schema": 1,
        "journal_checkpoint": 0,
        "journal_events": 3,
    }
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT version FROM gateway_schema").fetchall() == [
            (pg_schema.SCHEMA_VERSION,)
        ]
    reopened = PostgresJournal.open(pg_dsn)  # migrating again changes nothing
    assert reopened.last_sequence == 3
    await reopened.close()
    assert tables(pg_dsn)["gateway_schema"] == 1


async def test_a_later_migration_is_applied_once_to_an_older_database(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = PostgresJournal.open(pg_dsn)
    await journal.append(make_records(1, 4))
    await journal.close()
    later = (pg_schema.SCHEMA_VERSION + 1, "ALTER TABLE journal_events ADD COLUMN note text;")
    monkeypatch.setattr(pg_schema, "MIGRATIONS", (*pg_schema.MIGRATIONS, later))
    monkeypatch.setattr(pg_schema, "SCHEMA_VERSION", later[0])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert pg_schema.migrate(conn) == later[0] - 1  # found the older version
        assert pg_schema.migrate(conn) == later[0]  # and the second start finds it done
        assert conn.execute("SELECT version FROM gateway_schema").fetchall() == [(later[0],)]
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'journal_events' ORDER BY ordinal_position"
        ).fetchall()
    assert [c for (c,) in columns] == ["sequence", "order_id", "body", "crc", "note"]
    reopened = PostgresJournal.open(pg_dsn)  # the records are untouched
    assert list(reopened.replay()) == stored(make_records(1, 4))
    await reopened.close()


def test_gateways_starting_together_migrate_once(pg_dsn: str) -> None:
    errors: list[BaseException] = []
    found: list[int] = []

    def start() -> None:
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                found.append(pg_schema.migrate(conn))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sorted(found) == [0, 1, 1, 1]  # one migrated from empty; the others found it done


async def test_a_newer_schema_is_refused_and_left_alone(pg_dsn: str) -> None:
    journal = PostgresJournal.open(pg_dsn)
    await journal.append(make_records(1, 5))
    await journal.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE gateway_schema SET version = %s", (pg_schema.SCHEMA_VERSION + 1,))
    before = tables(pg_dsn)
    with pytest.raises(IncompatibleJournal, match="written by a newer gateway") as refused:
        PostgresJournal.open(pg_dsn)
    assert f"knows up to version {pg_schema.SCHEMA_VERSION}" in str(refused.value)
    assert tables(pg_dsn) == before


async def test_a_gateway_refuses_to_start_on_a_newer_schema(pg_dsn: str, tmp_path: Path) -> None:
    PostgresJournal.open(pg_dsn)._conn.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE gateway_schema SET version = 999")
    config = dataclasses.replace(gateway_test_config(tmp_path), postgres=PostgresConfig(pg_dsn))
    with pytest.raises(StartupError, match="schema is version 999"):
        Gateway(config)


async def test_a_database_serves_one_shard_and_a_schema_makes_another(pg_dsn: str) -> None:
    from gateway.ha.lease import Lease

    await PostgresJournal.open(pg_dsn, shard="east").close()
    east = Lease(pg_dsn, "east", 5.0)
    assert east.try_acquire() == 1
    east.close()
    with pytest.raises(ShardMismatch, match="holds the journal of shard 'east', not 'west'"):
        PostgresJournal.open(pg_dsn, shard="west")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shard_west")
    west_dsn = f"{pg_dsn}?options=-csearch_path%3Dshard_west"
    west = PostgresJournal.open(west_dsn, shard="west")
    await west.append(make_records(1, 3))
    await west.close()
    assert tables(pg_dsn)["journal_events"] == 0  # east's own table, untouched
    with psycopg.connect(pg_dsn) as conn:
        count = conn.execute("SELECT count(*) FROM shard_west.journal_events").fetchone()
    assert count == (3,)


async def test_a_damaged_record_read_back_for_its_order_is_reported(pg_dsn: str) -> None:
    journal = PostgresJournal.open(pg_dsn)
    await journal.append(make_records(1, 10))
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("UPDATE journal_events SET crc = crc + 1 WHERE sequence = 7")
        assert set(journal.order_events(["order-0"])) == {"order-0"}  # untouched
        with pytest.raises(CorruptRecord, match="sequence 7: checksum"):
            journal.order_events(["order-1"])
    finally:
        await journal.close()


# -------------------------------------------------------------- fencing


async def test_a_fenced_writer_commits_nothing(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        pg_schema.migrate(conn)
        conn.execute(
            "INSERT INTO gateway_leases VALUES ('default', 7, 'me', now() + interval '1 hour')"
        )
    journal = PostgresJournal.open(pg_dsn, epoch=7)
    await journal.append(make_records(1, 10))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE gateway_leases SET epoch = 8, holder = 'the standby'")
    with pytest.raises(Fenced, match="moved past epoch 7; nothing was committed"):
        await journal.append(make_records(11, 20))
    assert journal.last_sequence == 10
    await journal.close()
    reader = PostgresJournal.open(pg_dsn)
    assert list(reader.replay()) == stored(make_records(1, 10))
    await reader.close()


async def test_a_second_writer_of_the_same_sequences_is_refused(pg_dsn: str) -> None:
    first = PostgresJournal.open(pg_dsn)
    second = PostgresJournal.open(pg_dsn)
    await first.append(make_records(1, 5))
    with pytest.raises(Fenced, match="already written by another gateway"):
        await second.append(make_records(1, 5))
    await first.close()
    await second.close()


async def test_a_commit_held_up_across_a_takeover_is_refused(pg_dsn: str) -> None:
    """A deposed writer's statement that started before the epoch moved still commits nothing.

    The append waits (another session holds the events table) while the
    lease moves on; when it runs, the fence's share lock re-reads the lease
    row as it now is, and the insert finds no fence.
    """
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        pg_schema.migrate(conn)
        conn.execute("INSERT INTO gateway_leases VALUES ('default', 1, 'me', now())")
    journal = PostgresJournal.open(pg_dsn, epoch=1)
    await journal.append(make_records(1, 3))
    holder = psycopg.connect(pg_dsn)
    holder.execute("LOCK TABLE journal_events IN EXCLUSIVE MODE")
    append = asyncio.create_task(journal.append(make_records(4, 6)))
    with psycopg.connect(pg_dsn, autocommit=True) as observer:
        await eventually(
            lambda: asyncio.to_thread(
                lambda: observer.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                    "'journal_events'::regclass"
                ).fetchone()
            ),
            lambda row: row is not None and row[0] == 1,
            what="the append waiting",
        )
    await asyncio.to_thread(_bump, pg_dsn)
    holder.rollback()
    holder.close()
    with pytest.raises(Fenced):
        await asyncio.wait_for(append, 10)
    await journal.close()
    reader = PostgresJournal.open(pg_dsn)
    assert reader.last_sequence == 3
    await reader.close()


def _bump(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE gateway_leases SET epoch = epoch + 1")


# ------------------------------------------------------------ the server


def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    dsn = "postgresql://trader:s3cret@127.0.0.1:1/journal?connect_timeout=2"
    with pytest.raises(JournalUnavailable, match="cannot connect to") as refused:
        PostgresJournal.open(dsn)
    assert "s3cret" not in str(refused.value)
    assert "postgresql://trader@127.0.0.1:1/journal" in str(refused.value)
    assert redact("not a url at all =") == "(unparsable journal URL)"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://[unclosed/journal",
        "postgresql://gw@127.0.0.1:1/journal?no_such_option=1",
        "postgresql://gw@127.0.0.1:notaport/journal",
    ],
)
def test_a_bad_journal_url_stops_the_start_with_one_line(url: str, tmp_path: Path) -> None:
    config = dataclasses.replace(gateway_test_config(tmp_path), postgres=PostgresConfig(url))
    with pytest.raises(StartupError, match="cannot open the journal: cannot connect to"):
        Gateway(config)


async def test_a_damaged_record_stops_the_start_and_changes_nothing(
    pg_dsn: str, tmp_path: Path
) -> None:
    journal = PostgresJournal.open(pg_dsn)
    await journal.append(make_records(1, 10))
    await journal.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE journal_events SET crc = crc + 1 WHERE sequence = 6")
    before = tables(pg_dsn)
    config = dataclasses.replace(gateway_test_config(tmp_path), postgres=PostgresConfig(pg_dsn))
    gateway = Gateway(config, broker=SimulatedBroker(SimConfig(seed=1)))
    with pytest.raises(StartupError, match="sequence 6: checksum mismatch"):
        await gateway.start()
    await gateway.stop()
    assert tables(pg_dsn) == before


@pytest.fixture(scope="module")
def own_server() -> object:
    """A server of this module's own: these tests stop and start it."""
    with server_or_skip() as server:
        yield server


async def test_a_stopped_server_fails_appends_at_once_and_loses_nothing(
    own_server: PgServer,
) -> None:
    dsn = own_server.new_database()
    journal = PostgresJournal.open(dsn)
    await journal.append(make_records(1, 50))
    own_server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(JournalUnavailable, match="commit failed"):
            await journal.append(make_records(51, 60))
        assert time.monotonic() - started < 15
        with pytest.raises(JournalUnavailable):
            await journal.read(0, 50, 10)
    finally:
        own_server.start()
    await journal.close()
    reopened = PostgresJournal.open(dsn)
    assert list(reopened.replay()) == stored(make_records(1, 50))
    await reopened.append(make_records(51, 60))  # trading goes on where it stopped
    assert await reopened.read(0, 100, 100) == make_records(1, 60)
    await reopened.close()


# ------------------------------------------------------------- inspecting


async def test_journal_show_reads_postgresql_as_it_reads_sqlite(
    pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import journal as journal_cli
    from gateway.journal import SqliteJournal

    records = make_records(1, 40)
    on_postgres = PostgresJournal.open(pg_dsn)
    on_sqlite = SqliteJournal.open(tmp_path / "data" / "journal.db")
    for journal in (on_postgres, on_sqlite):
        await journal.append(records[:25])
        await journal.append(records[25:])
        await journal.close()
    before = tables(pg_dsn)
    for selection in (
        ["--order-id", "order-3"],
        ["--from", "7", "--to", "19", "--format", "jsonl"],
        ["--account", "acct-1", "--client-order-id", "c-order-2"],
    ):
        assert journal_cli.main(["show", "--journal", pg_dsn, *selection]) == 0
        shown = capsys.readouterr().out
        assert journal_cli.main(["show", "--data-dir", str(tmp_path / "data"), *selection]) == 0
        assert shown == capsys.readouterr().out
        assert len(shown.splitlines()) > 1
    assert tables(pg_dsn) == before  # read-only
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE gateway_schema SET version = 99")
    assert journal_cli.main(["show", "--journal", pg_dsn]) == 1
    assert "written by a newer gateway" in capsys.readouterr().err
    assert journal_cli.main(["show", "--journal", "postgresql://gw@127.0.0.1:1/x"]) == 1
    assert "cannot connect to" in capsys.readouterr().err


# ------------------------------------------------------------- a gateway


def test_the_journal_flags() -> None:
    args = build_parser({}).parse_args(
        ["--journal", "postgresql://gw@db/journal", "--shard", "east", "--lease", "3"]
    )
    assert config_from_args(args).postgres == PostgresConfig(
        "postgresql://gw@db/journal", "east", 3.0
    )
    assert config_from_args(build_parser({}).parse_args([])).postgres is None
    env = {"GATEWAY_JOURNAL": "postgresql://gw@db/j", "GATEWAY_SHARD": "west"}
    assert config_from_args(build_parser(env).parse_args([])).postgres == PostgresConfig(
        "postgresql://gw@db/j", "west"
    )
    # Without --shard (no account shards), the lease is the shard "default"'s.
    alone = build_parser({}).parse_args(["--journal", "postgresql://gw@db/j"])
    assert config_from_args(alone).postgres == PostgresConfig("postgresql://gw@db/j", "default")
    for bad, problem in (
        (["--lease", "3"], "needs --journal"),
        (["--journal", "mysql://x"], "a postgresql:// URL"),
        (["--journal", "postgresql://x", "--lease", "0.5"], "at least 1 second"),
    ):
        with pytest.raises(ValueError, match=problem):
            config_from_args(build_parser({}).parse_args(bad))
    for shard in ("a b", "", "x" * 64, "East"):
        with pytest.raises(ValueError, match="a-z, 0-9 and -"):
            PostgresConfig("postgresql://x", shard)
    # The LISTEN channel of the longest shard name still fits an identifier.
    from gateway.journal.postgres import notify_channel

    assert notify_channel("east") == "gateway_journal_east"
    assert len(notify_channel("x" * 63)) <= 63
    assert notify_channel("x" * 63) != notify_channel("x" * 62 + "y")


async def run_gateway(tmp_path: Path, dsn: str) -> Gateway:
    broker = SimulatedBroker(SimConfig(seed=1, tick_interval=0.01))
    config = dataclasses.replace(gateway_test_config(tmp_path), postgres=PostgresConfig(dsn))
    gateway = Gateway(config, broker=broker)
    await gateway.start()
    await asyncio.wait_for(gateway.serving.wait(), 20)  # the lease is free: it leads at once
    return gateway


async def test_a_gateway_on_postgresql_keeps_its_orders_across_a_restart(
    pg_dsn: str, tmp_path: Path
) -> None:
    first = await run_gateway(tmp_path, pg_dsn)
    async with grpc.aio.insecure_channel(first.address) as channel:
        stub: ExecutionServiceAsyncStub = pb_grpc.ExecutionServiceStub(channel)
        resting = (await stub.PlaceOrder(resting_buy("pg-1"))).order
        market = (await stub.PlaceOrder(place_request("pg-2"))).order
        await eventually(
            lambda: stub.GetOrderStatus(
                pb.GetOrderStatusRequest(account="acct-1", order_id=market.order_id)
            ),
            lambda r: r.order.status == pb.ORDER_STATUS_FILLED,
            what="FILLED",
        )
    last = first.actor.last_sequence
    await first.stop()
    assert not (tmp_path / "data").exists(), "nothing is kept under --data-dir"

    second = await run_gateway(tmp_path, pg_dsn)
    try:
        assert second.actor.last_sequence == last
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            again = (await stub.PlaceOrder(resting_buy("pg-1"))).order
            assert again.order_id == resting.order_id
            filled = await stub.GetOrderStatus(
                pb.GetOrderStatusRequest(account="acct-1", client_order_id="pg-2")
            )
            assert filled.order.status == pb.ORDER_STATUS_FILLED
            assert filled.order.filled_quantity == market.quantity
    finally:
        await second.stop()
