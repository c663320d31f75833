"""The FAISS index of the trajectory's prompts (relevance selection reads its similarities).

The JSON-lines file in the run directory is the source of truth (runs.JsonlLog, trajectory.py);
the index is derived from it. The index is an exact inner-product index (IndexFlatIP) over normalized
embeddings, so its scores are cosine similarities. Its metadata (embedder fingerprint,
dimension, one hash per row) is checked on open: a missing, torn or mismatched index is rebuilt
from the trajectory instead of being trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from gpo_local.backends.embeddings import Embedder
from gpo_local.runs import faults
from gpo_local.runs.directory import write_json_atomic
from gpo_local.runs.storage import write_bytes_synced


def _row_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class TrajectoryIndex:
    def __init__(self, directory: Path, embedder: Embedder, name: str = "trajectory"):
        import faiss

        self._faiss = faiss
        self.embedder = embedder
        self.index_path = directory / f"{name}.faiss"
        self.meta_path = directory / f"{name}.json"
        self.rows: list[str] = []
        self.index = faiss.IndexFlatIP(embedder.dimension)
        directory.mkdir(parents=True, exist_ok=True)

    def _load(self) -> bool:
        """Load the stored index if it is intact and built with this embedder."""

        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            index = self._faiss.read_index(str(self.index_path))
        except Exception:  # missing or torn: rebuild
            return False
        if (
            meta.get("fingerprint") != self.embedder.fingerprint
            or meta.get("dimension") != index.d
            or index.d != self.embedder.dimension
            or len(meta.get("rows", [])) != index.ntotal
        ):
            return False
        self.index, self.rows = index, list(meta["rows"])
        return True

    def sync(self, prompts: Sequence[str]) -> None:
        """Make the index hold exactly `prompts` (the trajectory, oldest first), embedding only
        what is missing, and write it to disk (write-then-rename)."""
        wanted = [_row_id(p) for p in prompts]
        if not self.rows and not self._load():
            self.rows, self.index = [], self._faiss.IndexFlatIP(self.embedder.dimension)
        if self.rows != wanted[: len(self.rows)]:  # diverged (another run's index): start over
            self.rows, self.index = [], self._faiss.IndexFlatIP(self.embedder.dimension)
        missing = list(prompts[len(self.rows) :])
        if not missing and len(self.rows) == len(wanted):
            return
        self.index.add(self.embedder.encode(missing))
        self.rows = wanted
        tmp = self.index_path.with_name(self.index_path.name + ".tmp")
        # Serialized here and written by Python, fsynced; faiss's own writer only prints
        # a failed close (a full disk) and leaves a truncated file to be renamed into place.

        write_bytes_synced(tmp, self._faiss.serialize_index(self.index).tobytes())
        faults.point("index-tmp")
        if faults.triggers("index-torn"):
            self.index_path.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
            faults.kill()
        os.replace(tmp, self.index_path)
        faults.point("index-meta")
        write_json_atomic(
            self.meta_path,
            {
                "fingerprint": self.embedder.fingerprint,
                "dimension": self.embedder.dimension,
                "rows": self.rows,
            },
        )

    def similarities(self, query: str) -> list[float]:
        """Cosine similarity of `query` to every row, in row order."""
        if self.index.ntotal == 0:
            return []
        scores, ids = self.index.search(self.embedder.encode([query]), self.index.ntotal)
        by_row = np.zeros(self.index.ntotal, dtype=np.float32)
        by_row[ids[0]] = scores[0]
        return by_row.tolist()
