"""Ray with the scripted fakes: the task model sharded over actors (RayPoolLLM), bench cells as
Ray tasks (quality/ray_run.py), and --ray without Ray. A real local head on 127.0.0.1 (ray_head.py);
skipped where ray is not installed, except the tests that need no Ray."""

import json
import os
import re
import sys
import threading
import time
from dataclasses import asdict
from functools import partial

import pytest
from click.testing import CliRunner
from conftest import difficulty_task
from ray_head import comparable, deadline, ray_head  # noqa: F401 (fixtures)

from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.app.cli import main
from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.backends.ray_pool import RayPoolLLM, shard
from gpo_local.errors import GpoError, PromptTooLongError
from gpo_local.quality import load_config, run_bench
from gpo_local.quality.ray_run import RayCells
from gpo_local.testing import ScriptedLLM

# A local Ray head on 127.0.0.1 and real optimize runs: not in the fast tier.
pytestmark = pytest.mark.integration
import test_quality
from test_quality import FakeRunner, layout, write_config  # noqa: F401 (layout: a fixture)


def answer(messages, temperature, seed, delay=0.0):
    """Right when the prompt has as many words as the question's difficulty; a second turn
    repeats the first reply's last word."""
    time.sleep(delay)
    if len(messages) > 1:
        return messages[1]["content"].split()[-1]
    # conftest's question_and_instruction, written out: this function runs in the Ray actors, which
    # cannot import the tests' conftest module. The instruction is on either side of the question.
    content = messages[0]["content"]
    question = re.search(r"difficulty (\d+); say yes", content)
    prompt = (content[: question.start()] + content[question.end() :]).strip()
    reply = "yes" if len(prompt.split()) >= int(question.group(1)) else "no"
    return f"{reply} {seed}" if temperature > 0 else f"well, {reply}"


def fake(delay=0.0, context_words=None):
    return ScriptedLLM(partial(answer, delay=delay), fingerprint="fake-task", context_words=context_words)


def pool(ray, n=2, delay=0.0, context_words=None):
    factory = partial(fake, delay=delay, context_words=context_words)
    return RayPoolLLM.start(ray, factory, n, local=fake(context_words=context_words))


@pytest.fixture
def ships_tests(ray_head):
    """The fakes live in test modules, which workers cannot import: send them by value."""
    for module in (test_quality, sys.modules[__name__]):
        ray_head.cloudpickle.register_pickle_by_value(module)
    yield
    for module in (test_quality, sys.modules[__name__]):
        ray_head.cloudpickle.unregister_pickle_by_value(module)


def two_round(task):
    return type(task)(**{**task.__dict__, "rule": type(task.rule)("exact", True, None, "t")})


# ---------------------------------------------------------------- sharding (no Ray)
def test_shards_are_contiguous_balanced_and_cut_between_prompt_groups():
    # Q_end order: the 3 prompts of one question side by side share the question.
    texts = [f"question {q} is long enough\nprompt {p}" for q in range(8) for p in range(3)]
    parts = shard(texts, 2)
    assert [list(p) for p in parts] == [list(range(0, 12)), list(range(12, 24))]
    parts = shard(texts[:21], 2)  # 7 questions: the balanced cut (10 or 11) would split question 3
    assert [(p.start, p.stop) for p in parts] in ([(0, 9), (9, 21)], [(0, 12), (12, 21)])
    assert all(p.start % 3 == 0 for p in parts)


def test_shards_of_few_or_no_texts():
    assert shard([], 3) == []
    assert [list(p) for p in shard(["a", "b"], 4)] == [[0], [1]]
    assert [list(p) for p in shard(["a", "b", "c"], 1)] == [[0, 1, 2]]


