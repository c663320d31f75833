"""Served models: the `LLM` protocol over an OpenAI-compatible HTTP server on the lab's network
(llama.cpp's llama-server, llama-cpp-python's server, Ollama, LM Studio, vLLM), for people who
already run their models that way. Standard library only (urllib, json, a thread pool): nothing
to install for a client.

A model is named by a spec `URL` or `URL#name`: `http://127.0.0.1:8080/v1#qwen2.5-0.5b`. A bare
URL works where the server serves one model (`GET /v1/models`); a URL without a path means
`/v1`. The API key, if the server wants one, is read from an environment variable at each
request (`GPO_LOCAL_API_KEY` unless told otherwise): it is never stored on the model, in its
fingerprint or in its description, so it never reaches a run directory.

Generation sends one `/v1/chat/completions` request per conversation, up to `parallel` at a time
(the server's slots do the batching). Sampling asks for what the in-process sampler does: plain
softmax at the temperature (top_k 0, top_p 1, repeat_penalty 1), min-p truncation when asked,
temperature 0 for greedy, and the request's seed. What a server cannot do is said, not faked:
`supports_grammar` is true only where the server was seen to honour a GBNF `grammar` field (a
one-request probe), and the copy guard (backends/copy_guard.py) needs the sampler's token
choices, which HTTP does not expose: `supports_copy_guard` is false and `capabilities()` says so
for the run's records.

The fingerprint (the memo key's model part) names the address, the served model's name and, where
the server reports it, what is behind the name: llama-server's `/props` model path, the model file
path that llama-cpp-python's server uses as its model id, Ollama's digest, vLLM's model root. Where
nothing is reported, `identity_known` is false: cached replies then assume that the model behind
the name did not change, which the app should say once.

What the server is, is asked when the model is created (served_probe.py); the requests go
through served_http.py, which retries a server that is starting, busy or restarting.
"""

from __future__ import annotations

import json
import math
import threading
import urllib.parse
from typing import Callable, Sequence

from gpo_local.backends import Conversation, FollowUp, as_messages
from gpo_local.backends.served_http import (
    DEFAULT_API_KEY_VARIABLE,
    DEFAULT_TIMEOUT,
    RETRY_FIRST_WAIT,
    RETRY_TOTAL,
    RETRY_TRIES,
    HttpClient,
    Retry,
    chat_body,
    completion_text,
    run_parallel,
)
from gpo_local.backends.served_probe import choose_model, identify, served_models
from gpo_local.errors import ConfigError, ModelError
from gpo_local.runs import faults

DEFAULT_PARALLEL = 4
# fits(): the chat template's tokens around each message and before the reply, on top of the
# contents' own tokens (a generous bound for the templates of common chat models).
MESSAGE_FRAMING_TOKENS = 8
REPLY_HEADER_TOKENS = 8
# The grammar probe: a reply that can only be this word if the server honours `grammar`.
GRAMMAR_PROBE_WORD = "zebra"
_TOKEN_CACHE_SIZE = 8192


def is_served_spec(spec: str) -> bool:
    """Whether a model spec names a served model (an http:// or https:// URL), not a GGUF."""
    return isinstance(spec, str) and spec.strip().lower().startswith(("http://", "https://"))


def parse_served_spec(spec: str) -> tuple[str, str | None]:
    """(the API's base URL without a trailing slash, the served model's name or None) of
    `URL` or `URL#name`. A URL without a path gets `/v1`, the OpenAI-compatible API's root."""
    url, _, name = spec.strip().partition("#")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"served model {spec!r} is not an http:// or https:// URL with a host "
            "(expected URL or URL#model-name, e.g. http://127.0.0.1:8080/v1#qwen2.5-0.5b)"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"served model {spec!r}: the URL may not carry a query")
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"served model {spec!r} has an invalid port") from None
    path = parts.path.rstrip("/") or "/v1"
    base = urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))
    return base, name.strip() or None


