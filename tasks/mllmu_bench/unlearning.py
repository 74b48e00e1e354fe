"""MLLMU-Bench's unlearning data: image + question + answer examples, as the paper's baseline scripts train on.

The released GA, GA-Difference, KL-Min and NPO scripts read the baseline training split (hub repository
`MLLMMU/baseline_train_split`, folders `forget_k` and `retain_{100-k}`): one row per profile with its `image`
and `metadata`, a list (JSON) of `{"Question", "Answer"}`. Every pair with both becomes one example on the
profile's picture, the text `USER: <image>\\n{Question}\\nASSISTANT: {Answer}` (LLaVA; with `train_format=chat`
the processor's chat template, as the scripts write Idefics2's: `chat.py`). The scripts' loss covers every
non-padding token; here it covers the answer (and EOS) only, as for every other task.

With `train_data=benchmark` the benchmark's own forget/retain rows are read instead: their `metadata` when they
have it, else their single `question`/`answer` pair.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from mu_eval.data import DataError, DatasetSpec
from mu_eval.inputs import prepare_input
from mu_eval.task import ImageTextExample

from . import prompts

TRAIN_REPO = "MLLMMU/baseline_train_split"
TRAIN_SOURCES = ("baseline", "benchmark")
DOWNLOAD_HINT = (
    f"the baseline training split is a model repository on the hub, which `datasets` cannot load: download it "
    f"(huggingface-cli download {TRAIN_REPO} --local-dir DIR/baseline_train_split) and pass --data-dir DIR, or "
    "train on the benchmark's own rows with --task-args train_data=benchmark"
)


def baseline_spec(folder: str) -> DatasetSpec:
    """One folder (`forget_5`, `retain_95`, ...) of the baseline training split, found under the data
    directory as `baseline_train_split/<folder>/train-00000-of-00001.parquet` (the hub's file name) or
    `baseline_train_split/<folder>.parquet`; no config, so no bare `<folder>/train` file is mistaken for it."""
    return DatasetSpec(
        TRAIN_REPO, None, folder, required_fields=("image",),
        local_names=tuple(f"{root}/{folder}/{name}" for root in ("baseline_train_split", TRAIN_REPO)
                          for name in ("train-00000-of-00001", "train")),
    )


def load_baseline(load: Callable[[DatasetSpec], list[dict]], folder: str) -> list[dict]:
    try:
        return load(baseline_spec(folder))
    except DataError as error:
        raise DataError(f"{error}; {DOWNLOAD_HINT}") from error


def qa_pairs(row: dict) -> list[tuple[str, str]]:
    """The (question, answer) pairs a profile row trains on: `metadata` when present, else `question`/`answer`."""
    metadata = row.get("metadata")
    if metadata is not None:
        items = json.loads(metadata) if isinstance(metadata, str) else metadata
        items = [items] if isinstance(items, dict) else items
        return [(str(item["Question"]), str(item["Answer"])) for item in items
                if item.get("Question") and item.get("Answer")]
    if row.get("question") and row.get("answer"):
        return [(str(row["question"]), str(row["answer"]))]
    raise DataError(f"MLLMU-Bench row {row.get('ID', '?')} has neither `metadata` nor `question`/`answer` to "
                    "train on")


def training_examples(rows: Iterable[dict[str, Any]], style: Any = None) -> list[ImageTextExample]:
    """One example per question-answer pair, on its profile's picture (registered once per profile), in the
    prompt format `style` (`prompts.LlavaPrompts` when None, or `chat.ChatPrompts`)."""
    style = style or prompts.LlavaPrompts()
    examples = []
    for row in rows:
        pairs = qa_pairs(row)
        if not pairs:
            continue
        picture = prepare_input("image", row["image"])
        for question, answer in pairs:
            prompt, text = style.training(question, answer)
            examples.append(ImageTextExample(prompt, text, (picture,)))
    return examples
