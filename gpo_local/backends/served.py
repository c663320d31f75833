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

A server that refuses connections, times out, answers 429 or 5xx, or sends a reply that is not
the JSON it should be gets a few more tries with exponential backoff, bounded in total time, then
one `ServerError` naming the address and what failed. Any other 4xx fails at once with the
server's own message: a retry would not change it.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Sequence

from gpo_local.backends import Conversation, FollowUp, as_messages
from gpo_local.errors import ConfigError, ModelError, ServerError
from gpo_local.runs import faults

DEFAULT_API_KEY_VARIABLE = "GPO_LOCAL_API_KEY"
DEFAULT_PARALLEL = 4
# A generation may wait behind the other requests in the server's queue (llama-cpp-python's
# server answers one at a time), so its timeout is generous; the probes are quick or absent.
DEFAULT_TIMEOUT = 600.0
PROBE_TIMEOUT = 15.0
# Retries: at most RETRY_TRIES tries, sleeping RETRY_FIRST_WAIT, then twice as long each time, and
# never retrying once RETRY_TOTAL seconds have passed since the first try.
RETRY_TRIES = 4
RETRY_FIRST_WAIT = 0.5
RETRY_TOTAL = 60.0
# fits(): the chat template's tokens around each message and before the reply, on top of the
# contents' own tokens (a generous bound for the templates of common chat models).
MESSAGE_FRAMING_TOKENS = 8
REPLY_HEADER_TOKENS = 8
# Sampling fields beyond OpenAI's own (servers that do not know them ignore them): no top-k, no
# repetition penalty, as in the in-process sampler. vLLM spells them its own way.
PLAIN_SAMPLING = {"top_p": 1.0, "top_k": 0, "repeat_penalty": 1.0}
PLAIN_SAMPLING_VLLM = {"top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0}
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


class _Retry(Exception):
    """A failure worth another try (the server may be starting, busy or restarting)."""


class HttpClient:
    """JSON over HTTP with the retry policy of the module docstring. The API key is read from
    the environment at each request and kept nowhere."""

    def __init__(
        self,
        address: str,
        *,
        api_key_variable: str = DEFAULT_API_KEY_VARIABLE,
        timeout: float = DEFAULT_TIMEOUT,
        tries: int = RETRY_TRIES,
        first_wait: float = RETRY_FIRST_WAIT,
        total: float = RETRY_TOTAL,
    ):
        self.address = address  # named in every error
        self.api_key_variable = api_key_variable
        self.timeout, self.tries, self.first_wait, self.total = timeout, max(1, tries), first_wait, total

    def _headers(self, has_body: bool) -> dict:
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        key = os.environ.get(self.api_key_variable, "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def call(
        self,
        method: str,
        url: str,
        body: dict | None = None,
        *,
        what: str,
        timeout: float | None = None,
        optional: bool = False,
        parse: Callable | None = None,
    ):
        """The decoded JSON reply, or `parse(reply)`. `parse` may raise _Retry for a reply that is
        JSON but not the one it should be: that is retried like a failed request. `optional`: an
        endpoint the server may not have; any HTTP error or a reply that is not JSON gives None
        at once (connection trouble is still retried and fatal)."""
        started = time.monotonic()
        wait_seconds = self.first_wait
        for attempt in range(1, self.tries + 1):
            try:
                reply = self._once(
                    method, url, body, what=what, timeout=timeout or self.timeout, optional=optional
                )
                return reply if parse is None else parse(reply)
            except _Retry as trouble:
                reason = str(trouble)
                if attempt == self.tries or time.monotonic() - started + wait_seconds > self.total:
                    break
                time.sleep(wait_seconds)
                wait_seconds *= 2
        raise ServerError(
            f"served model at {self.address}: {what} failed after {attempt} "
            f"{'try' if attempt == 1 else 'tries'}: {reason}"
        )

    def _once(self, method: str, url: str, body: dict | None, *, what: str, timeout: float, optional: bool):
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = self._headers(data is not None)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            message = _server_message(error)
            if optional:
                return None
            if error.code == 429 or error.code >= 500:
                raise _Retry(f"HTTP {error.code} from {url}: {message}") from None
            raise ServerError(
                f"served model at {self.address}: {what} was refused with HTTP {error.code}: {message}"
            ) from None
        except urllib.error.URLError as error:
            raise _Retry(f"cannot connect to {url} ({_reason(error.reason)})") from None
        except TimeoutError:
            raise _Retry(f"no reply from {url} within {timeout:g} s") from None
        except (http.client.HTTPException, ConnectionError, OSError) as error:
            raise _Retry(f"the connection to {url} broke ({_reason(error)})") from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if optional:
                return None
            text = _clip(raw.decode("utf-8", "replace"))
            raise _Retry(f"the reply from {url} is not JSON: {text!r}") from None


def _reason(reason) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    return str(reason) or type(reason).__name__


def _server_message(error: urllib.error.HTTPError) -> str:
    """The server's own words: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the text."""
    try:
        text = error.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return _clip(text) or str(error.reason)
    if isinstance(payload, dict):
        inner = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        if inner is not None:
            return _clip(inner if isinstance(inner, str) else json.dumps(inner))
    return _clip(text)


def _clip(text: str, width: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _completion_text(payload, url: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        shown = _clip(json.dumps(payload))
        raise _Retry(f"the reply from {url} has no choices[0].message.content: {shown!r}") from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _Retry(f"the reply from {url} has a message content that is not text")
    return content


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
        self._bos_tokens = 0  # llama-cpp-python's tokenizer adds them to every count
        self.server_kind = "openai-compatible"
        self.identity: dict = {}
        self._reported_n_ctx: int | None = None
        self._n_ctx_setting = n_ctx
        self.model_name = self._discover(requested_name)

    # -- what the server is ---------------------------------------------------------------------

    def _discover(self, requested: str | None) -> str:
        listing = self.http.call(
            "GET",
            f"{self.base_url}/models",
            timeout=PROBE_TIMEOUT,
            what="listing the served models (GET /v1/models)",
        )
        entries = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(entries, list):
            raise ServerError(
                f"served model at {self.base_url}: GET /v1/models gave no model list "
                f"({_clip(json.dumps(listing))!r})"
            )
        models = {str(e["id"]): e for e in entries if isinstance(e, dict) and e.get("id") is not None}
        name = self._choose(requested, list(models))
        self._identify(name, models[name])
        return name

    def _choose(self, requested: str | None, names: list[str]) -> str:
        listed = ", ".join(names) or "none"
        if requested is None:
            if len(names) == 1:
                return names[0]
            if not names:
                raise ServerError(f"served model at {self.base_url}: the server lists no model")
            raise ConfigError(
                f"the server at {self.base_url} serves several models ({listed}): name one as "
                f"{self.base_url}#NAME"
            )
        for candidate in (requested, f"{requested}:latest"):  # Ollama's names carry a default tag
            if candidate in names:
                return candidate
        raise ConfigError(
            f"the server at {self.base_url} does not serve a model named {requested!r} (it serves: {listed})"
        )

    def _identify(self, name: str, entry: dict) -> None:
        """The server's kind, the model's identity and context size, from what the server
        reports: a few quick requests, each to an endpoint that only one kind of server has."""
        props = self.http.call(
            "GET", f"{self.root_url}/props", what="GET /props", timeout=PROBE_TIMEOUT, optional=True
        )
        if isinstance(props, dict) and props.get("model_path"):
            self.server_kind = "llama-server"
            self.identity = {"model_path": str(props["model_path"])}
            settings = props.get("default_generation_settings")
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            self._reported_n_ctx = _positive_int(n_ctx if n_ctx is not None else props.get("n_ctx"))
            self._tokenizer = self._tokenize_llama_server
            return
        if self._tokenize_llama_cpp_python("") is not None:
            # llama-cpp-python's server names each model by its alias, which is the GGUF path
            # given to --model unless --model_alias renamed it.
            self.server_kind = "llama-cpp-python"
            self._tokenizer = self._tokenize_llama_cpp_python
            if name.lower().endswith(".gguf"):
                self.identity = {"model_path": name}
            return
        if entry.get("owned_by") == "vllm" or "max_model_len" in entry:
            self.server_kind = "vllm"
            self._reported_n_ctx = _positive_int(entry.get("max_model_len"))
            if entry.get("root"):
                self.identity = {"root": str(entry["root"])}
            self._tokenizer = self._tokenize_vllm
            return
        version = self.http.call(
            "GET",
            f"{self.root_url}/api/version",
            what="GET /api/version",
            timeout=PROBE_TIMEOUT,
            optional=True,
        )
        if isinstance(version, dict) and "version" in version:
            self.server_kind = "ollama"
            self.identity = self._ollama_identity(name)

    def _ollama_identity(self, name: str) -> dict:
        tags = self.http.call(
            "GET", f"{self.root_url}/api/tags", what="GET /api/tags", timeout=PROBE_TIMEOUT, optional=True
        )
        for model in (tags or {}).get("models", []) if isinstance(tags, dict) else []:
            named = isinstance(model, dict) and name in (model.get("name"), model.get("model"))
            if named and model.get("digest"):
                return {"digest": str(model["digest"])}
        shown = self.http.call(
            "POST",
            f"{self.root_url}/api/show",
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
        body = self._body(
            "Say one word.",
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
            return _completion_text(reply, url).strip() == GRAMMAR_PROBE_WORD
        except _Retry:
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

    def _tokenize_llama_server(self, text: str) -> int | None:
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

    def _tokenize_llama_cpp_python(self, text: str) -> int | None:
        # It always adds the model's BOS token where the model has one: counted once per text.
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
            self._bos_tokens = count
            return count
        return max(0, count - self._bos_tokens)

    def _tokenize_vllm(self, text: str) -> int | None:
        reply = self.http.call(
            "POST",
            f"{self.root_url}/tokenize",
            {"model": self.model_name, "prompt": text, "add_special_tokens": False},
            what="POST /tokenize",
            timeout=PROBE_TIMEOUT,
            optional=True,
        )
        count = reply.get("count") if isinstance(reply, dict) else None
        return count if isinstance(count, int) else None

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

    def _body(
        self,
        conversation: Conversation,
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None,
        stop: Sequence[str],
        grammar: str | None,
        min_p: float,
    ) -> dict:
        plain = PLAIN_SAMPLING_VLLM if self.server_kind == "vllm" else PLAIN_SAMPLING
        body = {
            "model": self.model_name,
            "messages": as_messages(conversation),
            "max_tokens": int(max_tokens),
            "temperature": float(temperature),
            "stream": False,
            **plain,
            "min_p": float(min_p),
            # A sampled reply depends on its seed only; seed 0 where none is given, as in-process.
            "seed": int(seed) if seed is not None else 0,
        }
        if stop:
            body["stop"] = list(stop)
        if grammar is not None:
            body["grammar"] = grammar
        return body

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
        body = self._body(
            conversation,
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
            parse=lambda reply: _completion_text(reply, url),
        )

    def _run_all(self, work: Callable[[int], object], count: int) -> list:
        """work(0..count-1) on up to `parallel` threads, results in order; the first failure
        cancels what has not started and is raised."""
        if count == 0:
            return []
        if count == 1 or self.parallel == 1:
            return [work(i) for i in range(count)]
        with ThreadPoolExecutor(max_workers=min(self.parallel, count), thread_name_prefix="served") as pool:
            futures = [pool.submit(work, i) for i in range(count)]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()
                raise failed.exception()
            return [f.result() for f in futures]

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

        return self._run_all(one, len(conversations))

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

        return self._run_all(chain, len(first))


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def load_served(spec: str, **options) -> ServedModel:
    """The served model of a spec (`URL` or `URL#name`); options as ServedModel's."""
    return ServedModel(spec, **options)
