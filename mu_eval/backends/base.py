"""The backend interface the engine talks to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mu_eval.requests import (
    Choose,
    ChooseResult,
    Generate,
    GenerateResult,
    Request,
    Score,
    ScoreResult,
)

PLAIN_PROMPT = "Question: {question}\nAnswer: "


class BackendError(Exception):
    """A model could not be loaded or asked; the message says what and where."""


class Backend:
    """Answers batches of requests. Subclasses set `name` and implement the three answer methods.

    `torch_model` and `tokenizer` are exposed for work that is not a request (gradients, weight edits,
    training), which goes through the model directly.
    """

    name: str = ""
    torch_model: Any = None
    tokenizer: Any = None

    def identity(self) -> dict[str, Any]:
        """What distinguishes this model's answers from another's: the cache key and the report's model section."""
        raise NotImplementedError

    def request_length(self, request: Request) -> int:
        """Tokens the request occupies in a batch (prompt plus new tokens for generation)."""
        raise NotImplementedError

    def score(self, requests: list[Score]) -> list[ScoreResult]:
        raise NotImplementedError

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        raise NotImplementedError

    def choose(self, requests: list[Choose]) -> list[ChooseResult]:
        raise NotImplementedError

    def has_chat_template(self) -> bool:
        return False

    def chat_formatter(self) -> Callable[[str], str]:
        """Formats one user turn, ready for the assistant's answer."""
        return lambda question: PLAIN_PROMPT.format(question=question)

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str:
        """`text` cut to its first `max_tokens` tokens, counting the special tokens the tokenizer adds (BOS),
        decoded without them: how MUSE cuts its VerbMem gold to the generation length."""
        if self.tokenizer is None:
            raise NotImplementedError(f"backend {self.name!r} has no tokenizer to cut texts by tokens")
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def answer(self, kind: str, requests: list[Any]) -> list[Any]:
        if kind == "score":
            return self.score(requests)
        if kind == "generate":
            return self.generate(requests)
        if kind == "choose":
            return self.choose(requests)
        raise ValueError(f"unknown request kind {kind!r}")

    def close(self) -> None:
        """Release what the backend holds (restores an in-memory model's state)."""
