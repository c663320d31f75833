from gpo_local.memo import Memo, MemoizedLLM
from gpo_local.testing import ScriptedLLM


def counting_llm():
    return ScriptedLLM(lambda messages, temperature, seed: f"{messages[-1]['content']}|{seed}", fingerprint="m1")


def test_memo_returns_stored_replies_and_misses_on_any_key_change(tmp_path):
    inner = counting_llm()
    llm = MemoizedLLM(inner, Memo(tmp_path / "memo.sqlite"))
    first = llm.generate(["a", "b"], max_tokens=10)
    assert llm.generate(["a", "b"], max_tokens=10) == first and len(inner.calls) == 2
    llm.generate(["a"], max_tokens=11)  # max_tokens
    llm.generate(["a"], max_tokens=10, stop=["x"])  # stop strings
    llm.generate(["a"], max_tokens=10, temperature=1.0, seeds=[1])  # temperature
    llm.generate(["a"], max_tokens=10, temperature=1.0, seeds=[2])  # seed
    llm.generate([[{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"},
                   {"role": "user", "content": "b"}]], max_tokens=10)  # conversation
    assert len(inner.calls) == 7
    other = counting_llm()
    other.fingerprint = "m2"  # another model file
    MemoizedLLM(other, Memo(tmp_path / "memo.sqlite")).generate(["a"], max_tokens=10)
    assert len(other.calls) == 1
    assert (llm.hits, llm.misses) == (2, 7)


def test_memo_survives_reopening_and_replaces_a_corrupt_file(tmp_path):
    path = tmp_path / "memo.sqlite"
    MemoizedLLM(counting_llm(), Memo(path)).generate(["a"], max_tokens=5)
    inner = counting_llm()
    assert MemoizedLLM(inner, Memo(path)).generate(["a"], max_tokens=5) == ["a|None"] and not inner.calls
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    inner = counting_llm()
    assert MemoizedLLM(inner, Memo(broken)).generate(["a"], max_tokens=5) == ["a|None"]
    assert (tmp_path / "broken.sqlite.corrupt").exists()
