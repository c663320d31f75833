"""A memo of generations in SQLite (WAL mode), so that re-running an evaluation, resuming a
run or re-scoring a prompt that reappears costs nothing.

The key is everything a reply depends on: the model file's sha256, the full conversation as
sent (which contains the rendered prompt and the example), and the decoding parameters
(max_tokens, temperature, seed, stop). A seeded sampled reply is as reproducible as a greedy
one, so optimizer calls are memoized too. SQLite commits are atomic: a kill loses at most the
reply being written, never the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Sequence

from gpo_local.backends import LLM, Conversation, WrappedLLM, as_messages, sampler_options, two_rounds
from gpo_local.runs import faults


def memo_key(
    fingerprint: str,
    conversation: Conversation,
    *,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    stop: Sequence[str],
    grammar: str | None = None,
    copy_guard=None,
    min_p: float = 0.0,
) -> str:
    key = [
        fingerprint,
        as_messages(conversation),
        max_tokens,
        float(temperature),
        seed if temperature > 0 else None,
        list(stop),
    ]
    if grammar is not None:  # a constrained reply differs; keys without one are unchanged
        key.append(grammar)
    if copy_guard is not None:  # so does a guarded one (backends/copy_guard.py)
        key.append(copy_guard.key())
    if min_p and temperature > 0:  # and a truncated sample (a greedy reply does not depend on it)
        key.append(["min_p", float(min_p)])
    payload = json.dumps(key, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# SQLite's primary result codes (the low byte of an extended code).
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
SQLITE_STORAGE = {
    10: "I/O error",
    13: "database or disk is full",
    8: "read-only",
    14: "cannot open",
    3: "no permission",
}


class CorruptCache(sqlite3.DatabaseError):
    """Our own integrity check failed: as good as SQLITE_CORRUPT."""


def is_corrupt(error: sqlite3.Error) -> bool:
    """Only SQLite's own verdict counts: a full disk or an I/O error says nothing about the file."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, CorruptCache) or (
        code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    )


def storage_trouble(error: sqlite3.Error) -> str | None:
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else SQLITE_STORAGE.get(code & 0xFF)


