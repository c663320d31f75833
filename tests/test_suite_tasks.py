import re
from dataclasses import replace

import pytest
from click.testing import CliRunner

from gpo_local.app.cli import main
from gpo_local.app.settings import resolve
from gpo_local.errors import ConfigError
from gpo_local.methods import METHODS
from gpo_local.quality.config import METHODS as BENCH_METHODS
from gpo_local.tasks import load_task
from gpo_local.tasks.builtin import BUILTIN_TASKS, SIZE_OPTIONS, builtin_splits
from gpo_local.tasks.suite import NUMBER_RULE, SUITE, SUITE_CONFIRMATION, SUITE_TUNING, number_name

NEW_TASKS = [name for name in SUITE if name != "antonyms"]
# (train, eval, test, format) of each task, as declared.
EXPECTED_SIZES = {name: (16, 40, 100, 8) for name in NEW_TASKS} | {"antonyms": (16, 40, 40, 8)}
# A wrong answer per task, from the input: the rule must reject it.
WRONG = {
    "first_letter": lambda word: word,
    "last_letter": lambda word: word[:-1],
    "uppercase": lambda word: word.capitalize(),
    "past_tense": lambda verb: verb + "s",
    "number_to_words": lambda number: number,
    "country_capital": lambda country: "Springfield",
    "country_continent": lambda country: "Antarctica",
    "translate_spanish": lambda word: "gracias",
    "translate_french": lambda word: "merci",
    "antonyms": lambda word: word,
}


def test_the_suite_has_ten_tasks_in_two_fixed_halves():
    assert len(SUITE) == len(set(SUITE)) == 10
    assert SUITE_TUNING == ("antonyms", "first_letter", "past_tense", "translate_spanish", "country_capital")
    assert SUITE_CONFIRMATION == (
        "last_letter",
        "uppercase",
        "number_to_words",
        "translate_french",
        "country_continent",
    )
    assert not set(SUITE_TUNING) & set(SUITE_CONFIRMATION)
    assert set(SUITE) <= set(BUILTIN_TASKS) and "sentiment" in BUILTIN_TASKS


def test_every_suite_task_has_a_reference_prompt_and_no_algorithm_settings():
    for name in SUITE:
        spec = BUILTIN_TASKS[name]
        assert spec.reference_prompt and spec.reference_prompt.endswith(".")
        assert spec.initial_prompt == "Let's think step by step."
        assert not spec.rule.two_rounds and spec.max_tokens[1] == 0 and spec.max_tokens[0] <= 32
        if name != "antonyms":
            assert spec.optimize_defaults == {}
        assert set(spec.optimize_defaults) <= SIZE_OPTIONS
    assert BUILTIN_TASKS["antonyms"].reference_prompt == "Give the opposite of the word."
    assert BUILTIN_TASKS["sentiment"].reference_prompt is None


def test_a_built_in_task_sets_only_its_sizes():
    assert all(set(spec.optimize_defaults) <= SIZE_OPTIONS for spec in BUILTIN_TASKS.values())
    with pytest.raises(ValueError, match="sets only its sizes"):
        replace(BUILTIN_TASKS["antonyms"], optimize_defaults={"steps": 4, "grammar": False})


def test_forbidden_tasks_are_absent():
    # Kept aside for an independent check: no comparison of animals, no plurals, no sums.
    for name in BUILTIN_TASKS:
        assert not re.search(r"animal|larg|big|plural|singular|sum|add|arithm", name), name
    for name in NEW_TASKS:
        for example in builtin_splits(name)["eval"]:
            assert not re.search(r"\+|\band\b.*\d|\d\s+\d", example.input), (name, example.input)


@pytest.mark.parametrize("name", SUITE)
def test_generation_is_deterministic_per_seed(name):
    first, again, other = builtin_splits(name, 0), builtin_splits(name, 0), builtin_splits(name, 1)
    assert first == again
    assert first["test"] != other["test"]


@pytest.mark.parametrize("name", SUITE)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splits_are_disjoint_and_sized_as_declared(name, seed):
    splits = builtin_splits(name, seed)
    sizes = tuple(len(splits[s]) for s in ("train", "eval", "test", "format"))
    assert sizes == EXPECTED_SIZES[name]
    seen = {}
    for split, examples in splits.items():
        inputs = [e.input for e in examples]
        assert len(inputs) == len(set(inputs)), f"{name} {split}: an input twice"
        for item in inputs:
            assert item not in seen, f"{name}: {item!r} in {seen.get(item)} and {split}"
            seen[item] = split
        assert [e.id for e in examples] == [f"{split}-{i}" for i in range(len(examples))]


