"""Tokenisation for scoring: context and continuation in one pass, the continuation found by offsets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mu_eval.backend import ContextLengthError


@dataclass(frozen=True)
class EncodedScore:
    """Token ids of one scored text and the index of its first continuation token.

    Tokens `input_ids[start:]` are scored, each predicted from the position before it.
    """

    input_ids: tuple[int, ...]
    start: int
    eos_appended: bool
    truncated: bool = False


def adds_bos_itself(tokenizer: Any, text: str) -> bool:
    """A prompt from a chat template already carries the BOS text; adding another would double it."""
    bos = getattr(tokenizer, "bos_token", None)
    return isinstance(bos, str) and bool(bos) and text.startswith(bos)


def encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    add_special = not adds_bos_itself(tokenizer, text)
    encoding = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
    return list(encoding["input_ids"]), [tuple(o) for o in encoding["offset_mapping"]]


def prefix_token_id(tokenizer: Any) -> int:
    """Token placed before a text whose first token would otherwise have nothing to be predicted from."""
    for candidate in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id):
        if candidate is not None:
            return int(candidate)
    raise ValueError("tokenizer has no BOS, EOS or pad token to start an empty context with")


def encode_score(
    tokenizer: Any,
    context: str,
    continuation: str,
    append_eos: bool,
    max_length: int | None,
    boundary: str = "offsets",
    right_cap: int | None = None,
) -> EncodedScore:
    """Encode `context + continuation` and mark where the scored continuation starts (see `Score.boundary`).

    "offsets": tokens whose character span ends past the context are scored, so a token straddling the
    boundary counts as continuation and no character is lost; special tokens the tokenizer appends after
    the text are dropped. "prefix": the joint tokens after the first len(tokenize(context)) are scored,
    exactly as the tokenizer returns them, never the first token. "split": the context's own tokens
    followed by those joint tokens, as lm-evaluation-harness feeds them.

    `right_cap` N ("prefix" only): both texts are tokenized with the tokenizer's truncation to their first N
    tokens, before the EOS is appended (open-unlearning's QA datasets). `max_length`: the context is cut from
    the left until the text fits (training's rule; evaluation fits texts in `context_fit` instead).
    """
    cut_right = False
    if right_cap is not None and boundary != "prefix":
        raise ValueError("right_cap applies to the 'prefix' boundary only")
    if boundary == "prefix":
        ids, start, cut_right = _prefix_split(tokenizer, context, continuation, right_cap)
    elif boundary == "split":
        ids, start = _context_then_rest(tokenizer, context, continuation)
    elif boundary == "offsets":
        ids, start = _offset_split(tokenizer, context, continuation)
    else:
        raise ValueError(f"unknown Score boundary {boundary!r}; expected 'offsets', 'prefix' or 'split'")
    if append_eos:
        if tokenizer.eos_token_id is None:
            raise ValueError("append_eos requested but the tokenizer has no EOS token")
        eos = int(tokenizer.eos_token_id)
        if boundary == "offsets" or not ids or ids[-1] != eos or len(ids) <= start:
            ids = ids + [eos]
    truncated = cut_right
    if max_length is not None and len(ids) > max_length:
        # keep the continuation, cut the context from the left
        cut = len(ids) - max_length
        cut = min(cut, start - 1) if start > 1 else 0
        if len(ids) - cut > max_length:
            raise ValueError(
                f"continuation of {len(ids) - start} tokens does not fit the model's context of {max_length}"
            )
        ids = ids[cut:]
        start -= cut
        truncated = True
    return EncodedScore(tuple(int(i) for i in ids), start, append_eos, truncated)


def _offset_split(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], int]:
    if not tokenizer.is_fast:
        raise ValueError("mu-eval needs a fast tokenizer (offsets mapping) to mark continuations exactly")
    ids, offsets = encode(tokenizer, context + continuation)
    boundary = len(context)
    continuation_positions = [i for i, (_, end) in enumerate(offsets) if end > boundary]
    if continuation_positions:
        start, last = continuation_positions[0], continuation_positions[-1]
        ids = ids[: last + 1]
    else:
        # empty continuation: keep the text up to its last real character, score nothing
        real = [i for i, (begin, end) in enumerate(offsets) if end > begin]
        ids = ids[: real[-1] + 1] if real else ids[:1]
        start = len(ids)
    if start == 0:
        ids = [prefix_token_id(tokenizer)] + ids
        start = 1
    return ids, start


def _prefix_split(
    tokenizer: Any, context: str, continuation: str, cap: int | None = None
) -> tuple[list[int], int, bool]:
    """Joint ids and len(ids of the context alone), both with the special tokens the joint text gets, and
    whether `cap` cut the joint text (both are then the tokenizer's truncation to their first `cap` tokens)."""
    add_special = not adds_bos_itself(tokenizer, context + continuation)
    ids = list(tokenizer(context + continuation, add_special_tokens=add_special)["input_ids"])
    if not ids:
        return [prefix_token_id(tokenizer)], 1, False
    cut = cap is not None and len(ids) > cap
    capped = {"truncation": True, "max_length": cap} if cut else {}
    if cut:
        ids = list(tokenizer(context + continuation, add_special_tokens=add_special, **capped)["input_ids"])
    context_ids = tokenizer(context, add_special_tokens=add_special, **capped)["input_ids"]
    return ids, min(max(len(context_ids), 1), len(ids)), cut


def encode_prompt(tokenizer: Any, prompt: str, max_length: int | None) -> list[int]:
    """The prompt's ids (the prefix token for an empty prompt); longer than `max_length` is an error, never
    a silent cut (the evaluation backends fit prompts in `context_fit`)."""
    ids, _ = encode(tokenizer, prompt)
    if not ids:
        ids = [prefix_token_id(tokenizer)]
    if max_length is not None and len(ids) > max_length:
        raise ContextLengthError(f"prompt of {len(ids)} tokens is longer than the model's context of {max_length}",
                                 len(ids), max_length)
    return ids


def _context_then_rest(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], int]:
    """lm-evaluation-harness's pair: tokenize(context), then tokenize(context + continuation) past as many
    tokens; an empty context is the prefix token (BOS, else EOS) before the continuation's plain tokens."""
    if not context:
        rest = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
        prefix = prefix_token_id(tokenizer)
        return (rest, 1) if rest and rest[0] == prefix else ([prefix, *rest], 1)
    add_special = not adds_bos_itself(tokenizer, context)
    joint = list(tokenizer(context + continuation, add_special_tokens=add_special)["input_ids"])
    context_ids = list(tokenizer(context, add_special_tokens=add_special)["input_ids"]) or [prefix_token_id(tokenizer)]
    return context_ids + joint[len(context_ids):], len(context_ids)


def move_trailing_space(context: str, options: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """lm-evaluation-harness's pair split: the context's trailing whitespace goes to the front of every option,
    so "Answer: " + "A" is scored as "Answer:" + " A"."""
    stripped = context.rstrip()
    tail = context[len(stripped):]
    return (stripped, tuple(tail + option for option in options)) if tail else (context, tuple(options))


def single_token_options(
    tokenizer: Any, context_ids: list[int], context: str, options: Sequence[str]
) -> list[int | None]:
    """Per option, its token id when `context + option` is exactly the context's tokens plus one token (else
    None). The joint texts go to the tokenizer in one batched call: this check is most of a multiple-choice
    question's host-side cost."""
    add_special = not adds_bos_itself(tokenizer, context)
    joints = tokenizer([context + option for option in options], add_special_tokens=add_special)["input_ids"]
    size = len(context_ids)
    return [int(joint[-1]) if len(joint) == size + 1 and list(joint[:size]) == context_ids else None
            for joint in joints]
