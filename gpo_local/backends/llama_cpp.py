"""The llama.cpp backend (llama-cpp-python): GGUF loading, the GGUF's own chat template,
greedy and seeded sampled generation, stop strings and context-length checks.

Why the AMX guard: on Intel CPUs with AMX, llama.cpp's extra buffer types route matrix
products through `ggml_backend_amx_mul_mat`, which segfaults during decode in the llama.cpp
shipped with llama-cpp-python 0.3.x. Loading with `use_extra_bufts = False` avoids that path at
no measured speed cost for small models. llama-cpp-python's `Llama` has no argument for it, so
the model parameters are adjusted while the model loads. GPO_LOCAL_EXTRA_BUFTS=1/0 forces it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Sequence

from gpo_local.backends import LLM, Conversation, FollowUp, as_messages, catalog
from gpo_local.backends.batched import BatchedDecoder, GenerationRequest
from gpo_local.backends.catalog import sha256_file
from gpo_local.backends.copy_guard import CopyGuard, banned_runs
from gpo_local.backends.served import ServedModel, is_served_spec, parse_served_spec
from gpo_local.backends.text_tokens import conversation_tokens
from gpo_local.errors import ModelError, OptionValue, PromptTooLongError
from gpo_local.runs import faults

GGUF_MAGIC = b"GGUF"
# The evaluator's decoder carries EVAL_PARALLEL sequences of EVAL_SEQ_CTX cells each
# (48 x 1024 cells: 1.1 GB of f16 KV for SmolLM2-135M), used when a call's two-round chains fit;
# FOLLOW_UP_ROOM bounds the tokens of a follow-up turn's chat framing and question.
EVAL_PARALLEL = 16
EVAL_SEQ_CTX = 1024
FOLLOW_UP_ROOM = 96
_load_lock = threading.Lock()


def cpu_has_amx(cpuinfo: str | None = None) -> bool:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return any(
        flag.startswith("amx")
        for line in cpuinfo.splitlines()
        if line.startswith("flags")
        for flag in line.split(":", 1)[1].split()
    )


def use_extra_buffer_types() -> bool:
    forced = os.environ.get("GPO_LOCAL_EXTRA_BUFTS")
    if forced in ("0", "1"):
        return forced == "1"
    return not cpu_has_amx()


@contextlib.contextmanager
def _model_params_without_extra_bufts():
    """Make llama-cpp-python's default model parameters carry use_extra_bufts=False while a
    model loads (the lock keeps concurrent loads from seeing a half-restored function)."""
    import llama_cpp.llama as high_level

    low = high_level.llama_cpp
    original = low.llama_model_default_params

    def patched():
        params = original()
        params.use_extra_bufts = False
        return params

    with _load_lock:
        low.llama_model_default_params = patched
        try:
            yield
        finally:
            low.llama_model_default_params = original


def chat_formatter(llama, path: Path):
    """The GGUF's own chat template as a formatter, with its end and start tokens; a model
    without one is refused, since every prompt is rendered as a chat."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelError(f"{path} has no chat template (tokenizer.chat_template); a chat model is needed")
    model = llama._model
    eos, bos = llama.token_eos(), llama.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos) if eos != -1 else "",
        bos_token=model.token_get_text(bos) if bos != -1 else "",
    )


def load_llama(path: Path | str, **kwargs):
    """A `llama_cpp.Llama` for `path`, with the AMX guard applied: the one place where
    gpo-local, its benchmarks and its tests load a model."""
    from llama_cpp import Llama

    guard = contextlib.nullcontext() if use_extra_buffer_types() else _model_params_without_extra_bufts()
    with guard:
        return Llama(model_path=str(path), **kwargs)


def check_gguf(path: Path) -> None:
    if path.is_dir():
        inside = ", ".join(sorted(p.name for p in path.glob("*.gguf"))[:5]) or "no .gguf file"
        raise ModelError(
            f"{path} is a directory, not a GGUF file (it holds {inside}): give the model's "
            ".gguf file or a catalog name"
        )
    if not path.is_file():
        raise ModelError(f"GGUF file not found: {path}")
    with path.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")


