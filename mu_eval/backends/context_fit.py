"""Token sequences that fit the model's context, cut only as a request's `truncation` rule says.

Every evaluation path of the text backends encodes through here, for the pre-flight (`Backend.fit`) and for
the batches alike: a request that does not fit, and whose benchmark defines no truncation, raises
`ContextLengthError`, so nothing is ever cut silently.

`feeds_last` says whether the backend feeds the last scored token to the model too: the hf backend does
not (a text of n tokens needs n - 1 positions, as lm-evaluation-harness feeds it), vLLM's prompt log-probs
do (n positions).
"""

from __future__ import annotations

from typing import Any

from mu_eval.backend import ContextLengthError, Fit
from mu_eval.backends.hf_encoding import (
    EncodedScore,
    adds_bos_itself,
    encode,
    encode_score,
    move_trailing_space,
    prefix_token_id,
    single_token_options,
)
from mu_eval.requests import Choose, Generate, Score, Truncation


def prompt_ids(tokenizer: Any, text: str, cap: int | None = None) -> tuple[list[int], bool]:
    """The prompt's ids (BOS as `encode` adds it), and whether `cap` (a right truncation's N) cut them: then
    they are the tokenizer's own truncation to the first N tokens, as the reference code calls it."""
    ids, _ = encode(tokenizer, text)
    if not ids:
        return [prefix_token_id(tokenizer)], False
    if cap is None or len(ids) <= cap:
        return ids, False
    add_special = not adds_bos_itself(tokenizer, text)
    return list(tokenizer(text, add_special_tokens=add_special, truncation=True, max_length=cap)["input_ids"]), True


def score_within(
    tokenizer: Any, request: Score, context: int | None, feeds_last: bool = False
) -> tuple[EncodedScore, Fit]:
    """`request` encoded by its boundary rule, then fitted to `context` by its truncation rule."""
    rule = request.truncation
    cap = rule.max_tokens if rule is not None and rule.side == "right" else None
    encoded = encode_score(tokenizer, request.context, request.continuation, request.append_eos, None,
                           request.boundary, right_cap=cap)
    ids, start = encoded.input_ids, encoded.start
    needed = len(ids) if feeds_last else len(ids) - 1
    if context is None or needed <= context:
        return encoded, Fit(needed, context, encoded.truncated)
    longest = context if feeds_last else context + 1
    cut = len(ids) - longest
    if _is_left(rule) and start - cut >= 1:
        return EncodedScore(ids[cut:], start - cut, encoded.eos_appended, True), Fit(needed, context, True)
    what = (f"text of {len(ids)} tokens (context {start}, continuation {len(ids) - start}"
            f"{', EOS included' if encoded.eos_appended else ''}) needs {needed} positions")
    if _is_left(rule):
        what += "; its continuation does not fit even with the context cut from the left"
    raise ContextLengthError(_beyond(what, context, rule), needed, context)


def generate_within(tokenizer: Any, request: Generate, context: int | None) -> tuple[list[int], Fit]:
    """The prompt's ids fitted so that prompt + `max_new_tokens` stay within `context` (lm-evaluation-harness
    keeps the prompt's last context - max_new_tokens tokens; open-unlearning first cuts it to N)."""
    rule = request.truncation
    ids, cut_right = prompt_ids(tokenizer, request.prompt, rule.max_tokens if rule and rule.side == "right" else None)
    needed = len(ids) + request.max_new_tokens
    if context is None or needed <= context:
        return ids, Fit(needed, context, cut_right)
    room = context - request.max_new_tokens
    if _is_left(rule) and room >= 1:
        return ids[-room:], Fit(needed, context, True)
    what = f"prompt of {len(ids)} tokens + max_new_tokens {request.max_new_tokens} needs {needed} positions"
    if _is_left(rule):
        what += " (max_new_tokens alone fills the context)"
    raise ContextLengthError(_beyond(what, context, rule), needed, context)


def choose_within(
    tokenizer: Any, request: Choose, context: int | None, feeds_last: bool = False
) -> tuple[list[int], list[int | None], Fit]:
    """The context's full ids (the single-token test needs them whole), each option's token id when it is a
    single token (`single_token_options`), and how the question fits: the context alone for single-token
    options, each option scored after it otherwise."""
    text, options = move_trailing_space(request.context, request.options)
    ids, _ = prompt_ids(tokenizer, text)
    singles = single_token_options(tokenizer, ids, text, options)
    needed = len(ids) + (1 if feeds_last else 0)
    for option, single in zip(options, singles):
        if single is None:
            scored = Score(text, option, boundary="split", truncation=request.truncation)
            fit = score_within(tokenizer, scored, context, feeds_last)[1]  # raises for an option that cannot fit
            needed = max(needed, fit.needed or 0)
    if context is None or needed <= context:
        return ids, singles, Fit(needed, context, False)
    if _is_left(request.truncation):
        return ids, singles, Fit(needed, context, True)
    what = f"question of {len(ids)} context tokens and {len(options)} options needs {needed} positions"
    raise ContextLengthError(_beyond(what, context, request.truncation), needed, context)


def choose_context(ids: list[int], request: Choose, context: int | None, feeds_last: bool = False) -> list[int]:
    """The context ids fed for single-token options: whole, or their last tokens under the left rule."""
    limit = None if context is None else context - (1 if feeds_last else 0)
    if limit is None or len(ids) <= limit:
        return ids
    if _is_left(request.truncation):
        return ids[-limit:]
    raise ContextLengthError(_beyond(f"choice context of {len(ids)} tokens", limit, None), len(ids), limit)


def _is_left(rule: Truncation | None) -> bool:
    return rule is not None and rule.side == "left"


def _beyond(what: str, context: int, rule: Truncation | None) -> str:
    if rule is None:
        how = "the benchmark defines no truncation"
    elif rule.side == "right":
        how = f"even cut to its first {rule.max_tokens} tokens as the benchmark's reference code cuts it"
    else:
        how = "even cut from the left as lm-evaluation-harness cuts it"
    return f"{what}, more than the model's context of {context} ({how})"
