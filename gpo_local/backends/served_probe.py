"""What a served model's server is (served.py): the models it lists, the one a spec names, the
server's kind, what is behind the model's name, its context size and its tokenizer.

Each is asked with a few quick requests, each to an endpoint that only one kind of server has:
llama-server's `/props` (the model path and context size), llama-cpp-python's token counter
(whose model id is the GGUF path), vLLM's model entry (`max_model_len`, the model root), Ollama's
`/api/version`, `/api/tags` (the digest) and `/api/show`. What a server does not report stays
unknown: no identity, no context size, no tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from gpo_local.backends.served_http import PROBE_TIMEOUT, HttpClient, clip
from gpo_local.errors import ConfigError, ServerError


@dataclass
class ServerFacts:
    """What the server reports: its kind, the model's identity (empty: unknown), its context
    size (None: unknown) and a token counter (None: no tokenize endpoint)."""

    kind: str = "openai-compatible"
    identity: dict = field(default_factory=dict)
    n_ctx: int | None = None
    tokenizer: Callable[[str], int | None] | None = None


def served_models(http: HttpClient, base_url: str) -> dict[str, dict]:
    """The served models' entries of `GET /v1/models`, by model id."""
    listing = http.call(
        "GET",
        f"{base_url}/models",
        timeout=PROBE_TIMEOUT,
        what="listing the served models (GET /v1/models)",
    )
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        raise ServerError(
            f"served model at {base_url}: GET /v1/models gave no model list ({clip(json.dumps(listing))!r})"
        )
    return {str(e["id"]): e for e in entries if isinstance(e, dict) and e.get("id") is not None}


def choose_model(base_url: str, requested: str | None, names: list[str]) -> str:
    """The served model a spec names: the one requested, else the only one served."""
    listed = ", ".join(names) or "none"
    if requested is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise ServerError(f"served model at {base_url}: the server lists no model")
        raise ConfigError(
            f"the server at {base_url} serves several models ({listed}): name one as {base_url}#NAME"
        )
    for candidate in (requested, f"{requested}:latest"):  # Ollama's names carry a default tag
        if candidate in names:
            return candidate
    raise ConfigError(
        f"the server at {base_url} does not serve a model named {requested!r} (it serves: {listed})"
    )


def identify(http: HttpClient, root_url: str, name: str, entry: dict) -> ServerFacts:
    """The facts of the server at `root_url` serving `name` (`entry`: its `GET /v1/models` entry)."""
    props = http.call("GET", f"{root_url}/props", what="GET /props", timeout=PROBE_TIMEOUT, optional=True)
    if isinstance(props, dict) and props.get("model_path"):
        settings = props.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        return ServerFacts(
            kind="llama-server",
            identity={"model_path": str(props["model_path"])},
            n_ctx=_positive_int(n_ctx if n_ctx is not None else props.get("n_ctx")),
            tokenizer=LlamaServerTokens(http, root_url),
        )
    counter = LlamaCppPythonTokens(http, root_url)
    if counter("") is not None:
        # llama-cpp-python's server names each model by its alias, which is the GGUF path
        # given to --model unless --model_alias renamed it.
        identity = {"model_path": name} if name.lower().endswith(".gguf") else {}
        return ServerFacts(kind="llama-cpp-python", identity=identity, tokenizer=counter)
    if entry.get("owned_by") == "vllm" or "max_model_len" in entry:
        return ServerFacts(
            kind="vllm",
            identity={"root": str(entry["root"])} if entry.get("root") else {},
            n_ctx=_positive_int(entry.get("max_model_len")),
            tokenizer=VllmTokens(http, root_url, name),
        )
    version = http.call(
        "GET", f"{root_url}/api/version", what="GET /api/version", timeout=PROBE_TIMEOUT, optional=True
    )
    if isinstance(version, dict) and "version" in version:
        return ServerFacts(kind="ollama", identity=ollama_identity(http, root_url, name))
    return ServerFacts()


def ollama_identity(http: HttpClient, root_url: str, name: str) -> dict:
    """What is behind an Ollama model's name: its digest, else its details."""
    tags = http.call(
        "GET", f"{root_url}/api/tags", what="GET /api/tags", timeout=PROBE_TIMEOUT, optional=True
    )
    for model in (tags or {}).get("models", []) if isinstance(tags, dict) else []:
        named = isinstance(model, dict) and name in (model.get("name"), model.get("model"))
        if named and model.get("digest"):
            return {"digest": str(model["digest"])}
    shown = http.call(
        "POST",
        f"{root_url}/api/show",
        {"model": name},
        what="POST /api/show",
        timeout=PROBE_TIMEOUT,
        optional=True,
    )
    details = shown.get("details") if isinstance(shown, dict) else None
    if isinstance(details, dict) and details:
        return {
            "details": {key: details[key] for key in sorted(details)},
            "modified_at": shown.get("modified_at"),
        }
    return {}


class LlamaServerTokens:
    """Token counts from llama-server's `POST /tokenize` (None where it gives none)."""

    def __init__(self, http: HttpClient, root_url: str):
        self.http, self.root_url = http, root_url

    def __call__(self, text: str) -> int | None:
        reply = self.http.call(
            "POST",
            f"{self.root_url}/tokenize",
            {"content": text, "add_special": False},
            what="POST /tokenize",
            timeout=PROBE_TIMEOUT,
            optional=True,
        )
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        return len(tokens) if isinstance(tokens, list) else None


class LlamaCppPythonTokens:
    """Token counts from llama-cpp-python's `POST /extras/tokenize/count`. It always adds the
    model's BOS token where the model has one: counted once, as the count of the empty text."""

    def __init__(self, http: HttpClient, root_url: str):
        self.http, self.root_url = http, root_url
        self.bos_tokens = 0

    def __call__(self, text: str) -> int | None:
        reply = self.http.call(
            "POST",
            f"{self.root_url}/extras/tokenize/count",
            {"input": text},
            what="POST /extras/tokenize/count",
            timeout=PROBE_TIMEOUT,
            optional=True,
        )
        count = reply.get("count") if isinstance(reply, dict) else None
        if not isinstance(count, int):
            return None
        if text == "":
            self.bos_tokens = count
            return count
        return max(0, count - self.bos_tokens)


class VllmTokens:
    """Token counts from vLLM's `POST /tokenize` for the served model `model`."""

    def __init__(self, http: HttpClient, root_url: str, model: str):
        self.http, self.root_url, self.model = http, root_url, model

    def __call__(self, text: str) -> int | None:
        reply = self.http.call(
            "POST",
            f"{self.root_url}/tokenize",
            {"model": self.model, "prompt": text, "add_special_tokens": False},
            what="POST /tokenize",
            timeout=PROBE_TIMEOUT,
            optional=True,
        )
        count = reply.get("count") if isinstance(reply, dict) else None
        return count if isinstance(count, int) else None


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
