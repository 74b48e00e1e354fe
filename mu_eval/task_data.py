"""What tasks hand to unlearning methods and attacks: training examples, forget/retain sets, facts and
membership sets. Plain data, shared by tasks (which build them) and methods and attacks (which read them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mu_eval.inputs import StoredInput, prepare_input
from mu_eval.requests import Score


@dataclass
class TextExample:
    """One training example: the prompt is context only, the answer is what the loss is computed on."""

    prompt: str
    answer: str
    #: Other answers to the same prompt (e.g. perturbed ones), for methods that prefer them to `answer` (DPO).
    alternates: tuple[str, ...] = ()
    #: The corpus or topic the example comes from (WMDP: the forget corpus); RMU takes turns between groups
    #: the way WMDP's RMU run takes turns between its bio and cyber corpora. Empty: one group.
    group: str = ""


@dataclass
class ImageTextExample:
    """A training example for a vision-language model (MLLMU-Bench's LLaVA): `prompt` holds one `<image>`
    placeholder per entry of `images`, in order, and is context only; the loss is on `answer`.

    Not a `TextExample`, so text-only machinery (refusal pairs, RMU's activations) never drops the pictures
    silently. `images` are `StoredInput`s (`mu_eval.inputs.prepare_input("image", raw)`, normalised and hashed
    once per picture, so examples sharing a picture share its processing) or raw pictures (PIL images,
    arrays, `{"bytes", "path"}` dataset values).
    """

    prompt: str
    answer: str
    images: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ClassifierExample:
    """One labelled input for classifier unlearning (MU-Bench). `prompt` and `answer` are the keys generic
    code uses to drop repeated examples: the input's content hash and its label."""

    stored: StoredInput
    label: int

    @classmethod
    def from_raw(cls, modality: str, value: Any, label: int) -> ClassifierExample:
        return cls(prepare_input(modality, value), int(label))

    @property
    def inputs(self) -> Any:
        """The normalised input, as the backend's processor takes it."""
        return self.stored.value

    @property
    def modality(self) -> str:
        return self.stored.modality

    @property
    def key(self) -> str:
        return self.stored.digest

    @property
    def prompt(self) -> str:
        return self.key

    @property
    def answer(self) -> str:
        return str(self.label)


Example = TextExample | ImageTextExample | ClassifierExample


@dataclass
class UnlearningData:
    forget: list[Any]
    retain: list[Any]
    #: Data from the forget distribution never trained on (membership-inference negatives).
    holdout: list[Any] = field(default_factory=list)


@dataclass
class ClassifierUnlearningData(UnlearningData):
    """Forget (D_f) and retain (D_r) classifier examples; `holdout` may carry D_test (never trained on)."""

    forget: list[ClassifierExample]
    retain: list[ClassifierExample]
    holdout: list[ClassifierExample] = field(default_factory=list)


@dataclass(frozen=True)
class ForgetFact:
    """One fact for the generation attacks (in-context re-introduction, many-shot, step-by-step reasoning).

    `question` is the raw question (not chat-formatted: attacks format it themselves, with context in
    front); `answer` is the short gold string whose normalised form must appear in a generation for it to
    count as recalled; `fact` states the fact in one sentence (default: question and answer); `related`
    are building blocks the fact can be derived from without stating it; `aliases` are other accepted
    answers.
    """

    question: str
    answer: str
    fact: str = ""
    related: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def statement(self) -> str:
        return self.fact or f"{self.question} {self.answer}"

    def answers(self) -> tuple[str, ...]:
        return (self.answer, *self.aliases)


@dataclass
class MembershipSet:
    """Member and non-member Score requests; `*_texts` (for Zlib) default to the scored continuations."""

    members: list[Score]
    nonmembers: list[Score]
    member_texts: list[str] | None = None
    nonmember_texts: list[str] | None = None
    description: str = ""

    def texts(self) -> tuple[list[str], list[str]]:
        members = self.member_texts if self.member_texts is not None else [r.continuation for r in self.members]
        nonmembers = (
            self.nonmember_texts if self.nonmember_texts is not None else [r.continuation for r in self.nonmembers]
        )
        return list(members), list(nonmembers)