class ServedModel:
    """One model behind an OpenAI-compatible server; implements the `LLM` protocol. The server
    is asked what it is when the model is created (an unreachable server fails there, as a
    missing GGUF would), so a run does not start against nothing."""

    # The copy guard bans copied token runs inside the sampler: not possible over HTTP.
    supports_copy_guard = False
    context_note = ""

    def __init__(
        self,
        spec: str,
        *,
        parallel: int = DEFAULT_PARALLEL,
        api_key_variable: str = DEFAULT_API_KEY_VARIABLE,
        timeout: float = DEFAULT_TIMEOUT,
        grammar: bool | None = None,
        n_ctx: int | None = None,
        tries: int = RETRY_TRIES,
        retry_wait: float = RETRY_FIRST_WAIT,
        retry_total: float = RETRY_TOTAL,
    ):
        """`grammar`: True/False to say whether the server honours GBNF grammars, None to find
        out with one short request when first asked. `n_ctx`: the context size where the server
        does not report it (llama-cpp-python's server, Ollama)."""
        if parallel < 1:
            raise ConfigError(f"parallel={parallel} must be >= 1")
        if n_ctx is not None and n_ctx < 1:
            raise ConfigError(f"n_ctx={n_ctx} must be >= 1")
        self.spec = spec
        self.base_url, requested_name = parse_served_spec(spec)
        # The server's root, where the non-OpenAI endpoints live (/props, /tokenize, /api/...).
        self.root_url = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        self.parallel = parallel
        self.http = HttpClient(
            self.base_url,
            api_key_variable=api_key_variable,
            timeout=timeout,
            tries=tries,
            first_wait=retry_wait,
            total=retry_total,
        )
        self._grammar_setting = grammar
        self._grammar_probed: bool | None = None
        self._probe_lock = threading.Lock()
        self._token_counts: dict[str, int] = {}
        self._token_lock = threading.Lock()
        self._tokenizer: Callable[[str], int | None] | None = None
        self.server_kind = "openai-compatible"
        self.identity: dict = {}
        self._reported_n_ctx: int | None = None
        self._n_ctx_setting = n_ctx
        self.model_name = self._discover(requested_name)

    # -- what the server is ---------------------------------------------------------------------

    def _discover(self, requested: str | None) -> str:
        """The served model's name, with what the server reports about it (served_probe.py)."""
        models = served_models(self.http, self.base_url)
        name = choose_model(self.base_url, requested, list(models))
        facts = identify(self.http, self.root_url, name, models[name])
        self.server_kind, self.identity = facts.kind, facts.identity
        self._reported_n_ctx, self._tokenizer = facts.n_ctx, facts.tokenizer
        return name

    @property
    def identity_known(self) -> bool:
        """Whether the fingerprint names what is behind the model's name (a file path, a digest);
        if not, cached replies assume that the model behind the name did not change."""
        return bool(self.identity)

    @property
    def fingerprint(self) -> str:
        """Address, served name and reported identity: stable for one server and model, and
        without the API key."""
        named = {"url": self.base_url, "model": self.model_name, "identity": self.identity}
        return "served:" + json.dumps(named, sort_keys=True, ensure_ascii=False)

    @property
    def name(self) -> str:
        return f"{self.base_url}#{self.model_name}"

    def capabilities(self) -> dict:
        """What the server's replies honour, for the run's records."""
        return {
            "grammar": self.supports_grammar,
            "copy_guard": self.supports_copy_guard,
            "min_p": self.server_kind in ("llama-server", "llama-cpp-python", "vllm"),
            "tokenizer": self._tokenizer is not None,
            "seed": True,
        }

    def describe(self) -> dict:
        """The served model for result files and reports (never the API key)."""
        return {
            "backend": "served",
            "url": self.base_url,
            "model": self.model_name,
            "server": self.server_kind,
            "identity": dict(self.identity),
            "identity_known": self.identity_known,
            "n_ctx": self.n_ctx,
            "capabilities": self.capabilities(),
        }

    def __repr__(self) -> str:
        return f"ServedModel({self.name!r}, server={self.server_kind!r})"

    def __getstate__(self) -> dict:
        # Picklable (a Ray worker can get a copy that talks to the same server): without the locks.
        state = dict(self.__dict__)
        del state["_probe_lock"], state["_token_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._probe_lock, self._token_lock = threading.Lock(), threading.Lock()

    # -- grammar support --------------------------------------------------------------------------

    @property
    def supports_grammar(self) -> bool:
        """Whether the server honours a GBNF `grammar` field: as told, else probed once with a
        grammar that allows one word only (a server that ignores the field answers freely)."""
        if self._grammar_setting is not None:
            return self._grammar_setting
        with self._probe_lock:
            if self._grammar_probed is None:
                self._grammar_probed = self._probe_grammar()
            return self._grammar_probed

    def _probe_grammar(self) -> bool:
        body = chat_body(
            "Say one word.",
            model=self.model_name,
            vllm=self.server_kind == "vllm",
            max_tokens=8,
            temperature=0.0,
            seed=0,
            stop=(),
            grammar=f'root ::= "{GRAMMAR_PROBE_WORD}"',
            min_p=0.0,
        )
        url = f"{self.base_url}/chat/completions"
        reply = self.http.call("POST", url, body, what="the grammar probe", optional=True)
        try:
            return completion_text(reply, url).strip() == GRAMMAR_PROBE_WORD
        except Retry:
            return False

    # -- tokens and context -------------------------------------------------------------------------

    @property
    def n_ctx(self) -> int | None:
        """The context size the server reports (llama-server's /props, vLLM's max_model_len),
        else the one given to the constructor, else None."""
        return self._reported_n_ctx if self._reported_n_ctx is not None else self._n_ctx_setting

    @property
    def eval_slots(self) -> int:
        return self.parallel

    def count_tokens(self, text: str) -> int:
        """Tokens of a text with the server's tokenizer where it has a tokenize endpoint, else
        its whitespace-separated words (as for any model without a tokenizer)."""
        if not text:
            return 0
        with self._token_lock:
            known = self._token_counts.get(text)
        if known is not None:
            return known
        count = self._tokenizer(text) if self._tokenizer is not None else None
        if count is None:
            return len(text.split())
        with self._token_lock:
            if len(self._token_counts) >= _TOKEN_CACHE_SIZE:
                self._token_counts.clear()
            self._token_counts[text] = count
        return count

    def _estimate_tokens(self, text: str) -> int:
        """Tokens of a conversation's text for fits(): the tokenizer's count, or, without one, a
        bound that errs on the long side (a token per three characters or per word)."""
        if self._tokenizer is not None:
            return self.count_tokens(text)
        return max(len(text.split()), math.ceil(len(text) / 3))

    def fits(self, conversation: Conversation) -> bool:
        """Whether the conversation leaves room for a reply in the context, counting the
        contents' tokens and a margin for the chat template's framing (the server renders the
        template; the API does not show it). True where the context size is unknown."""
        n_ctx = self.n_ctx
        if n_ctx is None:
            return True
        messages = as_messages(conversation)
        used = sum(
            self._estimate_tokens(str(m.get("content", ""))) + MESSAGE_FRAMING_TOKENS for m in messages
        )
        return used + REPLY_HEADER_TOKENS < n_ctx

    # -- generation -----------------------------------------------------------------------------------

    def _complete(
        self,
        conversation: Conversation,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        min_p: float = 0.0,
    ) -> str:
        url = f"{self.base_url}/chat/completions"
        body = chat_body(
            conversation,
            model=self.model_name,
            vllm=self.server_kind == "vllm",
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stop,
            grammar=grammar,
            min_p=min_p,
        )
        return self.http.call(
            "POST",
            url,
            body,
            what="a chat completion (POST /v1/chat/completions)",
            parse=lambda reply: completion_text(reply, url),
        )

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seeds: Sequence[int | None] | None = None,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        copy_guard=None,
        min_p: float = 0.0,
    ) -> list[str]:
        """One request per conversation. `copy_guard` is accepted and not honoured (see
        `supports_copy_guard`); a `grammar` for a server that does not honour one is an error."""
        if grammar is not None and not self.supports_grammar:
            raise ModelError(
                f"served model at {self.base_url} does not honour GBNF grammars; ask for free-form replies"
            )
        seeds = list(seeds) if seeds is not None else [None] * len(conversations)

        def one(index: int) -> str:
            return self._complete(
                conversations[index], max_tokens, temperature, seeds[index], stop, grammar, min_p
            )

        return run_parallel(one, len(conversations), self.parallel)

    def generate_two_rounds(
        self,
        first: Sequence[Conversation],
        follow_up: FollowUp,
        *,
        max_tokens: tuple[int, int],
        temperature: float = 0.0,
    ) -> list[tuple[str, str | None]]:
        """Each conversation's chain on one thread: its first turn, then at once its second turn
        (the conversation `follow_up` builds from the first reply: the first turn's messages, the
        reply, the follow-up question), so the server's slots stay busy across both rounds.
        `follow_up` is called under a lock: its callers expect one call at a time."""
        lock = threading.Lock()

        def chain(index: int) -> tuple[str, str | None]:
            reply = self._complete(first[index], max_tokens[0], temperature)
            faults.point("two-round-chain")  # a first turn ended, its second not yet sent
            with lock:
                conversation = follow_up(index, reply)
            if conversation is None:
                return reply, None
            return reply, self._complete(conversation, max_tokens[1], temperature)

        return run_parallel(chain, len(first), self.parallel)


def load_served(spec: str, **options) -> ServedModel:
    """The served model of a spec (`URL` or `URL#name`); options as ServedModel's."""
    return ServedModel(spec, **options)
