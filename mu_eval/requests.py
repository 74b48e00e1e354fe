"""Every request kind a task may ask of a model, and their answers.

Language models answer three kinds: `Score`, `Generate` and `Choose`. Classifiers answer `Classify`, and
vision-language models `VisualGenerate`; those two name their raw inputs (pictures, audio) by content hash in
the run's `InputStore` (`mu_eval.inputs`), which `classify_request` and `visual_generate_request` fill.

Requests are plain frozen values so that the engine can pool, deduplicate and cache them across tasks;
answers are plain values too, so that they survive a round trip through the on-disk cache unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mu_eval.inputs import InputStore

#: The placeholder a `VisualGenerate` prompt has for each of its images (LLaVA's convention).
IMAGE_TOKEN = "<image>"
#: `Classify.variant` prefix for a randomly initialised model of the same configuration (ZRF's reference).
RANDOM_INIT = "random-init"

#: Ways to find a Score's continuation tokens (see `Score`).
BOUNDARIES: tuple[str, ...] = ("offsets", "prefix", "split")
#: Sides a `Truncation` may cut.
TRUNCATION_SIDES: tuple[str, ...] = ("left", "right")


@dataclass(frozen=True)
class Truncation:
    """How a request longer than allowed is cut, where a benchmark's reference code defines it.

    A request without one (the default) must fit the model's context whole: the run stops before any
    model work when one does not. The two rules, each some reference code's:

    - side "left", no `max_tokens`: tokens are dropped from the start until the request fits the model's
      context (lm-evaluation-harness): a scored text keeps its last context + 1 tokens (the continuation
      must fit whole), a `Choose` context its last context tokens, a generation prompt its last
      context - max_new_tokens tokens;
    - side "right", `max_tokens` N: the prompt, and prompt + continuation, are tokenized with the
      tokenizer's own truncation to their first N tokens (special tokens included), the EOS appended after
      (open-unlearning's QA datasets, N = 512); the result must still fit the model's context. Only for
      `Score` with boundary "prefix" and for `Generate`.
    """

    side: str
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.side not in TRUNCATION_SIDES:
            raise ValueError(f"Truncation side must be one of {', '.join(TRUNCATION_SIDES)}, got {self.side!r}")
        if self.side == "left" and self.max_tokens is not None:
            raise ValueError("a left Truncation cuts to the model's context: it takes no max_tokens")
        if self.side == "right" and (self.max_tokens is None or self.max_tokens < 1):
            raise ValueError(f"a right Truncation needs max_tokens >= 1, got {self.max_tokens!r}")

    def describe(self) -> str:
        if self.side == "left":
            return "left: drop the first tokens until it fits the model's context (lm-evaluation-harness)"
        return f"right: keep the first {self.max_tokens} tokens, EOS after (open-unlearning)"


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
    one); with "prefix" it is not added again after a text that already ends with EOS. `truncation`: see
    `Truncation` (None: the text must fit the model's context).

    `vocab_stats`: also compute the mean and variance of log p over the whole vocabulary at every scored
    token (Min-K%++ needs them). They cost several float32 passes over the vocabulary per token, so they are
    computed only when asked for; otherwise the answer carries NaN for them.
    """

    context: str
    continuation: str
    append_eos: bool = False
    boundary: str = "offsets"
    truncation: Truncation | None = None
    vocab_stats: bool = False

    kind = "score"

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"Score boundary must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}")
        if self.truncation is not None and self.truncation.side == "right" and self.boundary != "prefix":
            raise ValueError("a right Truncation (open-unlearning's) applies to Score boundary 'prefix' only")

    def sort_text(self) -> str:
        return self.context + self.continuation


@dataclass(frozen=True)
class Generate:
    """Greedy continuation of `prompt`, cut at the first of `stop` (the stop string is not kept).
    `truncation`: see `Truncation` (None: prompt plus `max_new_tokens` must fit the model's context)."""

    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    truncation: Truncation | None = None

    kind = "generate"

    def sort_text(self) -> str:
        return self.prompt


