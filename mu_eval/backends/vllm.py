"""Optional vLLM backend (`pip install mu-eval[vllm]`, CUDA only).

vLLM returns log-probs of the prompt tokens and a top-k of each position, not the full next-token
distribution: `Score` answers therefore carry NaN for the mean and variance of log p, and Min-K%++ is NaN
on this backend (use the default `hf` backend for it). Everything else matches the HF backend's
tokenisation, since both encode through `hf_encoding`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from mu_eval.backend import PLAIN_PROMPT, Backend, BackendError, Fit
from mu_eval.backends.answer_identity import chat_template_sha256, library_versions, tokenizer_sha256
from mu_eval.backends.base import checkpoint_source
from mu_eval.backends.context_fit import (
    choose_context,
    choose_within,
    generate_within,
    prompt_ids,
    score_within,
)
from mu_eval.backends.hf_encoding import move_trailing_space, single_token_options
from mu_eval.backends.hf_loading import ModelArgs
from mu_eval.identity import hash_weight_files
from mu_eval.requests import (
    Choose,
    ChooseResult,
    Generate,
    GenerateResult,
    Request,
    Score,
    ScoreResult,
    cut_at_stop,
)


def vllm_version() -> str:
    from importlib.metadata import version

    return version("vllm")


#: Bumped whenever a change to this backend could change an answer (part of the cache key).
ANSWER_VERSION = 3

#: Candidates read per position for `Choose`; options outside them are scored instead.
CHOOSE_TOP_K = 20


def score_from_prompt_logprobs(
    prompt_logprobs: list[dict[int, Any] | None], input_ids: tuple[int, ...], start: int, eos_appended: bool
) -> ScoreResult:
    """Turn vLLM's per-position {token id: Logprob(logprob, rank)} into a ScoreResult for tokens [start:]."""
    logprobs, greedy = [], []
    for position in range(start, len(input_ids)):
        entry = prompt_logprobs[position] or {}
        target = entry.get(input_ids[position])
        if target is None:
            raise BackendError(f"vLLM returned no log-prob for the prompt token at position {position}")
        logprobs.append(float(target.logprob))
        greedy.append(int(target.rank) == 1)
    nan = tuple(math.nan for _ in logprobs)
    return ScoreResult(tuple(logprobs), tuple(greedy), nan, nan, eos_appended)


def model_config(llm: Any) -> Any:
    """The engine's ModelConfig: an attribute of the engine in vLLM's first engine, of its `vllm_config` in
    later ones (both are tried, so the backend does not pin one vLLM release)."""
    engine = llm.llm_engine
    config = getattr(engine, "model_config", None)
    config = config or getattr(getattr(engine, "vllm_config", None), "model_config", None)
    if config is None:
        raise BackendError(f"cannot find the model configuration of this vLLM engine ({type(engine).__name__})")
    return config


def generation_settings(requests: list[Generate]) -> list[dict[str, Any]]:
    """Greedy SamplingParams keywords per request: a batch may mix tasks whose `max_new_tokens` and stop
    strings differ, and each row must keep its own, as on the hf backend."""
    return [{"temperature": 0.0, "max_tokens": r.max_new_tokens, "stop": list(r.stop) or None} for r in requests]


