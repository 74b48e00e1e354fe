"""The backend interface: what the engine, the tasks' prompt formatting and the attacks may ask of a model.

A backend answers batches of requests of one kind. Every hook the harness calls is declared here with its
default, so a backend plugin sees in one place what it must and what it may implement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mu_eval.inputs import InputStore
from mu_eval.requests import (
    Choose,
    ChooseResult,
    Classify,
    ClassifyResult,
    Generate,
    GenerateResult,
    Request,
    Result,
    Score,
    ScoreResult,
    VisualGenerate,
)

PLAIN_PROMPT = "Question: {question}\nAnswer: "


class BackendError(Exception):
    """A model could not be loaded or asked; the message says what and where."""


class ContextLengthError(BackendError):
    """A request does not fit the model's context and its benchmark defines no truncation (or the text does
    not fit even cut as the rule says). `needed` and `context` are positions of the model."""

    def __init__(self, message: str, needed: int, context: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.context = context


@dataclass(frozen=True)
class Fit:
    """How one request meets the model's context: the positions it needs as asked (None when the backend
    cannot tell), the context (None: unknown, nothing is checked), and whether its `truncation` rule cut it."""

    needed: int | None
    context: int | None
    truncated: bool = False


class Backend:
    """Answers batches of requests. Subclasses set `name`, implement `from_pretrained` (and `from_model` if
    they can wrap an in-memory model), `identity`, `request_length` and the answer methods of the request
    kinds they serve.

    `torch_model` and `tokenizer` are exposed for work that is not a request (gradients, weight edits,
    training), which goes through the model directly; a backend without a torch model leaves them None and
    such work is refused with a clear message.
    """

    name: ClassVar[str] = ""
    torch_model: Any = None
    tokenizer: Any = None
    _inputs: InputStore | None = None
    _device: Any = None

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, model: str, model_args: Mapping[str, Any] | None = None, device: str | None = None, **options: Any
    ) -> Backend:
        """Load `model` (a local path or a hub id) with `--model-args`; unknown model args are an error.
        `options` are the run's settings the backend may use (`use_chat_template`)."""
        raise BackendError(f"backend {cls.name!r} cannot load a checkpoint")

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, model_id: str | None = None, **options: Any) -> Backend:
        """Wrap an in-memory model (training code's), named `model_id` when given."""
        raise BackendError(f"backend {cls.name!r} cannot wrap an in-memory model")

    # -- what the harness reads -----------------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        """Where the model runs (a torch device or a string); None when the backend does not say."""
        return self._device

    @property
    def inputs(self) -> InputStore:
        """The run's store of raw inputs (pictures, audio) that `Classify`/`VisualGenerate` requests name by
        content hash; the harness hands every backend its run's store."""
        if self._inputs is None:
            self._inputs = InputStore()
        return self._inputs

    @inputs.setter
    def inputs(self, store: InputStore) -> None:
        self._inputs = store

    def identity(self) -> dict[str, Any]:
        """What distinguishes this model's answers from another's: the cache key and the report's model section."""
        raise NotImplementedError

    def request_length(self, request: Request) -> int:
        """Tokens the request occupies in a batch (prompt plus new tokens for generation)."""
        raise NotImplementedError

    def context_length(self) -> int | None:
        """Positions the model can attend to (`--model-args max_length`, else the model's own); None when the
        backend does not know, and then no request is checked."""
        return None

    def fit(self, request: Request) -> Fit:
        """How `request` fits the context, computed before any request is answered (the pre-flight); raises
        `ContextLengthError` when it does not fit. Default: `request_length` against `context_length`, no
        truncation; a backend that can cut a request as its `truncation` rule says overrides this."""
        context = self.context_length()
        if context is None:
            return Fit(None, None)
        needed = self.request_length(request)
        if needed > context:
            raise ContextLengthError(
                f"{request.kind} request of {needed} tokens does not fit the model's context of {context}", needed,
                context)
        return Fit(needed, context)

    def release(self, requests: Iterable[Request]) -> None:
        """Forget what `fit` or `request_length` kept for `requests`, which will not be answered (the answer
        cache served them). Default: nothing is kept."""

    def generation_token_budget(self) -> int | None:
        """Prompt plus new tokens that fit in one generation batch, when the backend can tell; None lets the
        engine use its general token budget."""
        return None

    def batches_itself(self, kind: str) -> bool:
        """Whether the backend schedules requests of `kind` itself (vLLM's continuous batching): the engine then
        hands it all of them in one call rather than in token-budget batches. Default: no."""
        return False

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

    # -- answers ------------------------------------------------------------------------------------------------
    def score(self, requests: list[Score]) -> list[ScoreResult]:
        raise self._cannot("score")

    def generate(self, requests: list[Generate]) -> list[GenerateResult]:
        raise self._cannot("generate")

    def choose(self, requests: list[Choose]) -> list[ChooseResult]:
        raise self._cannot("choose")

    def classify(self, requests: list[Classify]) -> list[ClassifyResult]:
        raise self._cannot("classify")

    def visual_generate(self, requests: list[VisualGenerate]) -> list[GenerateResult]:
        raise self._cannot("visual_generate")

    def answer(self, kind: str, requests: list[Any]) -> list[Result]:
        """Answers of one kind, in the order of `requests` (the engine groups requests by kind)."""
        handlers: dict[str, Callable[[list[Any]], list[Any]]] = {
            "score": self.score, "generate": self.generate, "choose": self.choose, "classify": self.classify,
            "visual_generate": self.visual_generate,
        }
        if kind not in handlers:
            raise BackendError(f"unknown request kind {kind!r}")
        return handlers[kind](requests)

    def _cannot(self, kind: str) -> BackendError:
        return BackendError(f"backend {self.name!r} cannot answer {kind} requests; see `mu-eval list backends` "
                            "for one that can")

    def close(self) -> None:
        """Release what the backend holds (restores an in-memory model's state)."""
