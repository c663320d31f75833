"""The memo cache is set aside only when SQLite itself calls the file corrupt; a full disk or an
I/O error keeps the (healthy) file and the run goes on without writing to it, saying so once."""

import hashlib
import logging
import sqlite3

import pytest

from gpo_local.backends.memo import CorruptCache, Memo, MemoizedLLM, is_corrupt, storage_trouble
from gpo_local.testing import ScriptedLLM


def sqlite_error(cls, code, text):
    error = cls(text)
    error.sqlite_errorcode = code
    return error


class FailingDB:
    """A connection whose statements raise `error` (SQLite's own error types and codes)."""

    def __init__(self, real, error, on=("INSERT",)):
        self.real, self.error, self.on = real, error, on

    def execute(self, sql, *args):
        if any(word in sql for word in self.on):
            raise self.error
        return self.real.execute(sql, *args)

    def executemany(self, sql, *args):
        if any(word in sql for word in self.on):
            raise self.error
        return self.real.executemany(sql, *args)

    def __enter__(self):
        return self.real.__enter__()

    def __exit__(self, *exc):
        return self.real.__exit__(*exc)

    def close(self):
        self.real.close()


def llm():
    return ScriptedLLM(lambda messages, temperature, seed: messages[-1]["content"].upper(), fingerprint="m")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_only_sqlite_s_corrupt_and_notadb_codes_mean_damage():
    assert is_corrupt(sqlite_error(sqlite3.DatabaseError, 11, "database disk image is malformed"))
    assert is_corrupt(sqlite_error(sqlite3.DatabaseError, 26, "file is not a database"))
    assert is_corrupt(CorruptCache("quick_check: row missing"))
    full = sqlite_error(sqlite3.OperationalError, 13, "database or disk is full")
    assert not is_corrupt(full) and storage_trouble(full) == "database or disk is full"
    io = sqlite_error(sqlite3.OperationalError, 10 | (3 << 8), "disk I/O error")  # SQLITE_IOERR_WRITE
    assert not is_corrupt(io) and storage_trouble(io) == "I/O error"
    assert not is_corrupt(sqlite_error(sqlite3.OperationalError, 5, "database is locked"))


def test_a_full_disk_keeps_the_cache_and_stops_writing_to_it_saying_so_once(tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    memo = Memo(path)
    MemoizedLLM(llm(), memo).generate(["a", "b"], max_tokens=4)
    memo.close()
    memo = Memo(path)
    memo.db = FailingDB(memo.db, sqlite_error(sqlite3.OperationalError, 13, "database or disk is full"))
    inner = llm()
    cached = MemoizedLLM(inner, memo)
    with caplog.at_level(logging.WARNING, logger="gpo_local"):
        assert cached.generate(["a", "c"], max_tokens=4) == ["A", "C"]
        assert cached.generate(["d"], max_tokens=4) == ["D"]
        assert cached.generate(["a"], max_tokens=4) == ["A"]  # still read
    assert len(inner.calls) == 2 and cached.hits == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert (
        len(warnings) == 1
        and "database or disk is full" in warnings[0]
        and "without writing to it" in warnings[0]
    )
    assert not (tmp_path / "cache.sqlite.corrupt").exists()
    memo.close()
    reopened = Memo(path)
    assert reopened.db.execute("SELECT count(*) FROM replies").fetchone() == (2,)  # a and b: all rows kept


def test_a_cache_that_cannot_be_opened_for_a_storage_reason_is_left_alone(tmp_path, monkeypatch, caplog):
    path = tmp_path / "cache.sqlite"
    memo = Memo(path)
    MemoizedLLM(llm(), memo).generate(["a"], max_tokens=4)
    memo.close()
    before = digest(path)

    def full(self):
        raise sqlite_error(sqlite3.OperationalError, 13, "database or disk is full")

    monkeypatch.setattr(Memo, "_open", full)
    with caplog.at_level(logging.WARNING, logger="gpo_local"):
        memo = Memo(path)
        inner = llm()
        assert MemoizedLLM(inner, memo).generate(["a", "b"], max_tokens=4) == ["A", "B"]
    assert len(inner.calls) == 1  # "a" read from the cache opened read-only, "b" generated and not stored
    memo.close()
    assert digest(path) == before and not (tmp_path / "cache.sqlite.corrupt").exists()
    assert len(caplog.records) == 1 and "without writing to it" in caplog.records[0].getMessage()


def test_a_corrupt_error_while_reading_still_sets_the_file_aside(tmp_path):
    path = tmp_path / "cache.sqlite"
    memo = Memo(path)
    memo.db = FailingDB(
        memo.db,
        sqlite_error(sqlite3.DatabaseError, 11, "database disk image is malformed"),
        on=("SELECT key",),
    )
    assert MemoizedLLM(llm(), memo).generate(["a"], max_tokens=4) == ["A"]
    assert (tmp_path / "cache.sqlite.corrupt").exists()


def test_a_busy_cache_is_not_damage(tmp_path):
    memo = Memo(tmp_path / "cache.sqlite")
    memo.db = FailingDB(memo.db, sqlite_error(sqlite3.OperationalError, 5, "database is locked"))
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        memo.put_many({"k": "v"})
    assert not (tmp_path / "cache.sqlite.corrupt").exists()
