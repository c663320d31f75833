"""One process per run directory: an OS file lock held for the run's life.

`optimize` takes an exclusive `flock` on `<run>/run.lock` before it loads a model and keeps it
until the process exits. The kernel drops a flock when its holder dies (even by SIGKILL), so a
lock file left behind by a dead process is never stale in the way a pid file is: the next run
simply takes it over. The file's content is only the holder's pid, written after the lock is
taken, so that a refused second process can name the holder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from gpo_local.errors import RunLockedError
from gpo_local.runs import faults

LOCK_NAME = "run.lock"

# Held locks by run directory: open file descriptors closed only at exit (or by release()),
# which is what keeps the flock for the run's life.
_held: dict[Path, int] = {}


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def lock_run(run_dir: Path) -> Path:
    """Create `run_dir` if needed and take its lock; a second process gets a RunLockedError
    naming the holder's pid. OS errors (a read-only or full disk, a file where the directory
    should be) propagate: the CLI turns them into one line before any model loads."""
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _held:
        return run_dir / LOCK_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunLockedError(
            f"{run_dir} is in use by another gpo-local process (pid {holder}): wait for it to "
            f"finish or stop it, then rerun (with --resume to continue its run)"
        ) from None
    except OSError:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as error:  # a full disk: name the lock file (a write on a descriptor names none)
        os.close(fd)
        raise type(error)(error.errno, error.strerror, str(path)) from None
    _held[key] = fd
    faults.point("run-lock")
    return path


def release(run_dir: Path) -> None:
    """Drop the lock early (tests; a process that ends drops it anyway)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)


def running_pid(run_dir: Path) -> str | None:
    """The pid of the process holding the run's lock ("unknown" if unreadable), or None when no
    process holds it. Probes with a shared lock it drops at once; never creates the lock file."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no run was ever started here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the probe's shared lock
    return None
