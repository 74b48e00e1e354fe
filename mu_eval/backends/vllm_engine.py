"""What crosses between the harness and vLLM's offline engine: sampling settings, prompts checked against the
engine's length rule, and vLLM's outputs turned into the harness's answers exactly as the hf backend forms them.

Prompts are handed to vLLM as token ids encoded by the harness (`context_fit`), so vLLM never tokenises, and
generated tokens are decoded here by the same rule as `hf_generation.greedy_generate` (stop at an EOS id,
skip padding, decode without special tokens, cut at the first stop string).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mu_eval.backend import BackendError, ContextLengthError
from mu_eval.requests import Generate, GenerateResult, cut_at_stop


def model_config(llm: Any) -> Any:
    """The engine's ModelConfig: an attribute of the engine in vLLM's first engine, of its `vllm_config` in
    later ones (both are tried, so the backend does not pin one vLLM release)."""
    engine = llm.llm_engine
    config = getattr(engine, "model_config", None)
    config = config or getattr(getattr(engine, "vllm_config", None), "model_config", None)
    if config is None:
        raise BackendError(f"cannot find the model configuration of this vLLM engine ({type(engine).__name__})")
    return config


def generation_settings(requests: Sequence[Generate], eos_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Greedy SamplingParams keywords per request: one call may mix tasks whose `max_new_tokens` and stop
    strings differ, and each row keeps its own. vLLM detokenises only to find stop strings; the text is
    decoded by `generated_result`."""
    return [
        {"temperature": 0.0, "max_tokens": r.max_new_tokens, "stop": list(r.stop) or None,
         "stop_token_ids": list(eos_ids), "detokenize": bool(r.stop)}
        for r in requests
    ]


def check_prompt_lengths(prompts: Sequence[Sequence[int]], new_tokens: Sequence[int], max_model_len: int) -> None:
    """vLLM refuses a whole call when one prompt and its new tokens exceed `max_model_len` (a prompt of exactly
    max_model_len is refused too: it must generate at least one token). The pre-flight fits every request;
    this names the one that still does not, before vLLM fails the call."""
    for index, (ids, new) in enumerate(zip(prompts, new_tokens)):
        if len(ids) + max(new, 1) > max_model_len:
            raise ContextLengthError(
                f"request {index + 1} of {len(prompts)} in a vLLM call: prompt of {len(ids)} tokens + {max(new, 1)} "
                f"new tokens needs {len(ids) + max(new, 1)} positions, more than vLLM's max_model_len "
                f"{max_model_len}", len(ids) + max(new, 1), max_model_len)


def generated_result(token_ids: Sequence[int], request: Generate, tokenizer: Any, eos_ids: Sequence[int],
                     pad_id: int | None) -> GenerateResult:
    """A generation answer from vLLM's new token ids, by the hf backend's rule: the tokens before the first EOS
    id, padding skipped, decoded without special tokens and cut at the first stop string."""
    kept = []
    for token in token_ids:
        if token in eos_ids:
            break
        if token != pad_id:
            kept.append(int(token))
    text = tokenizer.decode(kept, skip_special_tokens=True)
    return GenerateResult(text=cut_at_stop(text, request.stop), num_new_tokens=len(kept))


def option_logprobs(top: dict[int, Any] | None, option_ids: Sequence[int | None]) -> tuple[float, ...] | None:
    """Each single-token option's log-prob from vLLM's top-k of the next token; None when an option is not a
    single token or not among the top-k (the caller scores those options instead)."""
    if not top or any(i is None or i not in top for i in option_ids):
        return None
    return tuple(float(top[i].logprob) for i in option_ids if i is not None)