class Memo:
    """The SQLite file holds nothing that cannot be recomputed, so a file SQLite itself calls
    corrupt (SQLITE_CORRUPT, SQLITE_NOTADB, a failed quick_check: a torn copy) is set aside as
    `<name>.corrupt` and replaced by an empty cache, whether the damage shows when opening it or
    later. A full disk, an I/O or a permission error is not damage: the healthy file is kept,
    and the run goes on without writing to it (or, if it cannot even be opened or read, without
    it), saying so once."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.writable = True
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as error:
            if is_corrupt(error):
                self.db = self._replace_corrupt()
            elif storage_trouble(error):
                self.db = self._open_read_only()
                self._degrade(error, "without writing to it" if self.db else "without the cache")
            else:
                raise

    def _open_read_only(self) -> sqlite3.Connection | None:
        """The cache for reading only, when it cannot be written (a full or read-only disk).
        `immutable` is the last resort when SQLite cannot even create the WAL index file."""
        for query in ("mode=ro", "immutable=1"):
            db = None
            try:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{query}", uri=True, timeout=30)
                db.execute("SELECT count(*) FROM replies").fetchone()
                return db
            except sqlite3.Error:
                if db is not None:
                    db.close()
        return None

    def _degrade(self, error: sqlite3.Error, how: str) -> None:
        self.writable = False
        logging.getLogger("gpo_local").warning(
            "memo cache %s: %s (%s); the file is kept as it is and this run goes on %s",
            self.path,
            storage_trouble(error),
            error,
            how,
        )

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
            check = db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise CorruptCache(f"quick_check: {check[0] if check else 'no answer'}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _replace_corrupt(self) -> sqlite3.Connection:
        logging.getLogger("gpo_local").warning(
            "memo cache %s is damaged: set aside as %s.corrupt, starting anew", self.path, self.path.name
        )
        for suffix in ("", "-wal", "-shm"):
            part = self.path.with_name(self.path.name + suffix)
            if part.exists():
                part.replace(part.with_name(self.path.name + ".corrupt" + suffix))
        return self._open()

    def _recovering(self, action, fallback):
        if self.db is None:
            return fallback
        try:
            return action()
        except sqlite3.DatabaseError as error:
            if storage_trouble(error) or not self.writable:  # a file we only read is never set aside
                if self.writable:
                    self._degrade(error, "without writing to it")
                return fallback
            if not is_corrupt(error):
                raise  # busy (locked) or a bug: neither is damage
            self.db.close()
            self.db = self._replace_corrupt()
            return action()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        return self._recovering(lambda: self._get_many(keys), {})

    def _get_many(self, keys: Sequence[str]) -> dict[str, str]:
        found = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT key, reply FROM replies WHERE key IN ({marks})", chunk))
        return found

    def put_many(self, items: dict[str, str]) -> None:
        if self.writable:
            self._recovering(lambda: self._put_many(items), None)

    def _put_many(self, items: dict[str, str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO replies (key, reply) VALUES (?, ?)", items.items())
            faults.point("memo-write")
        faults.point("memo-committed")
        if faults.triggers("memo-torn"):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with self.path.open("r+b") as handle:
                handle.truncate(self.path.stat().st_size // 2)
            faults.kill()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


class MemoizedLLM(WrappedLLM):
    """An LLM that answers from the memo where it can and asks the wrapped model for the rest.
    `hits` and `misses` count generations, for reports and tests."""

    def __init__(self, llm: LLM, memo: Memo):
        super().__init__(llm)
        self.memo = memo
        self.hits = self.misses = 0

    def generate(
        self,
        conversations,
        *,
        max_tokens,
        temperature=0.0,
        seeds=None,
        stop=(),
        grammar=None,
        copy_guard=None,
        min_p=0.0,
    ):
        seeds = list(seeds) if seeds is not None else [None] * len(conversations)
        keys = [
            memo_key(
                self.llm.fingerprint,
                c,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=s,
                stop=stop,
                grammar=grammar,
                copy_guard=copy_guard,
                min_p=min_p,
            )
            for c, s in zip(conversations, seeds)
        ]
        constrained = sampler_options(grammar, copy_guard, min_p)
        found = self.memo.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo and temperature > 0:
            # Sampled replies of one call are generated together or not at all: a sample can
            # depend, in its last bits, on the batch it was decoded in, so regenerating only the
            # missing ones could give other replies than the call gave the first time.
            todo = list(range(len(keys)))
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            replies = self.llm.generate(
                [conversations[i] for i in todo],
                max_tokens=max_tokens,
                temperature=temperature,
                seeds=[seeds[i] for i in todo],
                stop=stop,
                **constrained,
            )
            fresh = {keys[i]: r for i, r in zip(todo, replies)}
            self.memo.put_many(fresh)
            found.update(fresh)
        return [found[k] for k in keys]

    def generate_two_rounds(self, first, follow_up, *, max_tokens, temperature=0.0):
        """Both rounds from the memo where it has them; the rest in one call to the wrapped model
        (backends.two_rounds), whose first and second replies are then stored under the same
        keys that `generate` uses, so either path finds what the other stored."""
        first_keys = [self._round_key(c, max_tokens[0], temperature) for c in first]
        found = self.memo.get_many(first_keys)
        out: list = [None] * len(first)
        todo, second_todo = [], []  # chains to run whole; second turns whose first turn is stored
        for i, k in enumerate(first_keys):
            if k not in found:
                todo.append(i)
                continue
            conversation = follow_up(i, found[k])
            if conversation is None:
                out[i] = (found[k], None)
            else:
                second_todo.append(
                    (i, conversation, self._round_key(conversation, max_tokens[1], temperature))
                )
        seconds = self.memo.get_many([k for _, _, k in second_todo])
        missing = [(i, c, k) for i, c, k in second_todo if k not in seconds]
        self.hits += len(first) - len(todo) + len(second_todo) - len(missing)
        fresh: dict[str, str] = {}
        if missing:  # rare: a run stopped between storing the two rounds
            answers = self.llm.generate(
                [c for _, c, _ in missing], max_tokens=max_tokens[1], temperature=temperature
            )
            self.misses += len(missing)
            fresh.update({k: a for (_, _, k), a in zip(missing, answers)})
        for i, c, k in second_todo:
            out[i] = (found[first_keys[i]], seconds.get(k, fresh.get(k)))
        if todo:
            self._run_chains(first, todo, follow_up, first_keys, out, fresh, max_tokens, temperature)
        if fresh:
            self.memo.put_many(fresh)
        return out

    def _round_key(self, conversation, limit: int, temperature: float) -> str:
        """A turn's memo key: the one `generate` uses for the same call without seed or stop."""
        return memo_key(
            self.llm.fingerprint,
            conversation,
            max_tokens=limit,
            temperature=temperature,
            seed=None,
            stop=(),
        )

    def _run_chains(self, first, todo, follow_up, first_keys, out, fresh, max_tokens, temperature) -> None:
        """Run the chains `todo` (indices into `first`) whole on the wrapped model
        (backends.two_rounds); each chain's replies go into `out`, and into `fresh` under the
        keys `generate` uses."""
        second_keys: dict[int, str] = {}

        def remembered_follow_up(j, reply):
            conversation = follow_up(todo[j], reply)
            if conversation is not None:
                second_keys[j] = self._round_key(conversation, max_tokens[1], temperature)
            return conversation

        pairs = two_rounds(
            self.llm,
            [first[i] for i in todo],
            remembered_follow_up,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        for j, (reply, second) in enumerate(pairs):
            out[todo[j]] = (reply, second)
            fresh[first_keys[todo[j]]] = reply
            if second is not None:
                fresh[second_keys[j]] = second
        self.misses += len(todo) + len(second_keys)
