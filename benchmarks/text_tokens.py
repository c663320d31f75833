"""Cost of tokenizing message contents as text (gpo_local/backends/text_tokens.py) against the
old whole-string tokenization with special tokens parsed, on the bundled model's tokenizer.

    PYTHONPATH=. python benchmarks/text_tokens.py [--repeat 5]

Loads the GGUF's vocabulary only (no weights, no inference). Prints the time per conversation
of both paths and their ratio, measured in the same run; and checks that ordinary conversations
give identical tokens both ways.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from gpo_local.backends.catalog import DEFAULT_MODEL, load_catalog
    from gpo_local.backends.llama_cpp import load_llama
    from gpo_local.backends.text_tokens import conversation_tokens
    from gpo_local.tasks import load_task
    from gpo_local.tasks.prompting import assemble

    llama = load_llama(load_catalog()[DEFAULT_MODEL].resolve(), vocab_only=True, verbose=False)
    formatter = Jinja2ChatFormatter(
        template=llama.metadata["tokenizer.chat_template"], eos_token="", bos_token=""
    )
    task = load_task("sentiment")
    prompt = task.initial_prompt + " Read the review closely, weigh its words, and answer with one label."
    conversations = [
        [{"role": "user", "content": assemble(prompt, e.input, "Q_end")}] for e in task.split("eval")
    ]

    def render(messages):
        return formatter(messages=messages).prompt

    def tokenize(text, special):
        return llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def old(messages):
        return tokenize(render(messages), True)

    def new(messages):
        return conversation_tokens(tokenize, render, messages)

    assert all(old(c) == new(c) for c in conversations), "ordinary text must keep its tokens"
    timings = {}
    for name, path in (("old", old), ("new", new)) * 2:  # interleaved, the second round counts
        start = time.perf_counter()
        for _ in range(args.repeat):
            for conversation in conversations:
                path(conversation)
        timings[name] = (time.perf_counter() - start) / (args.repeat * len(conversations))
    print(
        f"{len(conversations)} conversations x {args.repeat}: old path {1e6 * timings['old']:.0f} us, "
        f"text-safe path {1e6 * timings['new']:.0f} us per conversation; ratio new/old "
        f"{timings['new'] / timings['old']:.2f}"
    )


if __name__ == "__main__":
    main()
