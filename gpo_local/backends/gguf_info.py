"""What a GGUF file says about its model, read from the header alone (no weights are loaded):
the training context and the sizes that set the KV cache per token. Used to bound options
(--n-ctx, --parallel) before any model loads.

The header (GGUF v2/v3): magic `GGUF`, version (u32), tensor count and key-value count (u64),
then the key-value pairs, each a string key, a value type (u32) and the value. Reading stops
once the keys needed are found; the tokenizer's long arrays come later in the files we use.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gpo_local.errors import ModelError

# Value types: fixed-size scalars (struct format), string (8), array (9).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_WANTED = (
    "context_length",
    "block_count",
    "embedding_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
)
KV_BYTES = 2  # llama.cpp's default KV cache type is f16


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    context_length: int | None
    layers: int | None
    embedding: int | None
    heads: int | None
    kv_heads: int | None
    key_length: int | None = None
    value_length: int | None = None

    def kv_bytes_per_token(self) -> int | None:
        """Bytes of KV cache one token holds in every layer (f16 keys and values)."""
        if not (self.layers and self.embedding and self.heads):
            return None
        head = self.embedding // self.heads
        kv_heads = self.kv_heads or self.heads
        width = kv_heads * ((self.key_length or head) + (self.value_length or head))
        return self.layers * width * KV_BYTES


def _read(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _string(handle: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _read(handle, 8))
    return _read(handle, length).decode("utf-8", errors="replace")


def _value(handle: BinaryIO, kind: int):
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, _read(handle, struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(handle)
    if kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", _read(handle, 12))
        if item_kind in _SCALARS:  # skipped: no array is needed
            handle.seek(count * struct.calcsize(_SCALARS[item_kind]), 1)
        else:
            for _ in range(count):
                _value(handle, item_kind)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def read_gguf_info(path: Path) -> GGUFInfo:
    """The architecture keys of the GGUF file at `path`; a file that is not GGUF is a ModelError."""
    found: dict[str, object] = {}
    try:
        with open(path, "rb") as handle:
            if _read(handle, 4) != b"GGUF":
                raise ModelError(f"{path} is not a GGUF file")
            _version, _tensors, pairs = struct.unpack("<IQQ", _read(handle, 20))
            architecture = None
            for _ in range(pairs):
                key = _string(handle)
                value = _value(handle, struct.unpack("<I", _read(handle, 4))[0])
                if key == "general.architecture":
                    architecture = value
                elif architecture and key.startswith(architecture + "."):
                    found[key[len(architecture) + 1 :]] = value
                if architecture and all(k in found for k in _WANTED[:5]):
                    break
    except (EOFError, ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: unreadable GGUF header ({error or 'truncated'})") from None
    return GGUFInfo(
        architecture=architecture or "?",
        context_length=found.get("context_length"),
        layers=found.get("block_count"),
        embedding=found.get("embedding_length"),
        heads=found.get("attention.head_count"),
        kv_heads=found.get("attention.head_count_kv"),
        key_length=found.get("attention.key_length"),
        value_length=found.get("attention.value_length"),
    )