class LlamaCppModel:
    """One GGUF model; implements the `LLM` protocol. The `Llama` object tokenizes and holds
    the model; generation runs in the batched decoder's own multi-sequence context."""

    def __init__(
        self,
        path: Path | str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        n_batch: int = 512,
        parallel: int = 16,
        eval_parallel: int | None = None,
        eval_seq_ctx: int = EVAL_SEQ_CTX,
    ):
        self.path = Path(path)
        check_gguf(self.path)
        self.n_threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
        try:
            self.llama = load_llama(
                self.path,
                n_ctx=n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=n_gpu_layers,
                n_batch=n_batch,
                flash_attn=True,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelError(
                f"cannot load GGUF model {self.path}: {error} (truncated or unsupported file?)"
            ) from None
        self.n_ctx = self.llama.n_ctx()
        # llama.cpp may round the context up; messages name the size in force.
        self.context_note = (
            ()
            if self.n_ctx == n_ctx
            else (" (", OptionValue("n_ctx", n_ctx), f", which llama.cpp set to {self.n_ctx})")
        )
        # Generation goes through the batched multi-sequence decoder (backends/batched.py),
        # which runs `parallel` sequences at once in its own context; the Llama object serves
        # tokenization and metadata. Flash attention matches the decoder's setting.
        self.parallel = parallel
        # A second decoder with more, shorter sequences for the evaluator's chains.
        # At most 63: a generation step of all of them stays one ubatch below 64 rows (batched.py).
        self.eval_parallel = min(63, EVAL_PARALLEL if eval_parallel is None else eval_parallel)
        self.eval_seq_ctx = min(eval_seq_ctx, self.n_ctx)
        self._formatter = chat_formatter(self.llama, self.path)

    @cached_property
    def fingerprint(self) -> str:

        return sha256_file(self.path)

    def render(self, conversation: Conversation) -> str:
        return self._formatter(messages=as_messages(conversation)).prompt

    def tokens(self, conversation: Conversation) -> list[int]:
        # The template already writes the BOS token where the model wants it, and
        # only the template's markers are special tokens, contents stay text (text_tokens.py).

        return conversation_tokens(
            self._tokenize,
            lambda messages: self._formatter(messages=messages).prompt,
            as_messages(conversation),
        )

    def _tokenize(self, text: str, special: bool) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def count_tokens(self, text: str) -> int:
        """Tokens of a reply, for the budget counters (optimizer.CountingLLM)."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0

    def fits(self, conversation: Conversation) -> bool:
        """Whether the conversation leaves room for at least one new token in the context."""
        return len(self.tokens(conversation)) < self.n_ctx

    def check_fits(self, n_prompt: int, max_tokens: int) -> int:
        """The number of new tokens allowed; a prompt that leaves no room is an error."""
        if n_prompt >= self.n_ctx:
            raise PromptTooLongError(
                f"prompt of {n_prompt} tokens does not fit the context of {self.n_ctx} tokens",
                *self.context_note,
                f" of {self.path.name} (raise ",
                OptionValue("n_ctx"),
                ")",
            )
        return min(max_tokens, self.n_ctx - n_prompt)

    @cached_property
    def decoder(self):

        return BatchedDecoder(self.llama, n_seq_max=self.parallel)

    # `grammar=` (GBNF) constrains replies (backends/constrained.py), `copy_guard=` bans
    # copied runs (backends/copy_guard.py), `min_p=` truncates the sampled distribution (slots.py).
    supports_grammar = True

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seeds: Sequence[int | None] | None = None,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        copy_guard: CopyGuard | None = None,
        min_p: float = 0.0,
    ) -> list[str]:
        """Every call goes through the batched decoder, even a single conversation: one code
        path means a seeded sample or a greedy answer does not depend on how many other
        conversations shared the call (sampling draws from a per-request numpy generator)."""
        seeds = list(seeds) if seeds is not None else [None] * len(conversations)
        if temperature > 0:
            # A sampled reply must depend on its conversation and seed only, not on what this
            # process decoded before: KV prefixes reused from earlier calls were computed in other
            # batches and differ in the last bits, which is enough to change a sample. Without
            # this, a resumed run (whose earlier calls were memo hits) samples other candidates.
            self.decoder.reset()
        banned = banned_runs(copy_guard, lambda text: self._tokenize(text, False)) if copy_guard else ()
        requests = [
            self._request(c, max_tokens, temperature, seed, stop, grammar, banned, min_p)
            for c, seed in zip(conversations, seeds)
        ]
        return [completion.text for completion in self.decoder.generate(requests)]

    def _request(
        self,
        conversation: Conversation,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        banned: tuple = (),
        min_p: float = 0.0,
    ):

        tokens = self.tokens(conversation)
        return GenerationRequest(
            tokens=tokens,
            max_tokens=self.check_fits(len(tokens), max_tokens),
            stop=tuple(stop),
            temperature=temperature,
            seed=seed if seed is not None else 0,
            grammar=grammar,
            banned_runs=banned,
            min_p=min_p,
        )

    def generate_two_rounds(
        self,
        first: Sequence[Conversation],
        follow_up: FollowUp,
        *,
        max_tokens: tuple[int, int],
        temperature: float = 0.0,
    ) -> list[tuple[str, str | None]]:
        """Both extraction rounds in one decoder call (see backends.two_rounds): a second turn is
        admitted the moment its first turn ends, into the slot that holds the first turn's KV,
        so only the new turn is decoded and the batch never drains between rounds."""
        requests = [self._request(c, max_tokens[0], temperature) for c in first]
        first_replies: dict[int, str] = {}
        with_second: set[int] = set()

        def chain(index: int, completion):
            if index in first_replies:  # the second turn ended: so does the chain
                return None
            first_replies[index] = completion.text
            faults.point("two-round-chain")  # a first turn ended, its second not yet admitted
            conversation = follow_up(index, completion.text)
            if conversation is None:
                return None
            with_second.add(index)
            return self._request(conversation, max_tokens[1], temperature)

        finals = self._chain_decoder(requests, max_tokens).generate(requests, follow_up=chain)
        return [
            (first_replies[i], completion.text if i in with_second else None)
            for i, completion in enumerate(finals)
        ]

    # -- the evaluator's wide decoder --------------------------------------------------------

    @property
    def eval_slots(self) -> int:
        """Sequences one evaluator call can keep busy (Evaluator sizes its chunks from this)."""
        return max(self.parallel, self.eval_parallel)

    @cached_property
    def eval_decoder(self):

        return BatchedDecoder(self.llama, n_seq_max=self.eval_parallel, seq_ctx=self.eval_seq_ctx)

    def _chain_decoder(self, requests, max_tokens: tuple[int, int]):
        """The wide decoder when every chain (first turn, its reply, the follow-up and the second
        reply) fits its shorter sequences, else the regular one. At most 63 sequences: one
        generation step then stays in one ubatch below 64 rows (the exact attention kernel)."""
        if self.eval_parallel <= self.parallel or not requests:
            return self.decoder
        longest = max(len(r.tokens) for r in requests) + max_tokens[0] + max_tokens[1] + FOLLOW_UP_ROOM
        return self.eval_decoder if longest <= self.eval_seq_ctx else self.decoder


def load_model(spec: str, *, n_ctx: int, n_threads: int | None, n_gpu_layers: int, parallel: int = 16) -> LLM:
    """The model a spec names, wherever a model is named (options, config files, bench configs,
    the Python API): `URL` or `URL#name` is a model behind an OpenAI-compatible server
    (backends/served.py; `parallel` bounds its concurrent requests, the server's own context
    size applies), anything else a catalog name or GGUF path loaded in-process."""
    if is_served_spec(spec):
        return ServedModel(spec, parallel=parallel)
    return LlamaCppModel(
        catalog.resolve_model(spec).resolve(),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_gpu_layers=n_gpu_layers,
        parallel=parallel,
    )


def same_model(first_spec: str, second_spec: str) -> bool:
    """Whether two specs name one model: the same server address and served name, or the same file."""
    if is_served_spec(first_spec) or is_served_spec(second_spec):
        return (
            is_served_spec(first_spec)
            and is_served_spec(second_spec)
            and parse_served_spec(first_spec) == parse_served_spec(second_spec)
        )
    return catalog.resolve_model(first_spec).resolve() == catalog.resolve_model(second_spec).resolve()


def load_models(
    task_spec: str,
    optimizer_spec: str,
    *,
    n_ctx: int,
    n_threads: int | None,
    n_gpu_layers: int,
    parallel: int = 16,
) -> tuple[LLM, LLM]:
    """The task and optimizer models (load_model); one model serving both roles is loaded once."""

    options = dict(n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, parallel=parallel)
    task = load_model(task_spec, **options)
    if same_model(task_spec, optimizer_spec):
        return task, task
    return task, load_model(optimizer_spec, **options)
