"""The three request kinds a task may ask of a model, and their answers.

Requests are plain frozen values so that the engine can pool, deduplicate and cache them across tasks;
answers are plain values too, so that they survive a round trip through the on-disk cache unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Ways to find a Score's continuation tokens (see `Score`).
BOUNDARIES: tuple[str, ...] = ("offsets", "prefix", "split")


@dataclass(frozen=True)
class Score:
    """Teacher-forced scoring of `continuation` after `context` in one forward pass.

    `boundary` says which tokens are the continuation, each the rule of some reference code:

    - "offsets": context + continuation tokenised together; every token holding a character of the
      continuation (found by character offsets) is scored, so none is lost;
    - "prefix": context + continuation tokenised together; the tokens after the first
      len(tokenize(context)) are scored, never the first token (TOFU, open-unlearning, MUSE). When the
      context's trailing space merges into the continuation's first token, that token is not scored;
    - "split": the context's own tokens, then the joint tokens after as many, all scored
      (lm-evaluation-harness's log-likelihood; an empty context becomes a BOS, or EOS, token).

    `append_eos` adds the tokenizer's EOS as a flagged extra continuation token (TOFU's answers end with
    one); with "prefix" it is not added again after a text that already ends with EOS.
    """

    context: str
    continuation: str
    append_eos: bool = False
    boundary: str = "offsets"

    kind = "score"

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"Score boundary must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}")

    def sort_text(self) -> str:
        return self.context + self.continuation


@dataclass(frozen=True)
class Generate:
    """Greedy continuation of `prompt`, cut at the first of `stop` (the stop string is not kept)."""

    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()

    kind = "generate"

    def sort_text(self) -> str:
        return self.prompt


@dataclass(frozen=True)
class Choose:
    """Log-likelihood of each option after `context`, e.g. the letters " A".." D" of a question.

    Single-token options are read from one next-token distribution; the backend falls back to
    scoring each option when one of them is not a single token.
    """

    context: str
    options: tuple[str, ...]

    kind = "choose"

    def sort_text(self) -> str:
        return self.context


Request = Score | Generate | Choose


@dataclass(frozen=True)
class ScoreResult:
    """Per continuation token: log-prob of the target, whether it was the argmax, and the mean and
    variance of log p under the model's own next-token distribution (for Min-K%++).

    When `eos_appended` is true, the last entry of every tuple belongs to the appended EOS.
    """

    logprobs: tuple[float, ...]
    greedy: tuple[bool, ...]
    expected_logprob: tuple[float, ...]
    logprob_variance: tuple[float, ...]
    eos_appended: bool = False

    def token_slice(self, include_eos: bool) -> slice:
        """Slice of the scored tokens: sequence metrics include an appended EOS, token metrics do not."""
        if self.eos_appended and not include_eos:
            return slice(0, len(self.logprobs) - 1)
        return slice(0, len(self.logprobs))

    def nll(self, include_eos: bool = True) -> float:
        """Mean negative log-likelihood per token (NaN when no token is scored)."""
        values = self.logprobs[self.token_slice(include_eos)]
        if not values:
            return math.nan
        return -sum(values) / len(values)

    def sum_logprob(self, include_eos: bool = True) -> float:
        return sum(self.logprobs[self.token_slice(include_eos)])

    def num_tokens(self, include_eos: bool = True) -> int:
        return len(self.logprobs[self.token_slice(include_eos)])

    def to_json(self) -> dict:
        return {
            "logprobs": list(self.logprobs),
            "greedy": list(self.greedy),
            "expected_logprob": list(self.expected_logprob),
            "logprob_variance": list(self.logprob_variance),
            "eos_appended": self.eos_appended,
        }

    @classmethod
    def from_json(cls, data: dict) -> ScoreResult:
        return cls(
            logprobs=tuple(data["logprobs"]),
            greedy=tuple(bool(g) for g in data["greedy"]),
            expected_logprob=tuple(data["expected_logprob"]),
            logprob_variance=tuple(data["logprob_variance"]),
            eos_appended=bool(data["eos_appended"]),
        )


@dataclass(frozen=True)
class GenerateResult:
    text: str
    num_new_tokens: int = 0

    def to_json(self) -> dict:
        return {"text": self.text, "num_new_tokens": self.num_new_tokens}

    @classmethod
    def from_json(cls, data: dict) -> GenerateResult:
        return cls(text=data["text"], num_new_tokens=int(data.get("num_new_tokens", 0)))


@dataclass(frozen=True)
class ChooseResult:
    """`logprobs[i]` is log p(option i | context); `single_pass` says whether one forward pass sufficed."""

    logprobs: tuple[float, ...]
    single_pass: bool = True

    @property
    def choice(self) -> int:
        return max(range(len(self.logprobs)), key=lambda i: self.logprobs[i])

    def to_json(self) -> dict:
        return {"logprobs": list(self.logprobs), "single_pass": self.single_pass}

    @classmethod
    def from_json(cls, data: dict) -> ChooseResult:
        return cls(logprobs=tuple(data["logprobs"]), single_pass=bool(data.get("single_pass", True)))


Result = ScoreResult | GenerateResult | ChooseResult

RESULT_TYPES: dict[str, type] = {"score": ScoreResult, "generate": GenerateResult, "choose": ChooseResult}


def register_result_type(kind: str, result_type: type) -> None:
    """Declare the answer type of a request kind added by a backend plugin, so cached answers read back.

    The type needs `to_json()` and a `from_json(data)` class method. Registering a kind twice with
    different types is an error.
    """
    existing = RESULT_TYPES.get(kind)
    if existing is not None and existing is not result_type:
        raise ValueError(f"request kind {kind!r} already answers with {existing.__name__}")
    RESULT_TYPES[kind] = result_type


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut `text` at the earliest occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker:
            position = text.find(marker)
            if position != -1:
                cut = min(cut, position)
    return text[:cut]
