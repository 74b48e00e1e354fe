"""The default backend: Hugging Face transformers, on CUDA when available."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from mu_eval.backend import PLAIN_PROMPT
from mu_eval.backends.base import TorchModelBackend, model_identity
from mu_eval.backends.hf_encoding import (
    encode_prompt,
    encode_score,
    move_trailing_space,
    single_token_options,
)
from mu_eval.backends.hf_generation import generation_token_budget, greedy_generate
from mu_eval.backends.hf_loading import ModelArgs, default_device, load_model_and_tokenizer
from mu_eval.backends.hf_scoring import pad_right, score_batch, selected_logits
from mu_eval.requests import Choose, ChooseResult, Generate, GenerateResult, Score, ScoreResult

#: Bumped whenever a change to the backend could change an answer, so stale cache entries are not reused.
ANSWER_VERSION = 4


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
        self._encoded: dict[Score, Any] = {}
        self._prompt_ids: dict[str, list[int]] = {}

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None, **options: Any
    ) -> HFBackend:
        args = ModelArgs.parse(model_args, cls.name)
        device = device or default_device()
        torch_model, tokenizer = load_model_and_tokenizer(model, args, device)
        identity = model_identity(cls.name, ANSWER_VERSION, torch_model, model, args.revision, args.peft)
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
    def _encode_score(self, request: Score) -> Any:
        encoded = self._encoded.get(request)
        if encoded is None:
            encoded = encode_score(
                self.tokenizer, request.context, request.continuation, request.append_eos, self.max_length,
                request.boundary,
            )
            self._encoded[request] = encoded
        return encoded

    def _encode_prompt(self, text: str) -> list[int]:
        """Prompt ids, kept from `request_length` until the request is answered (each text encoded once)."""
        ids = self._prompt_ids.get(text)
        if ids is None:
            ids = self._prompt_ids[text] = encode_prompt(self.tokenizer, text, self.max_length)
        return ids

    def request_length(self, request: Any) -> int:
        if isinstance(request, Score):
            return len(self._encode_score(request).input_ids)
        if isinstance(request, Generate):
            return len(self._encode_prompt(request.prompt)) + request.max_new_tokens
        if isinstance(request, Choose):
            return len(self._encode_prompt(move_trailing_space(request.context, ())[0])) + 1
        raise TypeError(f"not a request: {request!r}")

    def generation_token_budget(self) -> int | None:
        return generation_token_budget(self.torch_model, self.device)

    # -- answers -------------------------------------------------------------------------------------------
    def score(self, requests: list[Score]) -> list[ScoreResult]:
        encoded = [self._encode_score(r) for r in requests]
        self.counters["score_forward"] += 1
        self.counters["truncated"] += sum(e.truncated for e in encoded)
        results = score_batch(self.torch_model, encoded, self.device)
        for request in requests:
            self._encoded.pop(request, None)
        return results

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        self.counters["generate_calls"] += 1
        prompts = [self._encode_prompt(r.prompt) for r in requests]
        for request in requests:
            self._prompt_ids.pop(request.prompt, None)
        return greedy_generate(self.torch_model, self.tokenizer, prompts, requests, self.device, self.generation_cache)

    def choose(self, requests: list[Choose]) -> list[ChooseResult]:
        """lm-evaluation-harness's log-likelihoods: single-token options from one next-token distribution, the
        rest scored as lm-eval scores them (`Score` with boundary "split")."""
        pairs = [move_trailing_space(r.context, r.options) for r in requests]
        contexts = [self._encode_prompt(context) for context, _ in pairs]
        for context, _ in pairs:
            self._prompt_ids.pop(context, None)
        option_ids = [
            single_token_options(self.tokenizer, ids, context, options)
            for ids, (context, options) in zip(contexts, pairs)
        ]
        single = [i for i, ids in enumerate(option_ids) if all(o is not None for o in ids)]
        results: list[ChooseResult | None] = [None] * len(requests)
        if single:
            self.counters["choose_forward"] += 1
            logprobs = next_token_logprobs(self.torch_model, [contexts[i] for i in single], self.device)
            for row, index in enumerate(single):
                chosen = logprobs[row, option_ids[index]].tolist()
                results[index] = ChooseResult(tuple(chosen), single_pass=True)
        multi = [i for i in range(len(requests)) if results[i] is None]
        if multi:
            scores = [Score(pairs[i][0], option, boundary="split") for i in multi for option in pairs[i][1]]
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
