"""WMDP's unlearning corpora, read the way the WMDP authors' RMU run reads them.

RMU (zephyr-7b, `rmu/unlearn.py` of the WMDP repository) unlearns the bio and cyber forget corpora against
WikiText-2 (`wikitext-2-raw-v1`, split `test`) as retain text, keeping each record's `text` when it is longer
than `min_len` characters (0 on the command line, so only empty lines drop out). Each kept record becomes one
document: a `TextExample` with an empty prompt and the text, untouched, as the answer.

The bio forget corpus is gated (access by request to the WMDP authors); every other corpus is public.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mu_eval.data import DataError, DatasetSpec
from mu_eval.options import option
from mu_eval.task import TaskContext, TextExample, UnlearningData

CORPORA_ID = "cais/wmdp-corpora"
BIO_FORGET_ID = "cais/wmdp-bio-forget-corpus"
BIO_FORGET = "bio-forget-corpus"
TEXT_FIELD = "text"

#: corpus name (as RMU's `--forget_corpora` / `--retain_corpora` spell them) -> where it lives
CORPUS_SPECS: dict[str, DatasetSpec] = {
    # the file the authors send on request is `bio-forget-corpus.jsonl`: accepted as is under the data dir
    BIO_FORGET: DatasetSpec(BIO_FORGET_ID, None, "train", local_names=(BIO_FORGET,), required_fields=(TEXT_FIELD,)),
    "cyber-forget-corpus": DatasetSpec(CORPORA_ID, "cyber-forget-corpus", "train", required_fields=(TEXT_FIELD,)),
    "bio-retain-corpus": DatasetSpec(CORPORA_ID, "bio-retain-corpus", "train", required_fields=(TEXT_FIELD,)),
    "cyber-retain-corpus": DatasetSpec(CORPORA_ID, "cyber-retain-corpus", "train", required_fields=(TEXT_FIELD,)),
    "wikitext": DatasetSpec("Salesforce/wikitext", "wikitext-2-raw-v1", "test", required_fields=(TEXT_FIELD,)),
}
#: RMU's retain corpus for both topics
DEFAULT_RETAIN: tuple[str, ...] = ("wikitext",)
#: RMU's `--min_len` default: keep texts longer than this many characters
DEFAULT_MIN_LEN = 0

GATED_HINT = (
    f"the WMDP bio forget corpus ({BIO_FORGET_ID}) is gated and was not found. Request access on "
    f"https://huggingface.co/datasets/{BIO_FORGET_ID} (the WMDP authors' form, also linked from the "
    f"{CORPORA_ID} dataset card), then either log in to the hub (`huggingface-cli login` or HF_TOKEN) or put the "
    f"file you receive under the data directory as `{BIO_FORGET}.jsonl` (or `wmdp-bio-forget-corpus/train.jsonl`), "
    "one JSON object with a `text` field per line. To unlearn without it, pass forget_corpora=cyber-forget-corpus"
)


@dataclass(frozen=True)
class CorpusChoice:
    """Which corpora a WMDP task hands to unlearning methods, and the length filter applied to them."""

    forget: tuple[str, ...]
    retain: tuple[str, ...]
    min_len: int


@dataclass
class CorpusOptions:
    """The WMDP tasks' options for unlearning (`--task-args`)."""

    forget_corpora: list[str] | None = option(None, choices=tuple(CORPUS_SPECS),
                                              help="forget corpora joined by '+', or none (default: RMU's for the "
                                                   "task's topics)")
    retain_corpora: list[str] | None = option(default_factory=lambda: list(DEFAULT_RETAIN), choices=tuple(CORPUS_SPECS),
                                       help="retain corpora joined by '+', or none")
    corpus_min_len: int = option(DEFAULT_MIN_LEN, minimum=0, help="keep texts longer than this many characters")


def corpus_choice(settings: CorpusOptions, default_forget: Sequence[str], given: Mapping[str, Any]) -> CorpusChoice:
    """The corpora a task trains on: the options as given (`none` for no corpus), else RMU's defaults."""
    forget = tuple(default_forget) if "forget_corpora" not in given else tuple(settings.forget_corpora or ())
    return CorpusChoice(forget=tuple(dict.fromkeys(forget)), retain=tuple(dict.fromkeys(settings.retain_corpora or ())),
                        min_len=settings.corpus_min_len)


def load_corpus(ctx: TaskContext, name: str, min_len: int) -> list[str]:
    """The corpus's texts longer than `min_len` characters, in file order."""
    spec = CORPUS_SPECS[name]
    try:
        rows = ctx.load(spec)
    except DataError as error:
        # only a corpus that is nowhere to be found gets the access hint; a malformed file keeps its own message
        if name == BIO_FORGET and "is not available" in str(error):
            raise DataError(f"{GATED_HINT}. ({error})") from error
        raise
    texts = []
    for index, row in enumerate(rows):
        text = row.get(TEXT_FIELD)
        if not isinstance(text, str):
            raise DataError(f"dataset {spec.describe()}: row {index}: field {TEXT_FIELD!r} must be a string, "
                            f"got {type(text).__name__}")
        if len(text) > min_len:
            texts.append(text)
    return texts


def unlearning_corpora(ctx: TaskContext, choice: CorpusChoice) -> UnlearningData:
    """Forget and retain documents, corpus after corpus in the order chosen; each forget document's `group` is
    its corpus, so RMU takes turns between the forget corpora as WMDP's run does (retain text is one pool)."""

    def documents(names: tuple[str, ...], grouped: bool) -> list[TextExample]:
        return [TextExample("", text, group=name if grouped else "")
                for name in names for text in load_corpus(ctx, name, choice.min_len)]

    return UnlearningData(forget=documents(choice.forget, True), retain=documents(choice.retain, False))
