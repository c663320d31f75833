import pytest

from gpo_local.algorithm.updates import render_update, word_edit_distance
from gpo_local.core import Example, TrajectoryEntry
from gpo_local.replies.parsing import parse_candidate


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("Sure! <START>think carefully.<END> done", "Think carefully."),
        ("<START> a <END> <START> b <END>", "A"),
        ("<START>**Bold** answer</END>", "Bold answer"),
        ("<START><Prompt> Solve it.<END>", "Solve it."),
        ('<START>"Quoted prompt."<END>', "Quoted prompt."),
        ("no tags at all", "No tags at all"),
        ("<START>unterminated prompt", "Unterminated prompt"),
        ("<START>   <END>", None),
        ("", None),
        ("   \n ", None),
        (None, None),
        ("<START><Prompt><END>", None),
        ("<START> <Prompt> </END>", None),
        ("<START>Answer <Prompt> briefly.<END>", "Answer briefly."),
        ("<START>", None),
        ("<START>\x00\x1b[31mBe\x07 exact.<END>", "[31mBe exact."),
        ("<START>Say yes or no.\n \nEND", "Say yes or no."),  # a garbled closing tag on its last line
        ("<START>Say yes or no.\n</END", "Say yes or no."),
        ("<START>Write THE END in capitals.<END>", "Write THE END in capitals."),  # a word, not a tag
        # A label copied from the meta-prompt's "Prompt: <text>" lines is not part of the prompt.
        ("<START>Prompt: To get back, track each move.<END>", "To get back, track each move."),
        ("<START>New prompt:\nTrack each move.<END>", "Track each move."),
        ("<START>Prompt:<END>", None),
        ("<START>Prompt the user: then answer.<END>", "Prompt the user: then answer."),
    ],
)
def test_parse_candidate(reply, expected):
    assert parse_candidate(reply) == expected


def test_parse_keeps_a_reply_of_thousands_of_words_for_the_caller_to_judge():
    reply = "word " * 5000
    assert len(parse_candidate(reply).split()) == 5000
    assert len(parse_candidate(f"<START>{reply}<END> and then more").split()) == 5000
    assert parse_candidate(reply, require_tags=True) is None


def test_parse_requires_tags_when_asked():
    assert parse_candidate("no tags", require_tags=True) is None
    assert parse_candidate("<START>x y<END>", require_tags=True) == "X y"


@pytest.mark.parametrize(
    "a,b,distance",
    [
        ("a b c", "a b c", 0),
        ("a b c", "a x c", 1),
        ("a b c", "a c", 1),
        ("", "one two", 2),
        ("think step by step", "step by step think", 2),
    ],
)
def test_word_edit_distance(a, b, distance):
    assert word_edit_distance(a, b) == distance


def test_meta_prompt_sections_in_order():
    history = [
        TrajectoryEntry("Let's think step by step.", 0.2916666666666667, -1),
        TrajectoryEntry("Other.", 0.5, 0),
    ]
    examples = [Example("format-1", "Question one?", "Yes"), Example("format-2", "Question two?", "No")]
    text = render_update(
        method="generate-without",
        history=history,
        current="Let's think step by step.",
        exemplars=examples,
        position="Q_end",
        budget=49,
    )
    sections = text.split("\n\n")
    assert sections[0].startswith("Your task is to write a prompt that replaces <Prompt>")
    # The examples first (the optimizer induces the task from them), then the direction.
    assert sections[1].startswith("Below are examples of the task.")
    assert sections[2] == "Input:\nQuestion one?\n<Prompt>\nOutput:\nYes"
    assert sections[3] == "Input:\nQuestion two?\n<Prompt>\nOutput:\nNo"
    assert "from 0 to 100" in sections[4]
    # Scores on the 0-100 scale the text announces (GPO_SPEC 8.3), current prompt listed first.
    assert sections[5] == "Prompt: Let's think step by step.\nScore: 29.2"
    assert sections[6] == "Prompt: Other.\nScore: 50.0"
    assert sections[7] == "The current prompt is:\nLet's think step by step."
    assert sections[8].endswith("You may change at most 49 words of the current prompt.")
    assert "at the end of the question" in sections[8] and "do not copy an example" in sections[8]
    assert sections[9] == "Put the new prompt between <START> and <END>."
    assert "problems" not in text


def test_meta_prompt_variants():
    ex = [Example("f", "Q?", "(A)")]
    edit = render_update(method="edit-without", history=[], current="p", exemplars=ex, position="Q_begin")
    assert "revise the current prompt" in edit and "Input:\n<Prompt>\nQ?" in edit
    assert "change at most" not in edit and edit.endswith(
        "Put the modified prompt between <START> and <END>."
    )
    with_gradient = render_update(
        method="generate",
        history=[],
        current="p",
        exemplars=ex,
        position="A_begin",
        gradient="It ignores option C.",
    )
    assert "problems found with the current prompt:\nIt ignores option C." in with_gradient
    assert "Q: Q?\nA: <Prompt>" in with_gradient
    with pytest.raises(ValueError, match="needs a gradient"):
        render_update(method="edit", history=[], current="p", exemplars=ex, position="Q_end")
