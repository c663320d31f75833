"""The HTTP transport of served models (served.py): JSON requests to an OpenAI-compatible server
with a retry policy, the chat completion request's body and its reply's text, and requests sent
in parallel.

A server that refuses connections, times out, answers 429 or 5xx, or sends a reply that is not
the JSON it should be gets a few more tries with exponential backoff, bounded in total time, then
one `ServerError` naming the address and what failed. Any other 4xx fails at once with the
server's own message: a retry would not change it. The API key is read from an environment
variable at each request and kept nowhere.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, Sequence

from gpo_local.backends import Conversation, as_messages
from gpo_local.errors import ServerError

DEFAULT_API_KEY_VARIABLE = "GPO_LOCAL_API_KEY"
# A generation may wait behind the other requests in the server's queue (llama-cpp-python's
# server answers one at a time), so its timeout is generous; the probes are quick or absent.
DEFAULT_TIMEOUT = 600.0
PROBE_TIMEOUT = 15.0
# Retries: at most RETRY_TRIES tries, sleeping RETRY_FIRST_WAIT, then twice as long each time, and
# never retrying once RETRY_TOTAL seconds have passed since the first try.
RETRY_TRIES = 4
RETRY_FIRST_WAIT = 0.5
RETRY_TOTAL = 60.0
# Sampling fields beyond OpenAI's own (servers that do not know them ignore them): no top-k, no
# repetition penalty, as in the in-process sampler. vLLM spells them its own way.
PLAIN_SAMPLING = {"top_p": 1.0, "top_k": 0, "repeat_penalty": 1.0}
PLAIN_SAMPLING_VLLM = {"top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0}


class Retry(Exception):
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
        """The decoded JSON reply, or `parse(reply)`. `parse` may raise Retry for a reply that is
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
            except Retry as trouble:
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
                raise Retry(f"HTTP {error.code} from {url}: {message}") from None
            raise ServerError(
                f"served model at {self.address}: {what} was refused with HTTP {error.code}: {message}"
            ) from None
        except urllib.error.URLError as error:
            raise Retry(f"cannot connect to {url} ({_reason(error.reason)})") from None
        except TimeoutError:
            raise Retry(f"no reply from {url} within {timeout:g} s") from None
        except (http.client.HTTPException, ConnectionError, OSError) as error:
            raise Retry(f"the connection to {url} broke ({_reason(error)})") from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if optional:
                return None
            text = clip(raw.decode("utf-8", "replace"))
            raise Retry(f"the reply from {url} is not JSON: {text!r}") from None


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
        return clip(text) or str(error.reason)
    if isinstance(payload, dict):
        inner = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        if inner is not None:
            return clip(inner if isinstance(inner, str) else json.dumps(inner))
    return clip(text)


def clip(text: str, width: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def completion_text(payload, url: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        shown = clip(json.dumps(payload))
        raise Retry(f"the reply from {url} has no choices[0].message.content: {shown!r}") from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise Retry(f"the reply from {url} has a message content that is not text")
    return content


def chat_body(
    conversation: Conversation,
    *,
    model: str,
    vllm: bool,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    stop: Sequence[str],
    grammar: str | None,
    min_p: float,
) -> dict:
    """The JSON body of a chat completion request for `model` (`vllm`: the server is vLLM, which
    spells the sampling fields its own way)."""
    plain = PLAIN_SAMPLING_VLLM if vllm else PLAIN_SAMPLING
    body = {
        "model": model,
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


def run_parallel(work: Callable[[int], object], count: int, parallel: int) -> list:
    """work(0..count-1) on up to `parallel` threads, results in order; the first failure
    cancels what has not started and is raised."""
    if count == 0:
        return []
    if count == 1 or parallel == 1:
        return [work(i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=min(parallel, count), thread_name_prefix="served") as pool:
        futures = [pool.submit(work, i) for i in range(count)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            raise failed.exception()
        return [f.result() for f in futures]
