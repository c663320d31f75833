"""The built-in instruction-induction suite: ten tasks whose question is a bare word, name or number.

After Honovich et al. 2022 and APE (Zhou et al. 2023): the input ("France", "42", "swim") never
states the rule, so a task model told only "Let's think step by step." has to guess what is
asked, while one told the rule ("Name the capital city of the country.") can answer. The
instruction carries the task, which is what prompt optimization is meant to find.

Every task ships a human reference: one plain instruction written from the rule before any
optimization, scored as its own row (`--method reference`). The suite is split into two fixed
halves: settings are chosen on the tuning half's dev splits and confirmed on the confirmation
half's test splits, so that no choice is ever made on the tasks that confirm it.

The data are generated offline from the word lists of suite_words.py, suite_past_tense.py,
suite_translations.py and suite_countries.py and the number-naming rule below; each split draws
from its own disjoint share of the list, so no input is in two splits.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

from gpo_local.core import Example
from gpo_local.tasks.suite_countries import COUNTRIES
from gpo_local.tasks.suite_past_tense import PAST_TENSE
from gpo_local.tasks.suite_translations import TRANSLATIONS
from gpo_local.tasks.suite_words import COMMON_WORDS

# Settings are chosen on these tasks' dev splits only...
SUITE_TUNING = ("antonyms", "first_letter", "past_tense", "translate_spanish", "country_capital")
# ...and confirmed on these tasks' test splits.
SUITE_CONFIRMATION = ("last_letter", "uppercase", "number_to_words", "translate_french", "country_continent")
SUITE = SUITE_TUNING + SUITE_CONFIRMATION

# Disjoint shares of each list: at least 40 dev and 100 test questions (164 items in all).
SUITE_SIZES = {"train": 16, "eval": 40, "test": 100, "format": 8}

# Where the answer starts in a sentence ("The capital of France is Paris.", "Answer: Paris",
# "42 -> forty-two", "dog translates to perro"): after the last of these on the line.
_ANSWER_MARKER = re.compile(
    r"\bis\b|->|→|=>|:"
    r"|\btranslates?\s+(?:in)?to(?:\s+\w+)?\s+as\b|\btranslates?\s+(?:in)?to\b",
    re.I,
)
# A quoted answer ("translates to "perro" in Spanish"): the text inside the quotes.
_QUOTED = re.compile(r"\s*[\"“«*]+([^\"”»*]+)[\"”»*]")
# "42 is written as forty-two", "France is located in Europe": the words between "is" and the answer.
_LEAD_WORDS = re.compile(
    r"^\s*(?:(?:written|spelled|spelt|called|known|said|located)\s+)?(?:as|in|on)\s+"
    r"|^\s*(?:written|spelled|spelt|called|known|said|located)\s+",
    re.I,
)
# "Paris is the capital of France.": the answer comes first, before an "is the/a/an" ...
_ANSWER_FIRST = re.compile(r"^\s*([^\s.!?:]+(?:\s+[^\s.!?:]+){0,3}?)\s+is\s+(?:the|a|an)\s", re.I)
# ... unless it is a pronoun or a lead-in ("This is the ...", "The answer is a ...").
_NOT_AN_ANSWER = re.compile(
    r"^[\"'`*“‘]*(?:the|a|an|this|that|it|there|here|which|what|answer|output|"
    r"he|she|they|i|my|your|its)\b",
    re.I,
)
# Where an answer ends: a clause break, a bracket, a sentence end.
_ANSWER_END = re.compile(r"[,;(\[!?]|\s[-–—]\s|\.\s")
_QUOTES = "\"'`*“”‘’«» "
# Articles a translation may carry ("el perro", "le chien", "l'eau").
_ARTICLES = re.compile(r"^(?:l['’]\s*|(?:el|la|los|las|un|una|unos|unas|le|les|une|des)\s+)")


def _strip_accents(text: str) -> str:
    text = text.replace("œ", "oe").replace("Œ", "OE")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@dataclass(frozen=True)
class PhraseRule:
    """Answer rule for a short answer of one or more words, in one round (as antonyms' WordRule:
    the reply is scored as it is). The answer is the first line's text after its last "is",
    arrow or colon (the whole line if it has none), up to the first clause break, without quotes
    ("Paris is the capital of France." gives its first words). Both it and each accepted answer are
    compared in a canonical form: accents and hyphens dropped, lower case unless `case_sensitive`,
    a leading "the" dropped, leading articles dropped for translations (`articles`), the word "and"
    dropped for number names (`number_words`: "one hundred and five" and "one hundred five" both
    count)."""

    case_sensitive: bool = False
    articles: bool = False
    number_words: bool = False
    two_rounds: bool = False
    family: str = "word"

    def followup(self, question: str) -> str | None:
        return None

    def _span(self, line: str) -> str:
        first = _ANSWER_FIRST.match(line)
        if first and not _NOT_AN_ANSWER.match(first.group(1)):
            return first.group(1).strip().strip(_QUOTES)
        markers = list(_ANSWER_MARKER.finditer(line))
        span = line[markers[-1].end() :] if markers else line
        span = _LEAD_WORDS.sub("", span)
        quoted = _QUOTED.match(span)
        if quoted:
            return quoted.group(1).strip().rstrip(".").strip()
        span = _ANSWER_END.split(span, maxsplit=1)[0]
        return span.strip().strip(_QUOTES).rstrip(".").strip(_QUOTES)

    def canonical(self, text: str) -> str:
        text = _strip_accents(text.strip())
        if not self.case_sensitive:
            text = text.lower()
            text = re.sub(r"^the\s+", "", text)
        if self.articles:
            text = _ARTICLES.sub("", text.lower())
        text = re.sub(r"[-‐–]", " ", text)
        text = re.sub(r"[^0-9A-Za-z ]", "", text)
        words = text.split()
        if self.number_words:
            words = [w for w in words if w != "and"]
            if words[:2] == ["a", "hundred"]:
                words[0] = "one"
        return " ".join(words)

    def normalize(self, raw: str) -> str:
        lines = [line for line in raw.strip().splitlines() if line.strip()]
        for line in lines[:2]:  # "The answer is:" with the answer on the next line
            span = self._span(line)
            if span:
                return self.canonical(span)
        return ""

    def is_correct(self, prediction: str, target) -> bool:
        accepted = (target,) if isinstance(target, str) else tuple(target)
        return bool(prediction) and prediction in {self.canonical(a) for a in accepted}

    def grade(self, prediction: str, target) -> float:
        return float(self.is_correct(prediction, target))

    def score(self, raw: str, target) -> float:
        return self.grade(self.normalize(raw), target)

    def grade_example(self, prediction: str, example: Example) -> float:
        return self.grade(prediction, example.target)


PHRASE_RULE = PhraseRule()
UPPERCASE_RULE = PhraseRule(case_sensitive=True)
TRANSLATION_RULE = PhraseRule(articles=True)
NUMBER_RULE = PhraseRule(number_words=True)

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_name(n: int) -> str:
    """The English name of 0 <= n <= 999: 42 -> "forty-two", 305 -> "three hundred five"."""
    if not 0 <= n <= 999:
        raise ValueError(f"number_name: {n} is outside 0..999")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + (f" {number_name(rest)}" if rest else "")


def _answers(kind: str) -> dict[str, tuple[str, ...]]:
    """input -> accepted answers, for each task of the suite but antonyms."""
    continents = {country: tuple(c.title() for c in entry[1]) for country, entry in COUNTRIES.items()}
    return {
        "first_letter": {word: (word[0],) for word in COMMON_WORDS},
        "last_letter": {word: (word[-1],) for word in COMMON_WORDS},
        "uppercase": {word: (word.upper(),) for word in COMMON_WORDS},
        "past_tense": dict(PAST_TENSE),
        "number_to_words": {str(n): (number_name(n),) for n in range(1000)},
        "country_capital": {country: entry[0] for country, entry in COUNTRIES.items()},
        "country_continent": continents,
        "translate_spanish": {word: entry[0] for word, entry in TRANSLATIONS.items()},
        "translate_french": {word: entry[1] for word, entry in TRANSLATIONS.items()},
    }[kind]


def split_inputs(name: str, inputs: list[str], sizes: dict[str, int], seed: int) -> dict[str, list[str]]:
    """Disjoint shares of `inputs` per split (in `sizes` order), shuffled by the seed."""
    pool = sorted(inputs)
    random.Random(f"{name}:inputs:{seed}").shuffle(pool)
    needed = sum(sizes.values())
    if needed > len(pool):
        raise ValueError(f"{name}: the splits ask for {needed} inputs, the list has {len(pool)}")
    out, start = {}, 0
    for split, n in sizes.items():
        out[split] = pool[start : start + n]
        start += n
    return out


def suite_splits(sizes: dict, seed: int, name: str) -> dict[str, list[Example]]:
    """Every split of a suite task: each from its own share of the inputs and its own RNG stream."""
    answers = _answers(name)
    shares = split_inputs(name, list(answers), sizes, seed)
    splits = {}
    for split, share in shares.items():
        order = random.Random(f"{name}:{split}:{seed}").sample(share, len(share))
        splits[split] = [
            Example(id=f"{split}-{i}", input=item, target=answers[item]) for i, item in enumerate(order)
        ]
    return splits


@dataclass(frozen=True)
class SuiteSpec:
    """What a suite task sets: its rule, description, human reference and answer length; the
    rest (sizes, initial prompt, generator) is the same for every suite task."""

    description: str
    reference_prompt: str
    rule: PhraseRule
    max_tokens: tuple[int, int] = (24, 0)  # one round: the answer is a word or a short name
    generate: Callable[[dict, int, str], dict[str, list[Example]]] = suite_splits


# The references are plain statements of the rule. One was reworded after a dev-split check with
# the 0.5B task model: "Write the word in capital letters." was read as "capitalize the word".
SUITE_SPECS: dict[str, SuiteSpec] = {
    "first_letter": SuiteSpec(
        description="give the first letter of a word",
        reference_prompt="Write the first letter of the word.",
        rule=PHRASE_RULE,
    ),
    "last_letter": SuiteSpec(
        description="give the last letter of a word",
        reference_prompt="Write the last letter of the word.",
        rule=PHRASE_RULE,
    ),
    "uppercase": SuiteSpec(
        description="write a word in capital letters (case matters)",
        reference_prompt="Write the word in all uppercase letters.",
        rule=UPPERCASE_RULE,
    ),
    "past_tense": SuiteSpec(
        description="give the simple past of a verb, irregular verbs included",
        reference_prompt="Give the past tense of the verb.",
        rule=PHRASE_RULE,
    ),
    "number_to_words": SuiteSpec(
        description="write a number from 0 to 999 in English words",
        reference_prompt="Write the number in English words.",
        rule=NUMBER_RULE,
        max_tokens=(32, 0),
    ),
    "country_capital": SuiteSpec(
        description="name a country's capital city",
        reference_prompt="Name the capital city of the country.",
        rule=PHRASE_RULE,
        max_tokens=(32, 0),
    ),
    "country_continent": SuiteSpec(
        description="name the continent a country is in",
        reference_prompt="Name the continent the country is in.",
        rule=PHRASE_RULE,
    ),
    "translate_spanish": SuiteSpec(
        description="translate an English word into Spanish",
        reference_prompt="Translate the English word into Spanish.",
        rule=TRANSLATION_RULE,
    ),
    "translate_french": SuiteSpec(
        description="translate an English word into French",
        reference_prompt="Translate the English word into French.",
        rule=TRANSLATION_RULE,
    ),
}
