"""File-system trouble as one line: what failed, on which path, and what to do.

Three parts:
* `storage_error(error)` words an OSError as a
  StorageError; the CLI's one error boundary (cli.Cli.invoke) calls it for every OSError, so no
  traceback reaches the user and every file the run already recorded stays as it was (records
  are appended and fsynced, JSON files replaced whole: a failed write loses only itself);
* preflight checks that can fail before a model loads (`check_home`, `check_run_dir`);
* the atomic and synced writes every run file goes through (a damaged run file is classified
  by runs/health.py).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from gpo_local.errors import OptionValue, StorageError
from gpo_local.runs import faults

RUN_DIR = OptionValue("run_dir")
# What to do about each errno, said after the path and the OS's own words (message parts, errors.py;
# `--resume` is the command line's: the Python API starts new runs only).
ADVICE = {
    errno.ENOSPC: ("free some space (or choose another ", RUN_DIR, " / GPO_LOCAL_HOME)"),
    errno.EDQUOT: "free some space within your quota",
    errno.EROFS: ("the file system is mounted read-only: choose a writable ", RUN_DIR, " / GPO_LOCAL_HOME"),
    errno.EACCES: ("check its owner and permissions (or choose another ", RUN_DIR, " / GPO_LOCAL_HOME)"),
    errno.EPERM: "check its permissions and attributes (lsattr; chattr -i lifts an immutable flag)",
    errno.EISDIR: "a directory is where a file is expected: move it away",
    errno.ENOTDIR: "a file is where a directory is expected: move it away or choose another path",
    errno.EEXIST: "a file is where a directory is expected: move it away or choose another path",
    errno.ENOENT: "check that the path exists",
    errno.EIO: "the device reports an I/O error: check the disk",
}


# Errors a write elsewhere avoids: what `report` advises instead of another run directory.
UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


def storage_error(
    error: OSError, path: Path | str | None = None, *, advice: str | None = None
) -> StorageError:
    """One line for an OSError: '<path>: <reason>: <advice>' (`advice` replaces the errno's own)."""
    where = path or error.filename or "a file"
    if error.filename2:
        where = f"{where} -> {error.filename2}"
    reason = error.strerror or str(error)
    advice = advice or ADVICE.get(
        error.errno, "check the path and the disk, then rerun (with --resume for a run)"
    )
    return StorageError(f"{where}: {reason.lower()}: ", *((advice,) if isinstance(advice, str) else advice))


def check_home(home: Path) -> None:
    """GPO_LOCAL_HOME must be a directory (or not exist yet): checked before any model loads."""
    if home.exists() and not home.is_dir():
        raise StorageError(
            f"GPO_LOCAL_HOME {home} is a file, not a directory: point GPO_LOCAL_HOME at a directory "
            "(or move the file away)"
        )


# Files of an existing run that a resumed run writes to, checked before any model loads.
RUN_FILES = (
    "config.json",
    "trajectory.jsonl",
    "events.jsonl",
    "indexes/trajectory.json",
    "indexes/trajectory.faiss",
)


def check_run_dir(run_dir: Path) -> None:
    """The run directory and the run files a resume rewrites are writable: opening each for
    appending (without writing) fails the way the real write would (EROFS, EACCES, an immutable
    flag's EPERM). The directory itself was already written by the run lock (locks.py)."""
    for name in RUN_FILES:
        path = run_dir / name
        if not path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.close(fd)
    probe = run_dir / ".write-probe"  # a new file (the atomic JSON writes create *.tmp files)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.close(fd)
    except OSError as error:  # the directory is at fault: name it, not the probe
        raise type(error)(error.errno, error.strerror, str(run_dir)) from None
    finally:
        if probe.exists():
            probe.unlink()


@contextlib.contextmanager
def naming(path: Path):
    """Give an OSError raised by a write, flush or fsync on an open file (which carries no file
    name) the name of the file, so that the one line can say which file failed."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            raise type(error)(error.errno, error.strerror, str(path)) from error
        raise


def write_bytes_synced(path: Path, data: bytes) -> None:
    """Write and fsync `path`; on failure (a full disk) remove the partial file and raise."""
    try:
        with naming(path), path.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, fault_point: str | None = None) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the whole new one, never
    a part: written to `<name>.tmp` beside it and fsynced, then renamed over it. A failed write (a
    full or read-only disk) removes the temporary file and raises, naming the file. `fault_point`
    names the kill point between the write and the rename (runs/faults.py)."""
    tmp = path.with_name(path.name + ".tmp")
    write_bytes_synced(tmp, data.encode("utf-8") if isinstance(data, str) else data)
    if fault_point:
        faults.point(fault_point)
    os.replace(tmp, path)
