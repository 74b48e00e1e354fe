"""The default backend: Hugging Face transformers, on CUDA when available."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from mu_eval.backend import PLAIN_PROMPT, Fit
from mu_eval.backends.answer_identity import settings_identity
from mu_eval.backends.base import TorchModelBackend, model_identity
from mu_eval.backends.context_fit import (
    choose_context,
    choose_within,
    generate_within,
    prompt_ids,
    score_within,
)
from mu_eval.backends.hf_encoding import EncodedScore, move_trailing_space, single_token_options
from mu_eval.backends.hf_generation import generation_token_budget, greedy_generate
from mu_eval.backends.hf_loading import HFModelArgs, ModelArgsError, load_model_and_tokenizer
from mu_eval.backends.hf_scoring import pad_right, score_batch, selected_logits
from mu_eval.backends.placement import PLACEMENT_KEYS
from mu_eval.requests import Choose, ChooseResult, Generate, GenerateResult, Request, Score, ScoreResult

#: Bumped whenever a change to the backend could change an answer, so stale cache entries are not reused.
ANSWER_VERSION = 4
#: Model arguments the identity holds elsewhere (the loaded dtype, the adapter's hash, max_length on its own),
#: and where the weights sit, which changes no answer.
IN_IDENTITY = ("dtype", "revision", "peft", "max_length", *PLACEMENT_KEYS)


class HFBackend(TorchModelBackend):
    """Answers requests with a transformers causal LM.

    Built from a path or hub id (`from_pretrained`) or around an in-memory model (`from_model`); in the
    latter case `close()` puts the model back in the train/eval mode it had.
    """

    name = "hf"
    answer_version = ANSWER_VERSION

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        identity: dict[str, Any],
        use_chat_template: bool = True,
        max_length: int | None = None,
        generation_cache: str = "dynamic",
    ) -> None:
        self.hold_model(model, identity)
        self.tokenizer = tokenizer
        self.use_chat_template = use_chat_template
        self.generation_cache = generation_cache
        config_length = getattr(model.config, "max_position_embeddings", None)
        self.max_length = max_length or config_length
        self.counters = {"score_forward": 0, "choose_forward": 0, "generate_calls": 0, "truncated": 0}
        self._encoded: dict[Score, EncodedScore] = {}
        self._prompt_ids: dict[Generate | Choose, list[int]] = {}
        self._option_ids: dict[Choose, list[int | None]] = {}

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None, **options: Any
    ) -> HFBackend:
        args = HFModelArgs.parse(model_args, cls.name)
        torch_model, tokenizer = load_model_and_tokenizer(model, args, device)
        positions = getattr(torch_model.config, "max_position_embeddings", None)
        if args.max_length and positions and args.max_length > positions:
            raise ModelArgsError(f"--model-args max_length={args.max_length} exceeds the {positions} positions "
                                 f"the model was built for (config.json max_position_embeddings)")
        identity = model_identity(cls.name, cls.answer_version, torch_model, model, args.revision, args.peft)
        use_chat_template = options.get("use_chat_template", True)
        identity.update(settings_identity(args, torch_model, tokenizer, use_chat_template, IN_IDENTITY))
        if args.max_length:  # what a truncation rule cuts depends on it: part of the cache key
            identity["max_length"] = args.max_length
        return cls(torch_model, tokenizer, identity=identity, max_length=args.max_length,
                   generation_cache=args.generation_cache, **options)

    # -- prompts -------------------------------------------------------------------------------------------
    def has_chat_template(self) -> bool:
        return self.use_chat_template and bool(getattr(self.tokenizer, "chat_template", None))

    def chat_formatter(self) -> Callable[[str], str]:
        if not self.has_chat_template():
            return lambda question: PLAIN_PROMPT.format(question=question)

        def format_turn(question: str) -> str:
            messages = [{"role": "user", "content": question}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

        return format_turn

    # -- lengths -------------------------------------------------------------------------------------------
    def context_length(self) -> int | None:
        return self.max_length

    def fit(self, request: Request) -> Fit:
        """Raises `ContextLengthError` when the request does not fit; what it encodes is kept for the answer
        (`release` drops it for requests the answer cache serves)."""
        if isinstance(request, Score):
            encoded, fit = score_within(self.tokenizer, request, self.max_length)
            self._encoded[request] = encoded
            return fit
        if isinstance(request, Generate):
            ids, fit = generate_within(self.tokenizer, request, self.max_length)
            self._prompt_ids[request] = ids
            return fit
        if isinstance(request, Choose):
            ids, singles, fit = choose_within(self.tokenizer, request, self.max_length)
            self._prompt_ids[request] = ids
            self._option_ids[request] = singles
            return fit
        return Fit(None, self.max_length)  # a kind this backend does not answer: `answer` says so

    def release(self, requests: Iterable[Request]) -> None:
        for request in requests:
            if isinstance(request, Score):
                self._encoded.pop(request, None)
            elif isinstance(request, Generate | Choose):
                self._prompt_ids.pop(request, None)
            if isinstance(request, Choose):
                self._option_ids.pop(request, None)

    def _encode_score(self, request: Score) -> EncodedScore:
        encoded = self._encoded.get(request)
        if encoded is None:
            encoded = self._encoded[request] = score_within(self.tokenizer, request, self.max_length)[0]
        return encoded

    def _encode_prompt(self, request: Generate | Choose) -> list[int]:
        """Generation prompt ids as fitted, or a question's whole context ids, kept from the pre-flight or
        `request_length` until the request is answered (each encoded once)."""
        ids = self._prompt_ids.get(request)
        if ids is None:
            if isinstance(request, Generate):
                ids = generate_within(self.tokenizer, request, self.max_length)[0]
            else:
                ids = prompt_ids(self.tokenizer, move_trailing_space(request.context, ())[0])[0]
            self._prompt_ids[request] = ids
        return ids

    def request_length(self, request: Any) -> int:
        if isinstance(request, Score):
            return len(self._encode_score(request).input_ids)
        if isinstance(request, Generate):
            return len(self._encode_prompt(request)) + request.max_new_tokens
        if isinstance(request, Choose):
            return len(choose_context(self._encode_prompt(request), request, self.max_length)) + 1
        raise TypeError(f"not a request: {request!r}")

    def generation_token_budget(self) -> int | None:
        return generation_token_budget(self.torch_model, self.device)

    # -- answers -------------------------------------------------------------------------------------------
    def score(self, requests: list[Score]) -> list[ScoreResult]:
        encoded = [self._encode_score(r) for r in requests]
        self.counters["score_forward"] += 1
        self.counters["truncated"] += sum(e.truncated for e in encoded)
        results = score_batch(self.torch_model, encoded, self.device, [r.vocab_stats for r in requests])
        for request in requests:
            self._encoded.pop(request, None)
        return results

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        self.counters["generate_calls"] += 1
        prompts = [self._encode_prompt(r) for r in requests]
        for request in requests:
            self._prompt_ids.pop(request, None)
        return greedy_generate(self.torch_model, self.tokenizer, prompts, requests, self.device, self.generation_cache)

    def choose(self, requests: list[Choose]) -> list[ChooseResult]:
        """lm-evaluation-harness's log-likelihoods: single-token options from one next-token distribution, the
        rest scored as lm-eval scores them (`Score` with boundary "split")."""
        pairs = [move_trailing_space(r.context, r.options) for r in requests]
        contexts = [self._encode_prompt(r) for r in requests]
        option_ids = [
            self._option_ids.pop(request, []) or single_token_options(self.tokenizer, ids, context, options)
            for request, ids, (context, options) in zip(requests, contexts, pairs)
        ]
        for request in requests:
            self._prompt_ids.pop(request, None)
        single = [i for i, ids in enumerate(option_ids) if all(o is not None for o in ids)]
        results: list[ChooseResult | None] = [None] * len(requests)
        if single:
            self.counters["choose_forward"] += 1
            fed = [choose_context(contexts[i], requests[i], self.max_length) for i in single]
            logprobs = next_token_logprobs(self.torch_model, fed, self.device)
            for row, index in enumerate(single):
                chosen = logprobs[row, option_ids[index]].tolist()
                results[index] = ChooseResult(tuple(chosen), single_pass=True)
        multi = [i for i in range(len(requests)) if results[i] is None]
        if multi:
            scores = [Score(pairs[i][0], option, boundary="split", truncation=requests[i].truncation)
                      for i in multi for option in pairs[i][1]]
            answered = self.score(scores)
            cursor = 0
            for index in multi:
                count = len(requests[index].options)
                chunk = answered[cursor : cursor + count]
                cursor += count
                results[index] = ChooseResult(tuple(a.sum_logprob() for a in chunk), single_pass=False)
        return [r for r in results if r is not None]


@torch.no_grad()
def next_token_logprobs(model: Any, contexts: list[list[int]], device: Any) -> torch.Tensor:
    """Float32 log-softmax of the next token after each context (right-padded batch), on the CPU.

    Only the last position of each row goes through the output head.
    """
    input_ids, attention_mask = pad_right([tuple(c) for c in contexts])
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
    rows = torch.arange(len(contexts), device=device)
    last = torch.tensor([len(c) - 1 for c in contexts], device=device)
    logits = selected_logits(model, inputs, rows, last)
    return torch.log_softmax(logits.float(), dim=-1).cpu()