def test_ray_option_without_ray_is_one_line_naming_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(main, ["eval", "sentiment", "--prompt", "p", "--ray", "auto"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        'Error: --ray needs Ray, which is not installed: pip install "gpo-local[ray]" (or pip install '
        '"ray==2.60.0")'
    ]


def test_ray_actors_without_ray_address_is_an_error():
    result = CliRunner().invoke(main, ["eval", "sentiment", "--prompt", "p", "--ray-actors", "2"])
    assert result.exit_code == 1 and "--ray-actors needs --ray ADDRESS" in result.output


def test_ray_options_are_declared_once_and_checked_before_any_model_loads():
    """--ray / --ray-actors are runtime options of config.OPTIONS (merge of issue 13 onto issue 11):
    optimize, eval, TOML files and the Python API get them from there; a bench config may not set
    them (bench quality --ray runs the cells on Ray)."""
    from gpo_local import evaluate
    from gpo_local.algorithm.config import BY_NAME
    from gpo_local.app.settings import resolve
    from gpo_local.errors import ConfigError
    from gpo_local.quality import CONTRACT_OPTIONS, HARNESS_OPTIONS

    assert BY_NAME["ray"].group == BY_NAME["ray_actors"].group == "runtime"
    assert {"ray", "ray-actors"} <= set(HARNESS_OPTIONS) and not {"ray", "ray-actors"} & CONTRACT_OPTIONS
    assert resolve("sentiment", {"ray": "auto"}, {"ray"}).runtime["ray"] == "auto"
    with pytest.raises(ConfigError, match="ray_actors needs ray='ADDRESS'"):
        resolve("sentiment", {"ray_actors": 2}, {"ray_actors"})
    with pytest.raises(ConfigError, match="ray_actors needs ray='ADDRESS'"):
        evaluate("sentiment", "p", ray_actors=2)
    result = CliRunner().invoke(main, ["optimize", "sentiment", "--ray-actors", "2", "--dry-run"])
    assert result.exit_code == 1 and "--ray-actors needs --ray ADDRESS" in result.output


# ---------------------------------------------------------------- the actor pool
def test_pool_replies_equal_the_local_model_and_use_every_actor(ray_head, deadline, ships_tests):
    llm = pool(ray_head)
    try:
        conversations = [f"difficulty {1 + i % 3}; say yes\n{'w ' * (i % 4)}".strip() for i in range(10)]
        for kwargs in ({"max_tokens": 8}, {"max_tokens": 8, "temperature": 0.7, "seeds": list(range(10))}):
            assert llm.generate(conversations, **kwargs) == fake().generate(conversations, **kwargs)
        replies, placed = llm._generate(conversations, max_tokens=8)
        assert len({id(a) for a in placed}) == 2 and placed[0] is not placed[-1]
        assert llm.decoder.stats.generated_tokens == 0  # fakes have no decoder: counted as 0
    finally:
        llm.close()


@pytest.mark.parametrize("rounds", ["one", "two"])
def test_evaluator_through_the_pool_gives_the_local_scores_and_the_memo_stays_on_the_driver(
    ray_head, deadline, ships_tests, tmp_path, rounds
):
    task = difficulty_task(n_eval=12)
    task = two_round(task) if rounds == "two" else task
    prompts = ["Answer.", "think think think", "think"]
    local = Evaluator(fake(), task).evaluate(prompts, "eval")
    llm = pool(ray_head)
    try:
        memo = MemoizedLLM(llm, Memo(tmp_path / "cache.sqlite"))
        remote = Evaluator(memo, task, chunk_size=64).evaluate(prompts, "eval")
        assert [asdict(r) for r in remote] == [asdict(r) for r in local]
        generations = memo.misses
        assert generations == 36 * (2 if rounds == "two" else 1)
        llm.close()  # no actor left: a second pass must come from the driver's memo alone
        again = Evaluator(memo, task).evaluate(prompts, "eval")
        assert [asdict(r) for r in again] == [asdict(r) for r in local] and memo.misses == generations
    finally:
        llm.close()


def test_an_actor_killed_mid_call_has_its_shard_retried_with_the_same_result(ray_head, deadline, ships_tests):
    conversations = [f"difficulty {1 + i % 3}; say yes\n{'w ' * (i % 4)}".strip() for i in range(40)]
    expected = fake().generate(conversations, max_tokens=8)
    llm = pool(ray_head, delay=0.05)  # 20 replies per actor: a second each
    try:
        out = {}
        call = threading.Thread(target=lambda: out.update(replies=llm.generate(conversations, max_tokens=8)))
        call.start()
        time.sleep(0.4)
        ray_head.kill(llm.actors[0])
        call.join(timeout=60)
        assert out["replies"] == expected
        assert llm.retried_shards == 1 and len(llm.actors) == 1
        assert llm.generate(conversations[:3], max_tokens=8) == expected[:3]
        ray_head.kill(llm.actors[0])
        with pytest.raises(GpoError, match="no Ray actor is left"):
            llm.generate(conversations, max_tokens=8)
    finally:
        llm.close()


def test_a_model_error_on_an_actor_is_raised_as_itself(ray_head, deadline, ships_tests):
    llm = pool(ray_head, context_words=5)
    try:
        with pytest.raises(PromptTooLongError, match="does not fit the context of 5 words") as raised:
            llm.generate(["difficulty 1; say yes", "one two three four five six"], max_tokens=8)
        assert (
            str(raised.value) == "conversation does not fit the context of 5 words"
        )  # one line, no Ray trace
    finally:
        llm.close()


def test_more_actors_than_the_cluster_holds_is_an_error_not_a_wait(ray_head, deadline, ships_tests):
    from gpo_local.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"ray_actors=3: 3 actors of 1 CPU each do not fit the Ray cluster \(2 CPUs"
    ):
        RayPoolLLM.start(ray_head, fake, 3, local=fake())


def test_actors_that_cannot_load_the_model_are_one_error(ray_head, deadline):
    from gpo_local.backends.ray_pool import ModelSpec
    from gpo_local.errors import ModelError

    with pytest.raises(
        ModelError, match="the Ray actors could not load the task model: .*GGUF file not found"
    ):
        RayPoolLLM.start(ray_head, ModelSpec(path="/nonexistent/model.gguf"), 1, local=fake())


# ---------------------------------------------------------------- bench cells as Ray tasks


