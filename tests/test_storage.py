"""File-system trouble (gpo_local/storage.py) as one line, found before any model loads where it
can be, and nothing already recorded lost: disk full and read-only errors are simulated with
monkeypatched writes raising OSError, so these tests run anywhere (tests/test_tmpfs.py does it
for real where mounting works)."""

import errno
import json
import os
import pathlib

import fake_cli
import pytest
from click.testing import CliRunner
from conftest import TIMINGS

from gpo_local.app.cli import main
from gpo_local.runs import locks
from gpo_local.runs.health import check_run
from gpo_local.runs.storage import storage_error


def error_line(result):
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def failing_open(monkeypatch, name, code):
    """Path.open raises OSError(code) for files called `name` opened for writing."""
    real_open = pathlib.Path.open

    def open_(self, mode="r", *args, **kwargs):
        if self.name == name and any(c in mode for c in "wa+"):
            raise OSError(code, os.strerror(code), str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_)


def comparable(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    for clock in TIMINGS:
        result.pop(clock)
    return result


@pytest.mark.parametrize(
    "code,advice",
    [
        (errno.ENOSPC, "no space left on device: free some space"),
        (errno.EROFS, "read-only file system: make its file system writable again"),
        (errno.EACCES, "permission denied: check its owner and permissions"),
    ],
)
def test_a_failed_result_write_is_one_line_and_resume_finishes_the_run(tmp_path, monkeypatch, code, advice):
    reference = tmp_path / "reference"
    assert fake_cli.optimize(monkeypatch, reference, "--quiet").exit_code == 0
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        failing_open(patch, "result.json.tmp", code)
        failed = fake_cli.optimize(monkeypatch, run_dir, "--quiet")
    assert failed.exit_code == 1
    command = f"gpo-local optimize sentiment --resume --run-dir {run_dir}"
    expected = f"Error: {run_dir}/result.json.tmp: {advice}, then continue the run with: {command}"
    assert error_line(failed) == expected
    assert not (run_dir / "result.json").exists() and not (run_dir / "result.json.tmp").exists()
    trajectory = (run_dir / "trajectory.jsonl").read_bytes()
    resumed = CliRunner().invoke(main, command.split()[1:] + ["--quiet"])  # the command, as it is said
    assert resumed.exit_code == 0, resumed.output
    assert (run_dir / "trajectory.jsonl").read_bytes() == trajectory  # nothing recorded was lost or redone
    assert comparable(run_dir) == comparable(reference)


def test_a_read_only_run_directory_is_found_before_any_model_loads(tmp_path, monkeypatch):
    import gpo_local.backends.llama_cpp as llama_cpp

    real_open = os.open

    def open_(path, flags, *args):
        if str(path).endswith("run.lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    fake_cli.install_fakes(monkeypatch)
    monkeypatch.setattr(llama_cpp, "load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    monkeypatch.setattr(locks.os, "open", open_)
    from click.testing import CliRunner

    from gpo_local.app.cli import main

    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, ["optimize", "sentiment", "--steps", "1", "--run-dir", str(run_dir)])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {run_dir}/run.lock: read-only file system: the file system is "
        "mounted read-only: choose a writable --run-dir / GPO_LOCAL_HOME; nothing "
        f"was recorded in the run directory {run_dir} yet, so run the same command "
        "again"
    )


def test_an_unwritable_run_file_stops_a_resume_before_any_model_loads(tmp_path, monkeypatch):
    import gpo_local.backends.llama_cpp as llama_cpp

    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--max-optimizer-calls", "3").exit_code == 0
    real_open = os.open

    def open_(path, flags, *args):
        if str(path).endswith("config.json") and flags & os.O_WRONLY:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("gpo_local.runs.storage.os.open", open_)
    monkeypatch.setattr(llama_cpp, "load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    from click.testing import CliRunner

    from gpo_local.app.cli import main

    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != "events.jsonl"}
    result = CliRunner().invoke(main, ["optimize", "sentiment", "--run-dir", str(run_dir), "--resume"])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {run_dir}/config.json: operation not permitted: check its permissions "
        "and attributes (lsattr; chattr -i lifts an immutable flag), then continue "
        f"the run with: gpo-local optimize sentiment --resume --run-dir {run_dir}"
    )
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name in before} == before


@pytest.mark.parametrize("garbage", [os.urandom(200), b"not json at all {", b'["a list"]\n'])
def test_a_damaged_result_is_recomputed_on_resume(tmp_path, monkeypatch, garbage):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet").exit_code == 0
    reference = comparable(run_dir)
    (run_dir / "result.json").write_bytes(garbage)
    assert check_run(run_dir).result is None and check_run(run_dir).problem("result.json")
    resumed = fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"{run_dir}/result.json " in resumed.output
    assert "recomputing it from the trajectory" in resumed.output
    assert comparable(run_dir) == reference


def test_storage_error_wording_for_each_errno():
    def line(code, path="/x/f"):
        return str(storage_error(OSError(code, os.strerror(code), path)))

    assert line(errno.EISDIR) == "/x/f: is a directory: a directory is where a file is expected: move it away"
    assert line(errno.ENOTDIR) == (
        "/x/f: not a directory: a file is where a directory is expected: move it away or choose another path"
    )
    assert line(errno.EPERM).startswith("/x/f: operation not permitted: check its permissions and attributes")
    assert str(storage_error(OSError(errno.ENOSPC, "No space left on device"))).startswith(
        "a file: no space left on device: free some space"
    )


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_report_that_cannot_be_written_suggests_another_output(tmp_path, monkeypatch, code):
    from click.testing import CliRunner

    from gpo_local.app.cli import main

    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet").exit_code == 0
    failing_open(monkeypatch, "report.html.tmp", code)
    result = CliRunner().invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {run_dir}/report.html.tmp: {os.strerror(code).lower()}: write the "
        "report elsewhere with -o FILE"
    )
    written = CliRunner().invoke(main, ["report", str(run_dir), "-o", str(tmp_path / "elsewhere.html")])
    assert written.exit_code == 0, written.output  # the suggested command works
    assert (tmp_path / "elsewhere.html").stat().st_size > 0
