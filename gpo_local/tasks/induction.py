"""Instruction-induction tasks: the question alone does not say what to do.

In these tasks (after Honovich et al. 2022 and APE, Zhou et al. 2023) an input such as
"hot" has one right answer only under a rule the question never states ("give the
antonym"). A task model told only "Let's think step by step." has to guess the rule; the
optimizer model sees the format examples with their gold outputs and can induce it. The
instruction is what carries the task, so these are the built-in tasks on which prompt
optimization has the most to win, and where a gain cannot come from the answer format alone: a
prompt that only asks for one word ("Answer with one word.") still leaves the rule to guess.

Every word list is written out here, so the data are generated offline and identically on every
machine. Where a word has more than one right answer, the target is a tuple of accepted answers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from gpo_local.core import Example

# word -> accepted antonyms (the first is the canonical one shown to the optimizer).
ANTONYMS: dict[str, tuple[str, ...]] = {
    "hot": ("cold",),
    "big": ("small", "little"),
    "fast": ("slow",),
    "happy": ("sad", "unhappy"),
    "tall": ("short",),
    "rich": ("poor",),
    "early": ("late",),
    "open": ("closed", "shut"),
    "full": ("empty",),
    "strong": ("weak",),
    "wet": ("dry",),
    "clean": ("dirty",),
    "loud": ("quiet", "soft"),
    "thick": ("thin",),
    "wide": ("narrow",),
    "deep": ("shallow",),
    "heavy": ("light",),
    "cheap": ("expensive", "costly"),
    "true": ("false",),
    "win": ("lose",),
    "buy": ("sell",),
    "push": ("pull",),
    "up": ("down",),
    "inside": ("outside",),
    "love": ("hate",),
    "friend": ("enemy", "foe"),
    "day": ("night",),
    "black": ("white",),
    "good": ("bad", "evil"),
    "always": ("never",),
    "accept": ("reject", "refuse"),
    "asleep": ("awake",),
    "brave": ("cowardly", "scared", "afraid"),
    "dangerous": ("safe",),
    "entrance": ("exit",),
    "first": ("last",),
    "float": ("sink",),
    "forget": ("remember",),
    "guilty": ("innocent",),
    "increase": ("decrease", "reduce"),
    "laugh": ("cry",),
    "lend": ("borrow",),
    "maximum": ("minimum",),
    "north": ("south",),
    "east": ("west",),
    "polite": ("rude", "impolite"),
    "positive": ("negative",),
    "question": ("answer",),
    "smooth": ("rough",),
    "sweet": ("sour", "bitter"),
    "tight": ("loose",),
    "top": ("bottom",),
    "victory": ("defeat", "loss"),
    "visible": ("invisible",),
    "wild": ("tame", "domestic"),
    "winter": ("summer",),
    "young": ("old",),
    "above": ("below", "under"),
    "before": ("after",),
    "ancient": ("modern", "new"),
    "arrive": ("leave", "depart"),
    "dead": ("alive", "living"),
    "difficult": ("easy", "simple"),
    "import": ("export",),
    "inner": ("outer",),
    "more": ("less", "fewer"),
    "near": ("far", "distant"),
    "odd": ("even",),
    "present": ("absent", "past"),
    "private": ("public",),
    "sharp": ("dull", "blunt"),
    "start": ("finish", "end", "stop"),
    "upper": ("lower",),
    "vertical": ("horizontal",),
    "war": ("peace",),
    "whisper": ("shout", "yell"),
    "clever": ("stupid", "dumb"),
    "generous": ("selfish", "stingy", "mean"),
    "hard": ("soft", "easy"),
    "huge": ("tiny", "small"),
    "long": ("short",),
    "empty": ("full",),
    "healthy": ("sick", "ill", "unhealthy"),
    "noisy": ("quiet", "silent"),
    "rise": ("fall", "sink"),
    "save": ("spend", "waste"),
    "success": ("failure",),
    "thin": ("thick", "fat"),
    "wake": ("sleep",),
    "warm": ("cool", "cold"),
    "wrong": ("right", "correct"),
    "arrival": ("departure",),
    "beautiful": ("ugly",),
    "bright": ("dark", "dim"),
    "calm": ("anxious", "nervous", "stormy", "agitated"),
    "come": ("go",),
    "frequent": ("rare", "infrequent"),
    "give": ("take", "receive"),
    "high": ("low",),
    "join": ("leave", "separate", "split"),
    "kind": ("cruel", "unkind", "mean"),
    "major": ("minor",),
    "mix": ("separate",),
    "narrow": ("wide", "broad"),
    "old": ("new", "young"),
    "optimist": ("pessimist",),
    "plural": ("singular",),
    "pretty": ("ugly",),
    "quick": ("slow",),
    "remember": ("forget",),
    "shallow": ("deep",),
    "teach": ("learn",),
    "together": ("apart", "alone"),
    "under": ("over", "above"),
}


def antonym_examples(n: int, rng: random.Random, split: str, words: list[str]) -> list[Example]:
    """`n` examples drawn without replacement from `words` (the split's own share)."""
    chosen = rng.sample(words, min(n, len(words)))
    return [Example(id=f"{split}-{i}", input=word, target=ANTONYMS[word]) for i, word in enumerate(chosen)]


def split_words(sizes: dict[str, int], seed: int) -> dict[str, list[str]]:
    """Disjoint word lists per split, so that no test word is ever seen during optimization."""
    words = sorted(ANTONYMS)
    random.Random(f"antonyms:words:{seed}").shuffle(words)
    out, start = {}, 0
    for split, n in sizes.items():
        out[split] = words[start : start + n]
        start += n
    if start > len(words):
        raise ValueError(f"antonyms: the splits ask for {start} words, the list has {len(words)}")
    return out


_LEAD_INS = re.compile(
    r"^(?:the\s+)?(?:final\s+)?(?:answer|output|antonym|opposite)(?:\s+word)?\s*(?:is|:)\s*", re.I
)
# "The antonym of the word "major" is "minor"." -> the word after the last " is ".
_IS_WORD = re.compile(r"\bis\s*[:\-]?\s*[\"'*]*([A-Za-z]+)", re.I)


@dataclass(frozen=True)
class WordRule:
    """Answer rule for one-word answers with several accepted spellings, in one round: the reply
    is scored as it is, so a prompt that leaves the task model guessing the rule cannot be rescued
    by a second turn (measured: a second "reply with only the answer word" turn made the 0.5B
    task model swap a right antonym back to the input word). The prediction is the word after
    the last "is" of the first line ("The antonym of "major" is "minor"."), else the line's first
    word after a lead-in such as "Answer:"."""

    two_rounds: bool = False
    family: str = "word"

    def followup(self, question: str) -> str | None:
        return None

    def normalize(self, raw: str) -> str:
        lines = [line for line in raw.strip().splitlines() if line.strip()]
        line = lines[0] if lines else ""
        stated = _IS_WORD.findall(line)
        if stated:
            return stated[-1].lower()
        words = re.findall(r"[a-z]+", _LEAD_INS.sub("", line.strip().strip("\"'*").strip()).lower())
        return words[0] if words else ""

    def is_correct(self, prediction: str, target) -> bool:
        accepted = (target,) if isinstance(target, str) else tuple(target)
        return prediction in {a.lower() for a in accepted}

    def grade(self, prediction: str, target) -> float:
        return float(self.is_correct(prediction, target))

    def score(self, raw: str, target) -> float:
        return self.grade(self.normalize(raw), target)

    def grade_example(self, prediction: str, example: Example) -> float:
        return self.grade(prediction, example.target)


WORD_RULE = WordRule()