def test_cell_resources_follow_threads_and_gpu_layers(layout):
    from gpo_local.quality.ray_run import cell_resources

    config = load_config(
        write_config(layout, test_quality.BASE + "[variants.gpu]\nthreads = 4\nn-gpu-layers = -1\n")
    )
    by_row = {c.row.name: cell_resources(c) for c in config.cells(layout)}
    assert by_row["gpo"] == {"num_cpus": 1, "num_gpus": 0}
    assert by_row["gpu"] == {"num_cpus": 4, "num_gpus": 1}


def test_a_run_directory_survives_the_round_trip_through_an_archive(tmp_path):
    from gpo_local.quality.ray_run import pack, unpack

    source = tmp_path / "run"
    (source / "indexes").mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "indexes" / "trajectory.json").write_text('{"rows": []}')
    unpack(pack(source), tmp_path / "copy")
    assert (tmp_path / "copy" / "indexes" / "trajectory.json").read_text() == '{"rows": []}'
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["config.json", "indexes"]


class RecordingRunner(FakeRunner):
    """FakeRunner that leaves in the run directory whether it resumed; `crash` cells kill their
    worker process on the first attempt (a lost node, as Ray sees it)."""

    def __init__(self, fail=(), crash=()):
        super().__init__(fail=fail)
        self.crash = set(crash)

    def __call__(self, cell, *, resume):
        (cell.run_dir / "resumed.txt").write_text(str(resume))
        if (cell.row.name, cell.task.name, cell.seed) in self.crash and not (
            cell.run_dir / "crashed"
        ).exists():
            (cell.run_dir / "config.json").write_text("{}")
            (cell.run_dir / "crashed").write_text("")
            os._exit(1)
        return super().__call__(cell, resume=resume)


@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "object-store"])
def test_a_sweep_on_ray_writes_the_results_of_a_local_sweep(
    ray_head, deadline, ships_tests, layout, tmp_path, in_place
):
    config = load_config(write_config(layout))
    run_bench(config, tmp_path / "local", runner=FakeRunner())
    results = run_bench(
        config, tmp_path / "ray", runner=RecordingRunner(), run_cells=RayCells(ray_head, in_place=in_place)
    )
    assert results["counts"] == {"done": 24}
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    cell = tmp_path / "ray" / "runs" / "navigate" / "gpo" / "seed0"
    assert sorted(p.name for p in cell.iterdir()) == [
        "bench.json",
        "cell.toml",
        "config.json",
        "result.json",
        "resumed.txt",
    ]
    assert json.loads((cell / "bench.json").read_text())["attempts"] == 1
    assert not (tmp_path / "ray" / ".ray-probe").exists()


def test_a_failed_cell_is_recorded_and_retried_and_a_started_one_resumed(
    ray_head, deadline, ships_tests, layout, tmp_path
):
    config = load_config(write_config(layout))
    out = tmp_path / "out"
    started = out / "runs" / "hyperbaton" / "opro" / "seed2"
    started.mkdir(parents=True)
    (started / "config.json").write_text("{}")
    results = run_bench(
        config,
        out,
        runner=RecordingRunner(fail={("gpo", "navigate", 1)}),
        run_cells=RayCells(ray_head, in_place=False),
    )
    failed = out / "runs" / "navigate" / "gpo" / "seed1"
    assert results["counts"] == {"done": 23, "failed": 1}
    assert (
        json.loads((failed / "failed.json").read_text())["error"]
        == "exit code 1: Error: the optimizer exploded"
    )
    assert (started / "resumed.txt").read_text() == "True"
    assert (out / "runs" / "navigate" / "gpo" / "seed0" / "resumed.txt").read_text() == "False"
    results = run_bench(config, out, runner=RecordingRunner(), run_cells=RayCells(ray_head))
    assert results["counts"] == {"done": 24} and not (failed / "failed.json").exists()
    assert (failed / "resumed.txt").read_text() == "True"  # its config.json was written by the failed attempt
    assert json.loads((failed / "bench.json").read_text())["attempts"] == 2


def test_a_cell_whose_worker_dies_is_retried_by_ray_and_resumes(
    ray_head, deadline, ships_tests, layout, tmp_path
):
    config = load_config(write_config(layout))
    out = tmp_path / "out"
    results = run_bench(
        config, out, runner=RecordingRunner(crash={("linear", "navigate", 0)}), run_cells=RayCells(ray_head)
    )
    assert results["counts"] == {"done": 24}
    cell = out / "runs" / "navigate" / "linear" / "seed0"
    assert (cell / "crashed").exists() and (cell / "resumed.txt").read_text() == "True"


def test_cli_bench_quality_on_ray(ray_head, deadline, ships_tests, layout, tmp_path, monkeypatch):
    from gpo_local import quality

    monkeypatch.setattr(quality, "SubprocessRunner", lambda: FakeRunner())
    path = write_config(layout)
    result = CliRunner().invoke(
        main, ["bench", "quality", "--config", str(path), "--out", str(tmp_path / "o"), "--ray", "auto"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "results.json").read_text())["counts"] == {"done": 24}
