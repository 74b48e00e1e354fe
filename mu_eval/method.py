"""The unlearning-method interface: model, tokenizer, forget and retain data, configuration in; model out."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from mu_eval.options import OptionError, parse_options
from mu_eval.task import UnlearningData


class MethodError(Exception):
    """An unlearning method cannot run as asked: a bad option, missing data, an unsupported model."""


class MethodOptionError(MethodError, OptionError):
    """An option the method does not declare, or a value that does not convert to the declared type."""


class Method:
    """Base class for unlearning methods. Subclasses set `name` and implement `unlearn`.

    Options arrive from `--method-args k=v,...` as strings or from Python as values; subclass
    `ConfiguredMethod` to have them declared, converted and checked.
    """

    name: str = ""
    #: "llm" for causal (and vision-language) models, "classifier" for MU-Bench style classifiers: the harness
    #: refuses a method whose kind does not match the examples the run's tasks provide.
    kind: str = "llm"
    description: str = ""
    #: Whether the method trains on image+text examples (MLLMU-Bench); a method that cannot says why in
    #: `image_refusal`, which the harness shows when a run gives it pictures.
    accepts_images: ClassVar[bool] = False
    image_refusal: ClassVar[str] = ""
    #: Whether the method may show progress bars; the harness sets it from the run (off under `--quiet`).
    #: Not an option: it changes no result, so it is not recorded in the method's configuration.
    progress: bool = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    def unlearn(self, model: Any, tokenizer: Any, data: UnlearningData) -> Any:
        """Unlearn `data.forget` (keeping `data.retain`) and return the model (the same object or a new one)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "options": dict(self.options)}


class ConfiguredMethod(Method):
    """A method whose options are a dataclass `Options`: typed, defaulted, validated, and recorded in full.

    `self.settings` holds the parsed dataclass; `self.options` (what reports show) every resolved value,
    defaults included, so a report alone reproduces the run.
    """

    Options: ClassVar[type]

    def __init__(self, **options: Any) -> None:
        self.settings: Any
        try:
            self.settings = parse_options(self.Options, options, f"method {self.name!r}")
        except OptionError as error:
            raise MethodOptionError(str(error)) from None
        super().__init__(**dataclasses.asdict(self.settings))
        self.info: dict[str, Any] = {}
