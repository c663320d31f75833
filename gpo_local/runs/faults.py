"""A testing hook for crash-safety tests: kill this process at a named point.

Set `GPO_LOCAL_FAULT=<point>:<n>` and the process sends itself SIGKILL the n-th time (1-based)
it reaches `<point>`. Nothing happens when the variable is unset, which is always the case
outside tests; the hook reads the variable once per process. The points:

    scoring            after a chunk of task-model generations was scored (evaluator.py)
    jsonl-append       before a trajectory record is written (runs.JsonlLog.append)
    jsonl-half-line    after half of a record's line was written and fsynced: a torn line
    jsonl-fsynced      after a record was written and fsynced
    index-tmp          after the FAISS index was written to its temporary file (trajectory.py)
    index-torn         after half of the FAISS file was written in place: a torn index
    index-meta         after the FAISS file was replaced, before its metadata was written
    memo-write         inside a memo transaction, before its commit (memo.py)
    memo-committed     after a memo transaction was committed
    memo-torn          after the memo database file was cut in half: a torn SQLite file

Run directories, locks, reports and model packs:

    run-lock               right after the run directory's lock was taken (locks.py)
    config-json-tmp        config.json's temporary file written, not yet renamed (runs.write_json_atomic)
    config-json-replaced   config.json renamed into place
    result-json-tmp        result.json's temporary file written, not yet renamed
    result-json-replaced   result.json renamed into place, before the command printed it
    trajectory-json-tmp    the index metadata's temporary file written, not yet renamed
    resume-truncated       a resumed run cut its log after the last complete step (optimizer._replay)
    two-round-chain        the middle of a two-round chain: a first reply ended, its second turn not
                           yet admitted (backends: llama_cpp.generate_two_rounds, two_rounds)
    report-tmp             report.html's temporary file written, not yet renamed (report.py)
    bench-results-tmp      a bench results file's temporary file written, not yet renamed
                           (quality/results.py)
    events-append          before a progress event is appended to events.jsonl (progress.py)

    pack-chunk             a chunk of a model pack streamed into the temporary file (packs.py)
    pack-replaced          the assembled pack renamed into place, its trust sidecar not yet written
    race-round             a racing round scored and its eliminations made, the next round not yet
                           started (racing.race)

The "torn" points write a partial file on purpose before dying, to play what a crash on a
filesystem without ordered writes could leave; the recovery code must detect and repair it.
"""

from __future__ import annotations

import os
import signal

ENV = "GPO_LOCAL_FAULT"
POINTS = (
    "scoring",
    "jsonl-append",
    "jsonl-half-line",
    "jsonl-fsynced",
    "index-tmp",
    "index-torn",
    "index-meta",
    "memo-write",
    "memo-committed",
    "memo-torn",
    "run-lock",
    "config-json-tmp",
    "config-json-replaced",
    "result-json-tmp",
    "result-json-replaced",
    "trajectory-json-tmp",
    "resume-truncated",
    "two-round-chain",
    "report-tmp",
    "bench-results-tmp",
    "events-append",
    "pack-chunk",
    "pack-replaced",
    "race-round",
)

_armed: tuple[str, int] | None = None
_hits: dict[str, int] = {}
_read = False


def _arm() -> tuple[str, int] | None:
    global _armed, _read
    if not _read:
        _read = True
        value = os.environ.get(ENV, "")
        if value:
            point, _, count = value.partition(":")
            if point not in POINTS:
                raise ValueError(f"{ENV}={value!r}: unknown point {point!r}; known: {', '.join(POINTS)}")
            _armed = (point, int(count or 1))
    return _armed


def triggers(point: str) -> bool:
    """Count a visit to `point`; True when this visit is the one to die at. For points where
    the caller first writes a torn file, then calls `kill()`."""
    armed = _arm()
    if armed is None or armed[0] != point:
        return False
    _hits[point] = _hits.get(point, 0) + 1
    return _hits[point] == armed[1]


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """Die here if the hook is armed for this point and visit."""
    if triggers(name):
        kill()
