"""Hugging Face datasets as tasks (`hf:<id>`): read from the local cache with the hub switched
off; only a dataset that is not cached is fetched, after a quick reachability check."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from gpo_local.core import Example
from gpo_local.errors import DataError, OptionValue
from gpo_local.tasks.offline import HubOffline
from gpo_local.tasks.readers import SPLITS, record_fields

HUB_PREFIX = "hf:"
HUB_SPLITS = {"train": "train", "eval": "validation", "test": "test", "format": "train"}


def hub_split_map(mapping: dict[str, str] | None) -> dict[str, str]:
    for role in mapping or {}:
        if role not in SPLITS:
            raise DataError(
                OptionValue("splits"), f": unknown split role {role!r}; known: {', '.join(SPLITS)}"
            )
    explicit = set((mapping or {}).values())
    # A dataset split the user mapped to one role is not also used by a default role (eval=test
    # must not leave test=test behind: the test score would be the dev score).
    chosen = {role: name for role, name in HUB_SPLITS.items() if name not in explicit or role == "format"}
    chosen.update(mapping or {})
    return chosen


def check_hub_reachable(label: str) -> None:
    """Fail at once, in one line, when the hub cannot be reached (instead of the libraries'
    retries with back-off, which take half a minute and print a warning each)."""

    import huggingface_hub.constants as hub

    url = urlparse(hub.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise DataError(
            f"Hugging Face dataset {label} is not in the local cache and {host} cannot be reached "
            f"({error.strerror or error}); connect to the network once, or use local files"
        ) from None


def load_hub(
    dataset_id: str,
    config: str | None,
    mapping: dict[str, str] | None,
    input_field: str | None,
    target_field: str | None,
) -> dict[str, tuple[Example, ...]]:
    import datasets
    import huggingface_hub.constants as hub
    from huggingface_hub.utils import logging as hub_logging

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    hub_logging.set_verbosity_error()
    label = dataset_id + (f" (config {config!r})" if config else "")
    roles = hub_split_map(mapping)  # a bad mapping fails before any loading
    try:
        with HubOffline():
            loaded = datasets.load_dataset(dataset_id, config)
    except Exception as offline_error:
        if hub.HF_HUB_OFFLINE:  # the user asked for offline mode: do not try the network
            first = str(offline_error).strip().splitlines()[0] if str(offline_error).strip() else ""
            raise DataError(
                f"Hugging Face dataset {label} is not in the local cache and HF_HUB_OFFLINE is set ({first})"
            ) from None
        check_hub_reachable(label)
        try:  # not cached: this is the one place where the project goes to the network
            loaded = datasets.load_dataset(dataset_id, config)
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(
                f"cannot load Hugging Face dataset {label}: not in the local cache, and from the hub: {first}"
            ) from None
    available = ", ".join(loaded)
    splits = {}
    for role, name in roles.items():
        if name not in loaded:
            if role in (mapping or {}):
                raise DataError(f"Hugging Face dataset {label} has no split {name!r} (it has: {available})")
            continue
        splits[role] = tuple(
            Example(id=f"{name}-{i}", input=question, target=target)
            for i, record in enumerate(loaded[name], 1)
            for question, target in [
                record_fields(record, f"{dataset_id}[{name}] row {i}", input_field, target_field)
            ]
        )
    if "eval" not in splits:
        raise DataError(
            f"Hugging Face dataset {label} has no split {roles['eval']!r} for the eval (dev) split "
            f"(it has: {available}); map one with ",
            OptionValue("splits", {"eval": "NAME"}),
        )
    return splits