@pytest.mark.parametrize("name", SUITE)
def test_every_target_is_accepted_and_a_wrong_answer_rejected(name):
    rule = BUILTIN_TASKS[name].rule
    for examples in builtin_splits(name, 0).values():
        for example in examples:
            accepted = (example.target,) if isinstance(example.target, str) else example.target
            for answer in accepted:
                assert rule.score(answer, example.target) == 1.0, (name, answer)
                assert rule.score(f"The answer is {answer}.", example.target) == 1.0, (name, answer)
                assert rule.score(f'"{answer}"', example.target) == 1.0, (name, answer)
            wrong = WRONG[name](example.input)
            assert rule.score(wrong, example.target) == 0.0, (name, wrong)
            assert rule.score(f"The answer is {wrong}.", example.target) == 0.0, (name, wrong)
            assert rule.score("", example.target) == 0.0


def test_answer_rules_on_typical_replies():
    capital = BUILTIN_TASKS["country_capital"].rule
    assert capital.score("The capital of France is Paris.", ("Paris",)) == 1.0
    assert capital.score("Paris is the capital of France.", ("Paris",)) == 1.0
    assert capital.score("Answer: Buenos Aires", ("Buenos Aires",)) == 1.0
    assert capital.score("France is a country in Europe.", ("Paris",)) == 0.0
    continent = BUILTIN_TASKS["country_continent"].rule
    assert continent.score("France is located in Europe.", ("Europe",)) == 1.0
    assert continent.score("Asia", ("Europe", "Asia")) == 1.0
    upper = BUILTIN_TASKS["uppercase"].rule
    assert upper.score('The word in capital letters is "APPLE".', ("APPLE",)) == 1.0
    assert upper.score("Apple", ("APPLE",)) == 0.0 and upper.score("apple", ("APPLE",)) == 0.0
    spanish = BUILTIN_TASKS["translate_spanish"].rule
    assert spanish.score("El perro", ("perro", "perra")) == 1.0
    assert spanish.score('The Spanish word for "tree" is "arbol".', ("árbol",)) == 1.0
    assert spanish.score('The English word "dog" translates to "perro" in Spanish.', ("perro",)) == 1.0
    assert spanish.score('The English word "book" translates to Spanish as "libro".', ("libro",)) == 1.0
    assert spanish.score('The English word "go" translates to "go" in Spanish.', ("ir",)) == 0.0
    french = BUILTIN_TASKS["translate_french"].rule
    assert french.score("l'oeuf", ("œuf", "oeuf")) == 1.0 and french.score("le chien", ("chien",)) == 1.0
    past = BUILTIN_TASKS["past_tense"].rule
    assert past.score("The past tense of go is went.", ("went",)) == 1.0
    assert past.score("go -> went", ("went",)) == 1.0 and past.score("gone", ("went",)) == 0.0
    letter = BUILTIN_TASKS["first_letter"].rule
    assert letter.score('The first letter of "apple" is "A".', ("a",)) == 1.0
    assert letter.score("apple", ("a",)) == 0.0


def test_number_names_and_their_spellings():
    assert [number_name(n) for n in (0, 7, 13, 20, 42, 100, 305, 999)] == [
        "zero",
        "seven",
        "thirteen",
        "twenty",
        "forty-two",
        "one hundred",
        "three hundred five",
        "nine hundred ninety-nine",
    ]
    for reply in ("forty-two", "Forty two", "42 is written as forty-two.", "Answer: forty-two"):
        assert NUMBER_RULE.score(reply, ("forty-two",)) == 1.0, reply
    for reply in ("one hundred and five", "one hundred five", "a hundred and five"):
        assert NUMBER_RULE.score(reply, ("one hundred five",)) == 1.0, reply
    assert NUMBER_RULE.score("forty", ("forty-two",)) == 0.0
    assert NUMBER_RULE.score("42", ("forty-two",)) == 0.0


def test_loaded_task_carries_its_reference_prompt():
    task = load_task("country_capital", seed=2)
    assert task.reference_prompt == "Name the capital city of the country."
    assert len(task.split("eval")) == 40 and len(task.split("test")) == 100
    assert load_task("sentiment").reference_prompt is None


def test_reference_method_is_registered_and_needs_a_reference():
    assert "reference" in METHODS and "reference" in BENCH_METHODS
    settings = resolve("past_tense", {"method": "reference"}, {"method"})
    assert settings.config.method == "reference"
    assert settings.task.reference_prompt == "Give the past tense of the verb."
    with pytest.raises(ConfigError, match="task 'sentiment' has none"):
        resolve("sentiment", {"method": "reference"}, {"method"})
    with pytest.raises(ConfigError, match="does not apply to method='reference'"):
        resolve("past_tense", {"method": "reference", "initial_prompt": "Hi."}, {"method", "initial_prompt"})


def test_tasks_command_lists_the_suite_with_halves_and_references():
    result = CliRunner().invoke(main, ["tasks"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "suite: tuning half; reference prompt: 'Give the opposite of the word.'" in out
    assert "suite: confirmation half; reference prompt: 'Write the number in English words.'" in out
    for name in SUITE:
        assert f"\n{name}: " in "\n" + out
