"""Bad input through the command line: one line naming the file, field or value, a non-zero exit
code, nothing already computed lost. No model loads here (each case fails before that), except
the ones marked integration at the end."""

import json

import pytest
from click.testing import CliRunner

from gpo_local.app.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output.strip()


def one_error_line(output):
    lines = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def write(path, text, args):
    path.write_text(text)
    return args


@pytest.fixture
def task_dir(tmp_path):
    folder = tmp_path / "mytask"
    folder.mkdir()
    (folder / "eval.jsonl").write_text('{"input": "q1", "target": "a"}\n{"input": "q2", "target": "b"}\n')
    (folder / "format.jsonl").write_text('{"input": "f", "target": "a"}\n')
    return folder


CASES = {
    "missing split file": (
        lambda d: ["eval", d, "--prompt", "x", "--split", "test"],
        r"Error: task 'mytask' has no 'test' split: .*mytask/test.jsonl not found \(it has: eval, format\)",
    ),
    "malformed JSON line": (
        lambda d: write(
            d / "eval.jsonl",
            '{"input": "q", "target": "a"}\n{"input": "q2", \n',
            ["eval", d, "--prompt", "x"],
        ),
        r"Error: .*mytask/eval.jsonl:2: malformed JSON \(Expecting property name enclosed in double quotes\)",
    ),
    "missing field": (
        lambda d: write(d / "eval.jsonl", '{"question": "q", "target": "a"}\n', ["eval", d, "--prompt", "x"]),
        r"Error: .*mytask/eval.jsonl:1: missing field 'input' \(choose one with --input-field\); "
        r"fields present: question, target",
    ),
    "missing mapped field": (
        lambda d: ["eval", d, "--prompt", "x", "--target-field", "answer"],
        r"Error: .*mytask/eval.jsonl:1: missing field 'answer'; fields present: input, target",
    ),
    "empty split": (
        lambda d: write(d / "eval.jsonl", "\n", ["eval", d, "--prompt", "x"]),
        r"Error: task 'mytask': the 'eval' split is empty",
    ),
    "unknown task": (
        lambda d: ["optimize", d / "nope"],
        r"Error: unknown task '.*nope': not a built-in task \([a-z_, ]+\), nor an existing directory or "
        r"jsonl/json/csv/parquet file; directories whose answer rules are known: bbh/<task>, mmlu/<subject>, "
        r"gsm8k, wsc, webnlg; a Hugging Face dataset is written hf:<id>",
    ),
    "GGUF path that does not exist": (
        lambda d: ["eval", "sentiment", "--prompt", "x", "--task-model", d / "missing.gguf"],
        r"Error: model '.*missing.gguf' is neither a catalog name \(qwen2\.5-coder-0\.5b-instruct, "
        r"qwen2\.5-coder-1\.5b-instruct, smollm2-135m-instruct\) nor an existing file",
    ),
    "GGUF path that is a directory": (
        lambda d: ["eval", "sentiment", "--prompt", "x", "--task-model", d],
        r"Error: .*mytask is a directory, not a GGUF file \(it holds no .gguf file\): give the model's "
        r".gguf file "
        r"or a catalog name",
    ),
    "file that is not GGUF": (
        lambda d: write(
            d / "model.gguf",
            "hello",
            ["eval", "sentiment", "--prompt", "x", "--task-model", d / "model.gguf"],
        ),
        r"Error: .*model.gguf is not a GGUF file \(its first bytes are not 'GGUF'\)",
    ),
    "missing embedder": (
        lambda d: [
            "optimize",
            "sentiment",
            "--embedder",
            "no-such-embedder",
            "--task-model",
            d / "never-loaded.gguf",
        ],
        r"Error: embedder 'no-such-embedder' not found: not a catalog name \(all-minilm-l6-v2\), nor a local "
        r"directory, nor a model in the local Hugging Face cache \(nothing is downloaded\)",
    ),
    "unknown metric": (
        lambda d: ["eval", d, "--prompt", "x", "--metric", "bleu"],
        r"Error: Invalid value for '--metric': 'bleu' is not one of 'exact', 'choice', 'number', 'yes-no', "
        r"'rouge-l'",
    ),
    "malformed --splits": (
        lambda d: ["eval", "hf:x/y", "--prompt", "x", "--splits", "eval"],
        r"Error: Invalid value for '--splits': 'eval' is not ROLE=NAME",
    ),
    "unknown split role": (
        lambda d: ["eval", "hf:x/y", "--prompt", "x", "--splits", "dev=validation"],
        r"Error: --splits: unknown split role 'dev'; known: train, eval, test, few_shot_examples, format",
    ),
    "data options on a built-in task": (
        lambda d: ["optimize", "sentiment", "--input-field", "q"],
        r"Error: the built-in task 'sentiment' takes no data options \(got --input-field\)",
    ),
    "zero candidates": (
        lambda d: ["optimize", "sentiment", "--candidates", "0"],
        r"Error: Invalid value for '--candidates': 0 is not in the range x>=1",
    ),
    "negative steps": (
        lambda d: ["optimize", "sentiment", "--steps", "-2"],
        r"Error: Invalid value for '--steps': -2 is not in the range x>=1",
    ),
    "zero dev limit": (
        lambda d: ["optimize", "sentiment", "--dev-limit", "0"],
        r"Error: Invalid value for '--dev-limit': 0 is not in the range x>=1",
    ),
    "zero eval limit": (
        lambda d: ["eval", "sentiment", "--prompt", "x", "--limit", "0"],
        r"Error: Invalid value for '--limit': 0 is not in the range x>=1",
    ),
    "unknown position": (
        lambda d: ["optimize", "sentiment", "--position", "middle"],
        r"Error: Invalid value for '--position': 'middle' is not one of 'Q_end', 'Q_begin', 'A_begin'",
    ),
    "holdout as large as the dev split": (
        lambda d: ["optimize", d, "--test-holdout", "2"],
        r"Error: task 'mytask': --test-holdout 2 must be between 1 and 1 \(the eval split has 2 examples\)",
    ),
    # --- issue 14 ---
    "empty initial prompt": (
        lambda d: ["optimize", "sentiment", "--initial-prompt", ""],
        r"Error: --initial-prompt is empty: give a starting instruction, leave the option out for the "
        r"task's own, "
        r"or use --method empty for the no-instruction baseline",
    ),
    "resume without a run directory": (
        lambda d: ["optimize", "sentiment", "--resume"],
        r"Error: --resume needs --run-dir \(the run to continue\)",
    ),
    "resume of a folder that is not a run": (
        lambda d: ["optimize", "sentiment", "--resume", "--run-dir", d],
        r"Error: .*mytask/config.json not found: is this a gpo-local run directory\?",
    ),
    "run directory that is a file": (
        lambda d: ["optimize", "sentiment", "--run-dir", d / "eval.jsonl"],
        r"Error: Invalid value for '--run-dir': Directory '.*eval.jsonl' is a file.",
    ),
    "context below 256": (
        lambda d: ["optimize", "sentiment", "--n-ctx", "100"],
        r"Error: Invalid value for '--n-ctx': 100 is not in the range x>=256",
    ),
    "show of a folder that is not a run": (
        lambda d: ["show", d],
        r"Error: .*mytask/config.json not found: is this a gpo-local run directory\?",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clear_line_and_a_non_zero_exit(case, task_dir):
    build, expected = CASES[case]
    code, output = run(*build(task_dir))
    assert code in (1, 2)  # 1: bad data or model (GpoError); 2: bad option (click usage error)
    line = one_error_line(output)
    assert __import__("re").fullmatch(expected + ".*", line), line


def test_an_error_leaves_an_existing_run_untouched(tmp_path, task_dir):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trajectory.jsonl").write_text(
        json.dumps({"kind": "init", "step": -1, "prompt": "p", "dev_score": 0.5}) + "\n"
    )
    (run_dir / "config.json").write_text(
        json.dumps(
            {
                "task": "sentiment",
                "task_source": "builtin:sentiment",
                "config": {"steps": 1},
                "initial_prompt": "p",
                "models": {
                    "task": {"spec": "smollm2-135m-instruct"},
                    "optimizer": {"spec": "smollm2-135m-instruct"},
                    "embedder": {"spec": "no-such-embedder"},
                },
                "settings": {"n_ctx": 512, "n_gpu_layers": 0, "parallel": 1, "threads": 1},
            }
        )
    )
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code, output = run("optimize", task_dir, "--run-dir", run_dir)
    assert code == 1 and one_error_line(output).endswith(
        "run already holds a run; use --resume to continue it or choose another --run-dir"
    )
    code, output = run("optimize", "sentiment", "--run-dir", run_dir, "--resume")
    assert code == 1 and one_error_line(output).startswith("Error: embedder 'no-such-embedder' not found")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


# --- issue 14: damaged run files and misplaced homes (a run directory or an environment to set up) ----------


def minimal_run(folder):
    folder.mkdir()
    (folder / "trajectory.jsonl").write_text(
        json.dumps({"kind": "init", "step": -1, "prompt": "p", "dev_score": 0.5, "candidates": []}) + "\n"
    )
    (folder / "config.json").write_text(
        json.dumps({"task": "sentiment", "method": "gpo", "config": {"steps": 1}})
    )
    return folder


BINARY = bytes(range(128, 256)) * 2

RUN_CASES = {
    "GPO_LOCAL_HOME is a file": (
        lambda run, home: (home.write_text("x"), ["eval", "sentiment", "--prompt", "x"])[1],
        r"Error: GPO_LOCAL_HOME .*home is a file, not a directory: point GPO_LOCAL_HOME at a directory "
        r"\(or move the file away\)",
    ),
    "binary result.json, show": (
        lambda run, home: ((run / "result.json").write_bytes(BINARY), ["show", run])[1],
        r"Error: (.*)/run/result.json is damaged \(not UTF-8 text at byte 0\): it is derived from the "
        r"trajectory: "
        r"recompute it with: gpo-local optimize --resume --run-dir \1/run",
    ),
    "binary result.json, report": (
        lambda run, home: ((run / "result.json").write_bytes(BINARY), ["report", run])[1],
        r"Error: .*run/result.json is damaged \(not UTF-8 text at byte 0\): it is derived from the "
        r"trajectory: "
        r"recompute it with: gpo-local optimize --resume --run-dir .*/run",
    ),
    "text garbage result.json, show": (
        lambda run, home: ((run / "result.json").write_text("{garbage"), ["show", run])[1],
        r"Error: .*run/result.json is damaged \(not JSON: Expecting property name enclosed in double "
        r"quotes at "
        r"line 1\): it is derived from the trajectory: recompute it with: gpo-local optimize --resume "
        r"--run-dir",
    ),
    "result.json that is a JSON list, show": (
        lambda run, home: ((run / "result.json").write_text("[1, 2, 3]"), ["show", run])[1],
        r"Error: .*run/result.json has the wrong shape \(a JSON list, not a run result\): it is derived "
        r"from the "
        r"trajectory: recompute it with: gpo-local optimize --resume --run-dir .*/run",
    ),
    "result.json that is a JSON list, report": (
        lambda run, home: ((run / "result.json").write_text("[1, 2, 3]"), ["report", run])[1],
        r"Error: .*run/result.json has the wrong shape \(a JSON list, not a run result\): .*--resume "
        r"--run-dir",
    ),
    "trajectory record without its score, show": (
        lambda run, home: (
            (run / "trajectory.jsonl").write_text('{"kind": "init", "step": -1, "prompt": "p"}\n'),
            ["show", run],
        )[1],
        r"Error: .*run/trajectory.jsonl:1 has the wrong shape \(no dev score\): set it and the records "
        r"after it "
        r"aside and replay the rest with: gpo-local repair .*/run",
    ),
    "binary trajectory record, show": (
        lambda run, home: ((run / "trajectory.jsonl").write_bytes(BINARY + b"\n"), ["show", run])[1],
        r"Error: .*run/trajectory.jsonl:1 is damaged \(not UTF-8 text at byte 0 of the line\): set it and "
        r"the "
        r"records after it aside and replay the rest with: gpo-local repair .*/run",
    ),
    "binary trajectory record, report": (
        lambda run, home: ((run / "trajectory.jsonl").write_bytes(BINARY + b"\n"), ["report", run])[1],
        r"Error: .*run/trajectory.jsonl:1 is damaged \(not UTF-8 text at byte 0 of the line\): .*gpo-local "
        r"repair",
    ),
    "binary --config file": (
        lambda run, home: (
            (run / "b.toml").write_bytes(BINARY),
            ["optimize", "sentiment", "--config", run / "b.toml"],
        )[1],
        r"Error: config file .*run/b.toml: not UTF-8 text \(byte 0\): not a TOML file",
    ),
    "binary config.json, resume": (
        lambda run, home: (
            (run / "config.json").write_bytes(BINARY),
            ["optimize", "sentiment", "--resume", "--run-dir", run],
        )[1],
        r"Error: .*run/config.json is damaged \(not UTF-8 text at byte 0\): it cannot be derived from the "
        r"other "
        r"files: restore it, or start the run again in another --run-dir",
    ),
    "report written under a file": (
        lambda run, home: ["report", run, "-o", run / "config.json" / "report.html"],
        r"Error: .*run/config.json: file exists: a file is where a directory is expected: "
        r"move it away or choose another path",
    ),
}


@pytest.mark.parametrize("case", RUN_CASES)
def test_damaged_run_files_and_misplaced_homes_give_one_line(case, tmp_path, monkeypatch):
    build, expected = RUN_CASES[case]
    home = tmp_path / "home"
    monkeypatch.setenv("GPO_LOCAL_HOME", str(home))
    code, output = run(*build(minimal_run(tmp_path / "run"), home))
    assert code in (1, 2)
    line = one_error_line(output)
    assert __import__("re").fullmatch(expected + ".*", line), line


# --- cases that need the bundled model (integration) --------------------------------------------------------


def _bundled_model():
    from gpo_local.backends.catalog import DEFAULT_MODEL, load_catalog

    return load_catalog()[DEFAULT_MODEL].resolve()


def needs_model(test):
    test = pytest.mark.integration(test)
    return pytest.mark.skipif(_bundled_model() is None, reason="the bundled model is not installed")(test)


@needs_model
@pytest.mark.parametrize("case", ["eval", "optimize"])
def test_a_prompt_longer_than_the_context_is_one_line(case, tmp_path):
    long_prompt = "Please think very carefully. " * 80
    if case == "eval":
        args = ["eval", "sentiment", "--prompt", long_prompt, "--limit", "2"]
    else:
        args = [
            "optimize",
            "sentiment",
            "--initial-prompt",
            long_prompt,
            "--steps",
            "1",
            "--dev-limit",
            "2",
            "--run-dir",
            tmp_path / "run",
            "--quiet",
        ]
    code, output = run(*args, "--n-ctx", "256", "--threads", "2", "--parallel", "2")
    assert code == 1
    assert one_error_line(output).startswith(
        "Error: prompt 'Please think very carefully. Please think very carefully....' with eval question "
        "eval-0 "
        "of task 'sentiment' does not fit the context of 256 tokens: raise --n-ctx or shorten the prompt"
    )


@needs_model
def test_a_truncated_gguf_is_one_line(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    with _bundled_model().open("rb") as source:
        truncated.write_bytes(source.read(1 << 20))
    code, output = run("eval", "sentiment", "--prompt", "x", "--task-model", truncated, "--threads", "2")
    assert code == 1
    assert one_error_line(output).startswith(f"Error: cannot load GGUF model {truncated}: ")
    assert "(truncated or unsupported file?)" in output


@needs_model
def test_a_context_rounded_up_by_llama_cpp_is_named_as_in_force():
    code, output = run(
        "eval",
        "sentiment",
        "--prompt",
        "Please think very carefully. " * 120,
        "--limit",
        "2",
        "--n-ctx",
        "300",
        "--threads",
        "2",
        "--parallel",
        "2",
    )
    assert code == 1
    assert (
        "does not fit the context of 512 tokens (--n-ctx 300, which llama.cpp set to 512): raise --n-ctx"
        in one_error_line(output)
    )
