"""Served models (backends/served.py): the HTTP client against a scripted fake server on
127.0.0.1 (request bodies, retries, errors, the API key), then against llama-cpp-python's own
OpenAI-compatible server with the bundled SmolLM2-135M (generation, grammar, the same prompt
scored in-process and through the server). Every request goes to 127.0.0.1 and is bounded in time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gpo_local.backends import complete_llm
from gpo_local.backends.served import ServedModel, is_served_spec, parse_served_spec
from gpo_local.errors import ConfigError, ModelError, ServerError

QUICK = dict(retry_wait=0.01, retry_total=5.0)  # retries without the production waits


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up (the timeout test) leaves a broken pipe: expected


class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1 that records every request. `routes` maps
    (method, path) to a function body -> (status, payload) where a str payload is sent as it is;
    chat completions default to `reply(body)`."""

    def __init__(self, reply=lambda body: "ok", models=("fake-model",), routes=None):
        self.requests: list[dict] = []
        self.reply = reply
        self.routes = {
            ("GET", "/v1/models"): lambda body: (
                200,
                {
                    "object": "list",
                    "data": [{"id": name, "object": "model", "owned_by": "fake"} for name in models],
                },
            )
        }
        self.routes.update(routes or {})
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append(
                    {"method": method, "path": self.path, "body": body, "headers": dict(self.headers)}
                )
                route = fake.routes.get((method, self.path))
                if route is None and (method, self.path) == ("POST", "/v1/chat/completions"):
                    route = fake.chat
                status, payload = route(body) if route else (404, {"error": {"message": "no such endpoint"}})
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def chat(self, body):
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply(body)}}]}

    def chats(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v1/chat/completions"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def scripted(*answers):
    """A route that gives the answers in turn, then the last one again."""
    queue = list(answers)

    def route(body):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return route


# -- specs -------------------------------------------------------------------------------------------


def test_specs_name_the_address_and_the_model():
    assert parse_served_spec("http://127.0.0.1:8080/v1#qwen2.5-0.5b") == (
        "http://127.0.0.1:8080/v1",
        "qwen2.5-0.5b",
    )
    assert parse_served_spec("http://127.0.0.1:11434") == ("http://127.0.0.1:11434/v1", None)
    assert parse_served_spec("https://lab.example/llm/v1/") == ("https://lab.example/llm/v1", None)
    assert is_served_spec("http://127.0.0.1:8080/v1") and is_served_spec("HTTPS://h/v1")
    assert not is_served_spec("smollm2-135m-instruct") and not is_served_spec("/models/x.gguf")
    for bad in ("ftp://h/v1", "http://", "http://h:99999/v1"):
        with pytest.raises(ConfigError):
            parse_served_spec(bad)


# -- the fake server -----------------------------------------------------------------------------------


def test_requests_carry_the_conversation_and_plain_sampling():
    with FakeServer(reply=lambda body: f"echo {body['messages'][-1]['content']}") as fake:
        model = ServedModel(fake.url, grammar=False, parallel=3)
        replies = model.generate(
            ["a", [{"role": "user", "content": "b"}], "c"],
            max_tokens=7,
            temperature=0.7,
            seeds=[1, 2, 3],
            stop=("\n",),
            min_p=0.1,
        )
        assert replies == ["echo a", "echo b", "echo c"]
        bodies = sorted((r["body"] for r in fake.chats()), key=lambda b: b["seed"])
        assert [b["messages"] for b in bodies] == [[{"role": "user", "content": x}] for x in "abc"]
        first = bodies[0]
        assert (first["model"], first["max_tokens"], first["temperature"], first["stop"]) == (
            "fake-model",
            7,
            0.7,
            ["\n"],
        )
        assert (first["top_k"], first["top_p"], first["repeat_penalty"], first["min_p"]) == (0, 1.0, 1.0, 0.1)
        assert "grammar" not in first
        assert model.server_kind == "openai-compatible" and not model.identity_known
        assert model.n_ctx is None and model.fits("anything " * 10_000)  # no context size known
        assert model.count_tokens("three words here") == 3  # no tokenizer: words


def test_the_second_round_continues_the_first_rounds_conversation():
    with FakeServer(reply=lambda body: f"reply {len(body['messages'])}") as fake:
        model = ServedModel(fake.url, grammar=False, parallel=2)

        def follow_up(index, reply):
            if index == 1:
                return None
            return [
                {"role": "user", "content": f"question {index}"},
                {"role": "assistant", "content": reply},
                {"role": "user", "content": "So the answer is?"},
            ]

        pairs = model.generate_two_rounds(
            ["question 0", "question 1", "question 2"], follow_up, max_tokens=(20, 5)
        )
        assert pairs == [("reply 1", "reply 3"), ("reply 1", None), ("reply 1", "reply 3")]
        seconds = [r["body"] for r in fake.chats() if len(r["body"]["messages"]) == 3]
        assert len(seconds) == 2 and all(b["max_tokens"] == 5 for b in seconds)
        assert sorted(b["messages"][0]["content"] for b in seconds) == ["question 0", "question 2"]
        assert all(b["messages"][1] == {"role": "assistant", "content": "reply 1"} for b in seconds)
        assert all(b["messages"][2] == {"role": "user", "content": "So the answer is?"} for b in seconds)


def test_the_evaluator_scores_through_a_served_model():
    from conftest import difficulty_task

    from gpo_local.algorithm.evaluator import Evaluator

    with FakeServer(reply=lambda body: "yes") as fake:
        evaluator = Evaluator(complete_llm(ServedModel(fake.url, grammar=False)), difficulty_task(n_eval=4))
        result = evaluator.score("Answer.", "eval")
        assert result.score == 1.0 and result.n == 4


def test_5xx_and_429_are_retried_with_backoff_then_succeed():
    ok = (200, {"choices": [{"message": {"content": "fine"}}]})
    route = scripted((500, {"error": {"message": "slot busy"}}), (429, "too many"), ok)
    with FakeServer(routes={("POST", "/v1/chat/completions"): route}) as fake:
        model = ServedModel(fake.url, grammar=False, **QUICK)
        assert model.generate(["hi"], max_tokens=4) == ["fine"]
        assert len(fake.chats()) == 3


def test_a_server_that_keeps_failing_gives_one_error_naming_the_address():
    loading = (503, {"error": {"message": "loading"}})
    with FakeServer(routes={("POST", "/v1/chat/completions"): lambda body: loading}) as fake:
        model = ServedModel(fake.url, grammar=False, tries=3, **QUICK)
        with pytest.raises(ServerError) as error:
            model.generate(["hi"], max_tokens=4)
        message = str(error.value)
        assert fake.url in message and "HTTP 503" in message and "loading" in message and "3 tries" in message
        assert "\n" not in message and len(fake.chats()) == 3


def test_retries_stop_within_the_total_time():
    with FakeServer(routes={("POST", "/v1/chat/completions"): lambda body: (500, "down")}) as fake:
        model = ServedModel(fake.url, grammar=False, tries=10, retry_wait=0.2, retry_total=0.5)
        started = time.monotonic()
        with pytest.raises(ServerError):
            model.generate(["hi"], max_tokens=4)
        assert time.monotonic() - started < 2.0 and len(fake.chats()) == 2  # 0.2 s, then 0.4 s would pass 0.5


def test_malformed_replies_are_retried_then_reported():
    good = (200, {"choices": [{"message": {"content": "fine"}}]})
    route = scripted((200, "<html>oops"), (200, {"x": 1}), good)
    with FakeServer(routes={("POST", "/v1/chat/completions"): route}) as fake:
        assert ServedModel(fake.url, grammar=False, **QUICK).generate(["hi"], max_tokens=4) == ["fine"]
        assert len(fake.chats()) == 3
    with FakeServer(routes={("POST", "/v1/chat/completions"): lambda body: (200, "{not json")}) as fake:
        with pytest.raises(ServerError, match="is not JSON"):
            ServedModel(fake.url, grammar=False, tries=2, **QUICK).generate(["hi"], max_tokens=4)


def test_other_4xx_fail_at_once_with_the_servers_message():
    refusal = (400, {"error": {"message": "Requested tokens (5000) exceed context window of 2048"}})
    with FakeServer(routes={("POST", "/v1/chat/completions"): lambda body: refusal}) as fake:
        model = ServedModel(fake.url, grammar=False, **QUICK)
        with pytest.raises(ServerError, match="HTTP 400: Requested tokens .5000. exceed context window"):
            model.generate(["hi"], max_tokens=4)
        assert len(fake.chats()) == 1


def test_a_closed_port_is_connection_refused_naming_the_address():
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    with pytest.raises(ServerError) as error:
        ServedModel(url, tries=3, **QUICK)
    assert time.monotonic() - started < 3.0
    message = str(error.value)
    assert url in message and "connection refused" in message and "3 tries" in message


def test_a_server_that_does_not_answer_in_time_times_out():
    def slow(body):
        time.sleep(1.0)
        return 200, {"choices": [{"message": {"content": "late"}}]}

    with FakeServer(routes={("POST", "/v1/chat/completions"): slow}) as fake:
        model = ServedModel(fake.url, grammar=False, timeout=0.2, tries=2, **QUICK)
        with pytest.raises(ServerError, match=r"no reply from .* within 0.2 s"):
            model.generate(["hi"], max_tokens=4)


def test_the_api_key_is_sent_as_bearer_and_kept_out_of_every_record(monkeypatch):
    monkeypatch.setenv("GPO_LOCAL_API_KEY", "sk-secret-1")
    monkeypatch.setenv("LAB_KEY", "sk-secret-2")
    with FakeServer() as fake:
        model = ServedModel(fake.url, grammar=False)
        model.generate(["hi"], max_tokens=2)
        assert {r["headers"].get("Authorization") for r in fake.requests} == {"Bearer sk-secret-1"}
        other = ServedModel(fake.url, grammar=False, api_key_variable="LAB_KEY")
        other.generate(["hi"], max_tokens=2)
        assert fake.requests[-1]["headers"]["Authorization"] == "Bearer sk-secret-2"
        for served in (model, other):
            records = served.fingerprint + json.dumps(served.describe()) + repr(served) + repr(vars(served))
            assert "sk-secret" not in records
    monkeypatch.delenv("GPO_LOCAL_API_KEY")
    with FakeServer() as fake:
        ServedModel(fake.url, grammar=False).generate(["hi"], max_tokens=2)
        assert all("Authorization" not in r["headers"] for r in fake.requests)


def test_a_served_model_pickles_without_its_locks():
    import pickle

    with FakeServer(reply=lambda body: "copied") as fake:
        copy = pickle.loads(pickle.dumps(ServedModel(fake.url, grammar=False)))
        assert copy.generate(["hi"], max_tokens=2) == ["copied"] and copy.fingerprint.startswith("served:")


def test_a_server_with_several_models_needs_a_name():
    with FakeServer(models=("alpha", "beta")) as fake:
        with pytest.raises(ConfigError, match=r"serves several models \(alpha, beta\): name one as .*#NAME"):
            ServedModel(fake.url)
        assert ServedModel(f"{fake.url}#beta", grammar=False).model_name == "beta"
        with pytest.raises(ConfigError, match=r"no.* model named 'gamma' \(it serves: alpha, beta\)"):
            ServedModel(f"{fake.url}#gamma")
    with FakeServer(models=("qwen2.5:latest",)) as fake:
        assert ServedModel(f"{fake.url}#qwen2.5", grammar=False).model_name == "qwen2.5:latest"


def test_fingerprints_name_address_model_and_reported_identity():
    props = {"model_path": "/models/qwen.gguf", "default_generation_settings": {"n_ctx": 4096}}
    tokens = lambda body: (200, {"tokens": list(range(len(body["content"].split())))})  # noqa: E731
    with FakeServer(
        routes={("GET", "/props"): lambda body: (200, props), ("POST", "/tokenize"): tokens}
    ) as fake:
        model = ServedModel(fake.url, grammar=False)
        assert model.server_kind == "llama-server" and model.identity_known and model.n_ctx == 4096
        assert json.loads(model.fingerprint.removeprefix("served:")) == {
            "url": fake.url,
            "model": "fake-model",
            "identity": {"model_path": "/models/qwen.gguf"},
        }
        assert model.count_tokens("one two three") == 3
        assert model.fits("word " * 4000) and not model.fits("word " * 4090)
    with FakeServer() as fake:
        anonymous = ServedModel(fake.url, grammar=False)
        assert not anonymous.identity_known and anonymous.describe()["identity_known"] is False
        assert model.fingerprint != anonymous.fingerprint
        assert anonymous.fingerprint == ServedModel(fake.url, grammar=False).fingerprint  # stable


def test_ollama_reports_a_digest():
    tags = {"models": [{"name": "qwen2.5:latest", "model": "qwen2.5:latest", "digest": "sha256:abc"}]}
    routes = {
        ("GET", "/api/version"): lambda body: (200, {"version": "0.9"}),
        ("GET", "/api/tags"): lambda body: (200, tags),
    }
    with FakeServer(models=("qwen2.5:latest",), routes=routes) as fake:
        model = ServedModel(f"{fake.url}#qwen2.5", grammar=False)
        assert model.server_kind == "ollama" and model.identity == {"digest": "sha256:abc"}


def test_grammar_support_is_probed_once_and_said_in_the_capabilities():
    honour = lambda body: "zebra" if "grammar" in body else "free text"  # noqa: E731
    with FakeServer(reply=honour) as fake:
        model = ServedModel(fake.url)
        assert model.supports_grammar and model.supports_grammar
        assert len(fake.chats()) == 1
        model.generate(["hi"], max_tokens=4, grammar='root ::= "x"')
        assert fake.chats()[-1]["body"]["grammar"] == 'root ::= "x"'
        assert model.capabilities()["grammar"] is True and model.capabilities()["copy_guard"] is False
    with FakeServer(reply=lambda body: "free text") as fake:
        model = ServedModel(fake.url)
        assert not model.supports_grammar and not complete_llm(model).supports_grammar
        with pytest.raises(ModelError, match="does not honour GBNF grammars"):
            model.generate(["hi"], max_tokens=4, grammar='root ::= "x"')


# -- llama-cpp-python's server with the bundled model ------------------------------------------------------

SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
SERVER_READY_SECONDS = 90


def start_llama_server(path, port: int):
    """llama-cpp-python's server with the GGUF at `path` on 127.0.0.1:`port`, once it answers:
    (the process, its URL). The caller stops it (stop_server)."""
    # Flash attention as in the in-process decoder: with it, greedy replies agree to the byte.
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--flash_attn",
        "True",
        "--verbose",
        "False",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_READY_SECONDS
    while True:
        if process.poll() is not None:
            errors = process.stderr.read().decode()[-2000:]
            pytest.fail(f"the server exited with {process.returncode}: {errors}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(process)
            pytest.fail(f"the server did not answer within {SERVER_READY_SECONDS} s")
        time.sleep(0.5)


def stop_server(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def server_modules_or_skip() -> None:
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"llama-cpp-python's server is not installed (pip install '.[served]'; missing {missing})"
        )


@pytest.fixture(scope="module")
def llama_server():
    """llama-cpp-python's OpenAI-compatible server with the bundled SmolLM2-135M on a free
    loopback port: (its URL, the GGUF path). Always stopped at the end."""
    server_modules_or_skip()
    from conftest import bundled_model_path

    path = bundled_model_path()
    process, url = start_llama_server(path, free_port())
    try:
        yield url, path
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def served(llama_server):
    return ServedModel(llama_server[0], parallel=2, n_ctx=2048)


@pytest.fixture(scope="module")
def in_process(llama_server):
    from gpo_local.backends.llama_cpp import LlamaCppModel

    # Four sequences, no wide evaluator decoder: small KV caches on a 2-core machine.
    return LlamaCppModel(llama_server[1], n_ctx=2048, n_threads=2, parallel=4, eval_parallel=4)


@pytest.mark.integration
def test_the_server_reports_its_model_and_tokenizer(served, llama_server, in_process):
    assert served.server_kind == "llama-cpp-python"
    assert served.identity == {"model_path": str(llama_server[1])} and served.identity_known
    text = "Classify the sentiment of this review, please."
    assert served.count_tokens(text) == in_process.count_tokens(text)


@pytest.mark.integration
def test_greedy_generation_through_the_server(served, in_process):
    question = "What is the capital of France? Answer in one word."
    replies = served.generate([question, question], max_tokens=12)
    assert replies[0].strip() and replies[0] == replies[1]
    assert replies[0] == in_process.generate([question], max_tokens=12)[0]


@pytest.mark.integration
def test_grammar_constrained_replies_through_the_server(served):
    from gpo_local.replies.drops import classify
    from gpo_local.replies.grammar import prompt_grammar

    assert served.supports_grammar
    cap = 6
    replies = served.generate(
        ["Write an instruction that helps classify movie reviews."] * 3,
        max_tokens=60,
        temperature=1.0,
        seeds=[1, 2, 3],
        stop=("<END>",),
        grammar=prompt_grammar(cap),
    )
    for reply in replies:
        assert reply.startswith("<START>"), reply
        prompt, reason = classify(reply, require_tags=True, max_words=cap)
        assert reason is None and prompt and 1 <= len(prompt.split()) <= cap, reply


# The share of sentiment questions on which the served and the in-process model give the same
# prediction. With the same attention kernel (flash attention on both sides) all of them agreed on
# this machine; the floor leaves room for one flip from other batching numerics elsewhere.
AGREEMENT_FLOOR = 0.9


@pytest.mark.integration
def test_the_same_prompt_scores_alike_in_process_and_served(served, in_process):
    from dataclasses import replace

    from gpo_local.algorithm.evaluator import Evaluator
    from gpo_local.tasks import load_task

    # Shorter replies than the task's own limits keep the served pass (one request at a time on
    # llama-cpp-python's server) to a minute; both sides get the same limits.
    task = replace(load_task("sentiment"), max_tokens=(64, 12))
    prompt = "Let's think step by step."
    limit = 12
    local = Evaluator(in_process, task).evaluate([prompt], "eval", limit=limit)[0]
    remote = Evaluator(served, task).evaluate([prompt], "eval", limit=limit)[0]
    pairs = list(zip(local.outcomes, remote.outcomes))
    same = sum(a.prediction == b.prediction for a, b in pairs) / limit
    identical = (
        sum(a.first_answer == b.first_answer and a.final_answer == b.final_answer for a, b in pairs) / limit
    )
    print(
        f"\nsentiment, {limit} eval questions: same prediction {same:.2f}, same replies in both rounds "
        f"{identical:.2f}, scores in-process {local.score:.3f} served {remote.score:.3f}"
    )
    assert same >= AGREEMENT_FLOOR


# -- gpo-local optimize with both models served ----------------------------------------------------------


def optimize_command(url: str, run_dir, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gpo_local",
        "optimize",
        "sentiment",
        "--task-model",
        url,
        "--optimizer-model",
        url,
        "--candidates",
        "2",
        "--dev-limit",
        "4",
        "--test-limit",
        "4",
        "--parallel",
        "2",
        "--no-cache",
        "--quiet",
        "--run-dir",
        str(run_dir),
        *extra,
    ]


def run_gpo_local(command: list[str], home, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GPO_LOCAL_HOME": str(home),
        "GPO_LOCAL_SUGGESTED_MODELS": "0",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.integration
def test_optimize_with_both_models_served_names_them_in_result_and_show(llama_server, tmp_path):
    url, path = llama_server
    run_dir = tmp_path / "run"
    finished = run_gpo_local(optimize_command(url, run_dir, "--steps", "1"), tmp_path / "home")
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    for role in ("task", "optimizer"):
        served = result["models"][role]["served"]
        assert (served["url"], served["model"], served["server"]) == (url, str(path), "llama-cpp-python")
        assert served["identity"] == {"model_path": str(path)} and served["capabilities"]["grammar"] is True
        assert served["capabilities"]["copy_guard"] is False
    assert result["final_test"] is not None
    shown = run_gpo_local([sys.executable, "-m", "gpo_local", "show", str(run_dir)], tmp_path / "home")
    assert shown.returncode == 0, shown.stderr
    expected = f"task model: {url}#{path} (served by llama-cpp-python; grammar yes, copy guard no"
    assert "".join(expected.split()) in "".join(shown.stdout.split())  # wrapped at the terminal's width


@pytest.mark.integration
def test_a_server_killed_during_a_run_then_restarted_resumes_without_losing_a_scored_candidate(tmp_path):
    server_modules_or_skip()
    from conftest import bundled_model_path

    path = bundled_model_path()
    port = free_port()
    process, url = start_llama_server(path, port)
    run_dir = tmp_path / "run"
    trajectory = run_dir / "trajectory.jsonl"
    env = {
        **os.environ,
        "GPO_LOCAL_HOME": str(tmp_path / "home"),
        "GPO_LOCAL_SUGGESTED_MODELS": "0",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    optimize = subprocess.Popen(
        # Constrained replies: free-form, the bundled 135M rarely writes a tagged reply, and the
        # server must go away after a candidate was scored.
        optimize_command(url, run_dir, "--steps", "2", "--grammar"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 600
        # The server goes away as soon as the first step's first candidate is scored and recorded.
        while not (trajectory.is_file() and '"kind": "candidate"' in trajectory.read_text()):
            assert optimize.poll() is None, optimize.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no candidate was scored within 10 minutes"
            time.sleep(0.2)
        stop_server(process)
        _, errors = optimize.communicate(timeout=300)
    finally:
        if optimize.poll() is None:
            optimize.kill()
            optimize.wait(timeout=10)
        stop_server(process)
    assert optimize.returncode != 0 and f"served model at {url}" in errors, errors[-3000:]
    before = [json.loads(line) for line in trajectory.read_text().splitlines()]
    scored_before = [(r["step"], r["prompt"]) for r in before if r["kind"] == "candidate"]
    assert scored_before and not (run_dir / "result.json").exists()

    process, _ = start_llama_server(path, port)  # the same address: the run's recorded model
    try:
        resumed = run_gpo_local(
            [
                sys.executable,
                "-m",
                "gpo_local",
                "optimize",
                "sentiment",
                "--run-dir",
                str(run_dir),
                "--resume",
                "--quiet",
            ],
            tmp_path / "home",
        )
    finally:
        stop_server(process)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = [json.loads(line) for line in trajectory.read_text().splitlines()]
    assert after[: len(before)] == before  # nothing recorded before the kill is lost or rewritten
    scored_after = [(r["step"], r["prompt"]) for r in after if r["kind"] == "candidate"]
    assert all(scored_after.count(key) == 1 for key in scored_before)  # and none is scored again
    assert json.loads((run_dir / "result.json").read_text())["stopped"] == "completed"