@dataclass(frozen=True)
class Choose:
    """Log-likelihood of each option after `context`, e.g. the letters " A".." D" of a question.

    Single-token options are read from one next-token distribution; the backend falls back to
    scoring each option when one of them is not a single token. `truncation`: None (must fit) or the left
    rule of `Truncation`.
    """

    context: str
    options: tuple[str, ...]
    truncation: Truncation | None = None

    kind = "choose"

    def __post_init__(self) -> None:
        if self.truncation is not None and self.truncation.side != "left":
            raise ValueError("Choose takes only the left Truncation (lm-evaluation-harness's)")

    def sort_text(self) -> str:
        return self.context


@dataclass(frozen=True)
class Classify:
    """Class logits for one stored input. `variant` "" is the model itself; "random-init:SEED" is a
    randomly initialised model of the same configuration (the reference of ZRF)."""

    modality: str
    digest: str
    variant: str = ""

    kind = "classify"

    def sort_text(self) -> str:
        return self.digest


@dataclass(frozen=True)
class VisualGenerate:
    """Greedy continuation of `prompt`, whose image placeholders stand for `images` (content hashes)."""

    prompt: str
    images: tuple[str, ...]
    max_new_tokens: int
    stop: tuple[str, ...] = ()

    kind = "visual_generate"

    def sort_text(self) -> str:
        return self.prompt


Request = Score | Generate | Choose | Classify | VisualGenerate


def classify_request(inputs: InputStore, modality: str, value: Any, variant: str = "") -> Classify:
    """The request for one raw dataset value, stored in the run's `inputs`."""
    return Classify(modality, inputs.register(modality, value).digest, variant)


def visual_generate_request(
    inputs: InputStore, prompt: str, images: Sequence[Any], max_new_tokens: int, stop: tuple[str, ...] = (),
    image_token: str = IMAGE_TOKEN,
) -> VisualGenerate:
    """Store the images (PIL, arrays, undecoded dataset values or `StoredInput`s) and build the request."""
    if prompt.count(image_token) != len(images):
        raise ValueError(f"prompt has {prompt.count(image_token)} {image_token} placeholders for {len(images)} images")
    digests = tuple(inputs.register("image", image).digest for image in images)
    return VisualGenerate(prompt, digests, max_new_tokens, stop)


@dataclass(frozen=True)
class ScoreResult:
    """Per continuation token: log-prob of the target, whether it was the argmax, and the mean and
    variance of log p under the model's own next-token distribution (for Min-K%++; NaN unless the request
    set `vocab_stats`).

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


@dataclass(frozen=True)
class ClassifyResult:
    """Float32 logits of every class; probabilities and margins are derived, never stored twice."""

    logits: tuple[float, ...]

    def probabilities(self) -> list[float]:
        top = max(self.logits)
        exps = [math.exp(z - top) for z in self.logits]
        total = sum(exps)
        return [e / total for e in exps]

    @property
    def predicted(self) -> int:
        return max(range(len(self.logits)), key=lambda i: self.logits[i])

    def margin(self, label: int) -> float:
        """z_y - logsumexp_{j != y} z_j (the KLoM margin)."""
        others = [z for j, z in enumerate(self.logits) if j != label]
        top = max(others)
        return self.logits[label] - (top + math.log(sum(math.exp(z - top) for z in others)))

    def to_json(self) -> dict:
        return {"logits": list(self.logits)}

    @classmethod
    def from_json(cls, data: dict) -> ClassifyResult:
        return cls(logits=tuple(float(z) for z in data["logits"]))


Result = ScoreResult | GenerateResult | ChooseResult | ClassifyResult

RESULT_TYPES: dict[str, type[Result]] = {
    "score": ScoreResult, "generate": GenerateResult, "choose": ChooseResult, "classify": ClassifyResult,
    "visual_generate": GenerateResult,
}


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut `text` at the earliest occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker:
            position = text.find(marker)
            if position != -1:
                cut = min(cut, position)
    return text[:cut]