class VLLMBackend(Backend):
    """Answers requests with vLLM's offline engine."""

    name = "vllm"

    def __init__(self, llm: Any, identity: dict[str, Any], use_chat_template: bool = True,
                 max_length: int | None = None) -> None:
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self._identity = identity
        self.use_chat_template = use_chat_template
        self.max_length = max_length or model_config(llm).max_model_len
        self._device = "cuda"

    @classmethod
    def from_pretrained(cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None,
                        **options: Any) -> VLLMBackend:
        try:
            from vllm import LLM
        except ImportError:
            raise BackendError("the vllm backend needs vLLM: pip install 'mu-eval[vllm]' (CUDA only)") from None
        args = ModelArgs.parse(model_args, cls.name)
        if args.peft:
            raise BackendError("the vllm backend does not load peft adapters; merge the adapter or use --backend hf")
        path, source = checkpoint_source(model)
        llm = LLM(model=source, dtype=args.dtype, seed=0, **args.loader_kwargs())
        config = model_config(llm)
        identity = {
            "backend": cls.name,
            "answer_version": ANSWER_VERSION,
            "model": str(path.resolve()) if path.exists() else model,
            "revision": args.revision,
            "weights_sha256": hash_weight_files(path) if path.exists() else None,
            "dtype": str(config.dtype).removeprefix("torch."),
            "adapter": None,
            "quantization": config.quantization,
        }
        tokenizer = llm.get_tokenizer()
        identity.update({  # everything else an answer depends on: part of the cache key
            "model_args": {name: value for name, value in dataclasses.asdict(args).items()
                           if name not in ("dtype", "revision", "peft")},
            "tokenizer_sha256": tokenizer_sha256(tokenizer),
            "chat_template_sha256": chat_template_sha256(tokenizer, options.get("use_chat_template", True)),
            "versions": {**library_versions(), "vllm": vllm_version()},
        })
        return cls(llm, identity, max_length=args.max_length, **options)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, **options: Any) -> VLLMBackend:
        raise BackendError("the vllm backend loads from a path or hub id; use the hf backend for in-memory models")

    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def has_chat_template(self) -> bool:
        return self.use_chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def chat_formatter(self) -> Callable[[str], str]:
        if not self.has_chat_template():
            return lambda question: PLAIN_PROMPT.format(question=question)
        return lambda question: self.tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )

    def context_length(self) -> int | None:
        return self.max_length

    def fit(self, request: Request) -> Fit:
        """As the hf backend, except that vLLM feeds a scored text's last token too (prompt log-probs)."""
        if isinstance(request, Score):
            return score_within(self.tokenizer, request, self.max_length, feeds_last=True)[1]
        if isinstance(request, Generate):
            return generate_within(self.tokenizer, request, self.max_length)[1]
        if isinstance(request, Choose):
            return choose_within(self.tokenizer, request, self.max_length, feeds_last=True)[2]
        raise TypeError(f"the vllm backend cannot answer {request!r}")

    def _score_ids(self, request: Score) -> Any:
        return score_within(self.tokenizer, request, self.max_length, feeds_last=True)[0]

    def _whole_context(self, request: Choose) -> list[int]:
        return prompt_ids(self.tokenizer, move_trailing_space(request.context, ())[0])[0]

    def _context_ids(self, request: Choose) -> list[int]:
        return choose_context(self._whole_context(request), request, self.max_length, feeds_last=True)

    def request_length(self, request: Any) -> int:
        if isinstance(request, Score):
            return len(self._score_ids(request).input_ids)
        if isinstance(request, Generate):
            return len(generate_within(self.tokenizer, request, self.max_length)[0]) + request.max_new_tokens
        return len(self._context_ids(request)) + 1

    def _run(self, token_lists: list[list[int]], params: Any) -> list[Any]:
        """`params`: one SamplingParams for all prompts, or a list with one per prompt."""
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in token_lists]
        return self.llm.generate(prompts, params, use_tqdm=False)

    def score(self, requests: list[Score]) -> list[ScoreResult]:
        from vllm import SamplingParams

        encoded = [self._score_ids(r) for r in requests]
        outputs = self._run([list(e.input_ids) for e in encoded],
                            SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1))
        return [score_from_prompt_logprobs(o.prompt_logprobs, e.input_ids, e.start, e.eos_appended)
                for o, e in zip(outputs, encoded)]

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        from vllm import SamplingParams

        params = [SamplingParams(**settings) for settings in generation_settings(requests)]
        prompts = [generate_within(self.tokenizer, r, self.max_length)[0] for r in requests]
        outputs = self._run(prompts, params)
        return [GenerateResult(cut_at_stop(o.outputs[0].text, r.stop), len(o.outputs[0].token_ids))
                for o, r in zip(outputs, requests)]

    def choose(self, requests: list[Choose]) -> list[ChooseResult]:
        from vllm import SamplingParams

        pairs = [move_trailing_space(r.context, r.options) for r in requests]
        whole = [self._whole_context(r) for r in requests]
        contexts = [choose_context(ids, r, self.max_length, feeds_last=True) for ids, r in zip(whole, requests)]
        outputs = self._run(contexts, SamplingParams(max_tokens=1, temperature=0.0, logprobs=CHOOSE_TOP_K))
        results = []
        for request, (context, options), ids, output in zip(requests, pairs, whole, outputs):
            top = output.outputs[0].logprobs[0]
            option_ids = single_token_options(self.tokenizer, ids, context, options)
            if all(i is not None and i in top for i in option_ids):
                results.append(ChooseResult(tuple(float(top[i].logprob) for i in option_ids), True))
            else:
                scored = self.score([Score(context, option, boundary="split", truncation=request.truncation)
                                     for option in options])
                results.append(ChooseResult(tuple(s.sum_logprob() for s in scored), False))
        return results
