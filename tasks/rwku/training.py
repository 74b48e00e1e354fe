"""RWKU's training corpora (hub configs of split `train`) as forget examples for the methods that train.

RWKU's scripts unlearn each target on a corpus of its own: GA and NPO on `train_positive_<model>` (texts the
model wrote about the target), DPO on `train_pair_<model>` (a fabricated biography preferred to a true one),
RT on `train_refusal_<model>` (questions the model asked about the target, answered with a refusal), and the
passage variant of GA on `train_original_passage`. `<model>` is the model that generated the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mu_eval.data import DataError, DatasetSpec
from mu_eval.task import TextExample

from .data import HF_ID

#: `train_corpus` values, the default first.
CORPORA = ("positive", "passage", "pair", "refusal")
#: `corpus_model` values (the suffix of the generated configs), the default first.
CORPUS_MODELS = ("llama3", "phi3")

#: Fields every row of each corpus must have (`input` of the refusal rows is optional: RWKU leaves it empty).
FIELDS: dict[str, tuple[str, ...]] = {
    "positive": ("subject", "text"),
    "passage": ("subject", "text"),
    "pair": ("subject", "prompt", "response"),
    "refusal": ("subject", "instruction", "output"),
}


def corpus_spec(corpus: str, model: str) -> DatasetSpec:
    """The hub config of a corpus; the original passages are the same for every model."""
    config = "train_original_passage" if corpus == "passage" else f"train_{corpus}_{model}"
    return DatasetSpec(HF_ID, config, "train", required_fields=FIELDS[corpus])


def forget_examples(
    rows: Sequence[dict], corpus: str, spec: DatasetSpec, targets: Sequence[str], turn: Callable[[str], str]
) -> list[TextExample]:
    """The rows of `targets` (in target order, each target's rows in file order) as training examples.

    `turn` formats one user turn (the chat template), as RWKU's training formats its prompts.
    """
    grouped: dict[str, list[tuple[int, dict]]] = {}
    for index, row in enumerate(rows):
        grouped.setdefault(str(row["subject"]), []).append((index, row))
    missing = [t for t in targets if t not in grouped]
    if missing:
        raise DataError(f"dataset {spec.describe()} has no rows for the RWKU target(s) {', '.join(missing)}")
    return [_example(corpus, row, f"dataset {spec.describe()}, row {index}", turn)
            for target in targets for index, row in grouped[target]]


def _example(corpus: str, row: dict, where: str, turn: Callable[[str], str]) -> TextExample:
    if corpus in ("positive", "passage"):  # a document: no prompt, the whole text is trained on
        return TextExample("", _string(row, "text", where))
    if corpus == "pair":  # response = [chosen (fabricated), rejected (true)]: DPO prefers the first
        chosen, rejected = _pair(row, where)
        return TextExample(turn(_string(row, "prompt", where)), rejected, (chosen,))
    # refusal: the user turn is `instruction`, then `input` on a new line when there is one (alpaca layout)
    parts = [_string(row, "instruction", where), _string(row, "input", where, optional=True)]
    return TextExample(turn("\n".join(p for p in parts if p)), _string(row, "output", where))


def _string(row: dict, field: str, where: str, optional: bool = False) -> str:
    value = row.get(field)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {field!r} must be a string, got {value!r}")
    return value


def _pair(row: dict, where: str) -> tuple[str, str]:
    value = row["response"]
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field 'response' must be [chosen, rejected] (two strings), got {value!r}")
    return value[0], value[1]
