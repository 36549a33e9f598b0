"""Broker helpers, checked against kombu's real SQLAlchemy transport on SQLite files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from kombu import Connection

from worker import broker
from worker.broker import BrokerError
from worker.settings import WorkerSettings


def _url(tmp_path: Path) -> str:
    return f"sqla+sqlite:///{tmp_path / 'data' / 'broker.sqlite'}"


def _connection(url: str) -> Connection:
    settings = WorkerSettings(data_dir=Path("/unused"), broker_url=url)
    return Connection(url, transport_options=broker.transport_options(settings))


def test_embedded_urls() -> None:
    assert broker.is_embedded("sqla+sqlite:////x/broker.sqlite")
    assert broker.is_embedded("sqlalchemy+postgresql://u@h/db")
    assert not broker.is_embedded("redis://redis:6379/0")
    assert broker.sqlalchemy_url("sqla+sqlite:////x/b.sqlite") == "sqlite:////x/b.sqlite"
    assert broker.sqlite_path("sqla+sqlite:////x/b.sqlite") == Path("/x/b.sqlite")
    assert broker.sqlite_path("sqla+sqlite://") is None
    assert broker.sqlite_path("sqla+postgresql://u@h/db") is None
    assert broker.sqlite_path("redis://redis:6379/0") is None
    with pytest.raises(BrokerError, match="not an embedded broker"):
        broker.sqlalchemy_url("redis://redis:6379/0")


def test_transport_options_suit_the_broker(tmp_path: Path) -> None:
    embedded = WorkerSettings(data_dir=tmp_path)
    assert broker.transport_options(embedded) == {
        "connect_args": {"timeout": broker.SQLITE_BUSY_TIMEOUT_S}
    }
    team = WorkerSettings(data_dir=tmp_path, broker_url="redis://redis:6379/0")
    assert broker.transport_options(team) == {"visibility_timeout": team.visibility_timeout_s}
    sql = WorkerSettings(data_dir=tmp_path, broker_url="sqla+postgresql://u@h/db")
    assert broker.transport_options(sql) == {}


def test_redis_options_would_break_the_sqlalchemy_transport(tmp_path: Path) -> None:
    """Why options are per broker: kombu hands unknown options to ``create_engine``."""
    url = _url(tmp_path)
    broker.prepare_embedded_broker(url)
    with (
        Connection(url, transport_options={"visibility_timeout": 10}) as conn,
        pytest.raises(TypeError, match="visibility_timeout"),
    ):
        conn.SimpleQueue("q").put({"n": 1})


def test_prepare_creates_the_folder_and_uses_wal(tmp_path: Path) -> None:
    url = _url(tmp_path)
    path = broker.prepare_embedded_broker(url)
    assert path == tmp_path / "data" / "broker.sqlite"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert broker.prepare_embedded_broker(url) == path  # idempotent
    assert broker.prepare_embedded_broker("redis://redis:6379/0") is None


def test_prepare_says_what_to_fix_when_the_folder_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(BrokerError, match="ADN_DATA_DIR"):
        broker.prepare_embedded_broker(f"sqla+sqlite:///{blocker / 'broker.sqlite'}")


def test_prune_removes_only_delivered_messages(tmp_path: Path) -> None:
    url = _url(tmp_path)
    broker.prepare_embedded_broker(url)
    assert broker.prune_delivered_messages(url, older_than_s=0) == 0  # no table yet
    with _connection(url) as conn:
        queue = conn.SimpleQueue("prune-test")
        queue.put({"n": 1})
        queue.put({"n": 2})
        queue.get(timeout=5).ack()
        assert queue.qsize() == 1
        assert broker.prune_delivered_messages(url, older_than_s=3600) == 0  # too recent
        assert broker.prune_delivered_messages(url, older_than_s=0) == 1
        assert queue.qsize() == 1
        message = queue.get(timeout=5)
        assert message.payload == {"n": 2}
        message.ack()
        queue.close()
    assert broker.prune_delivered_messages("redis://redis:6379/0") == 0


def test_forked_child_drops_inherited_broker_connections(tmp_path: Path) -> None:
    from kombu.transport.sqlalchemy import Channel

    url = _url(tmp_path)
    broker.prepare_embedded_broker(url)
    broker.install_fork_guard()
    broker.install_fork_guard()  # idempotent
    with _connection(url) as conn:
        conn.SimpleQueue("fork-test").put({"n": 1})
    engine, _ = Channel._engines[broker.sqlalchemy_url(url)]
    assert engine.pool.checkedin() >= 1, "the parent should hold a pooled connection"
    pid = os.fork()
    if pid == 0:  # child: exit status says whether the pool came over empty
        os._exit(0 if engine.pool.checkedin() == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engine.pool.checkedin() >= 1, "the parent's connections must stay open"
