from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.testing import ScriptedLLM


def counting_llm():
    return ScriptedLLM(
        lambda messages, temperature, seed: f"{messages[-1]['content']}|{seed}", fingerprint="m1"
    )


def test_memo_returns_stored_replies_and_misses_on_any_key_change(tmp_path):
    inner = counting_llm()
    llm = MemoizedLLM(inner, Memo(tmp_path / "memo.sqlite"))
    first = llm.generate(["a", "b"], max_tokens=10)
    assert llm.generate(["a", "b"], max_tokens=10) == first and len(inner.calls) == 2
    llm.generate(["a"], max_tokens=11)  # max_tokens
    llm.generate(["a"], max_tokens=10, stop=["x"])  # stop strings
    llm.generate(["a"], max_tokens=10, temperature=1.0, seeds=[1])  # temperature
    llm.generate(["a"], max_tokens=10, temperature=1.0, seeds=[2])  # seed
    llm.generate(
        [
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": "b"},
            ]
        ],
        max_tokens=10,
    )  # conversation
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


def _second_turn(first):
    def follow_up(i, reply):
        if first[i] == "single":  # a chain without a second round
            return None
        return [
            {"role": "user", "content": first[i]},
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "final?"},
        ]

    return follow_up


def test_two_rounds_fallback_matches_two_generate_calls():
    from gpo_local.backends import two_rounds

    llm = counting_llm()
    first = ["a", "single", "b"]
    got = two_rounds(llm, first, _second_turn(first), max_tokens=(10, 3))
    assert got == [("a|None", "final?|None"), ("single|None", None), ("b|None", "final?|None")]
    assert [c["max_tokens"] for c in llm.calls] == [10, 10, 10, 3, 3]


def test_memoized_two_rounds_store_under_the_keys_generate_uses(tmp_path):
    inner = counting_llm()
    llm = MemoizedLLM(inner, Memo(tmp_path / "memo.sqlite"))
    first = ["a", "single", "b"]
    got = llm.generate_two_rounds(first, _second_turn(first), max_tokens=(10, 3))
    assert len(inner.calls) == 5 and (llm.hits, llm.misses) == (0, 5)
    # Every stored reply is found again, by the two-round path and by plain generate calls.
    assert llm.generate_two_rounds(first, _second_turn(first), max_tokens=(10, 3)) == got
    assert llm.generate(first, max_tokens=10) == [a for a, _ in got]
    assert len(inner.calls) == 5 and llm.hits == 5 + 3
    # A first round stored without its second (a run killed in between): only the second runs.
    llm.generate(["c"], max_tokens=10)
    calls = len(inner.calls)
    assert llm.generate_two_rounds(["c"], _second_turn(["c"]), max_tokens=(10, 3)) == [
        ("c|None", "final?|None")
    ]
    assert len(inner.calls) == calls + 1 and inner.calls[-1]["max_tokens"] == 3


def test_counting_wrapper_keeps_the_native_two_round_path():
    from gpo_local.backends import CountingLLM

    class Native:
        fingerprint = "native"
        native_calls = 0

        def generate_two_rounds(self, first, follow_up, *, max_tokens, temperature=0.0):
            self.native_calls += 1
            return [(f"{c} one", "two words") for c in first]

    inner = Native()
    counting = CountingLLM(inner)
    assert counting.generate_two_rounds(["a", "b"], lambda i, r: "x", max_tokens=(4, 2)) == [
        ("a one", "two words"),
        ("b one", "two words"),
    ]
    assert inner.native_calls == 1 and counting.calls == 4 and counting.tokens == 8
