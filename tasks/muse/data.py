"""Where MUSE's sets live, and the KnowMem prompt and output cut of the original code (docs/tasks-muse-wmdp-rwku.md)."""

from __future__ import annotations

from collections.abc import Sequence

from mu_eval.data import DatasetSpec
from mu_eval.requests import cut_at_stop

HF_IDS: dict[str, str] = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}

VERBMEM_MAX_NEW_TOKENS = 128
KNOWMEM_MAX_NEW_TOKENS = 32
#: MUSE keeps the output before the first "\n\n", then before "\nQuestion", then before "Question:";
#: cutting at the earliest of the three is the same thing.
KNOWMEM_STOPS: tuple[str, ...] = ("\n\n", "\nQuestion", "Question:")
PRIVLEAK_K = 0.4


def _local_split(split: str) -> str:
    """The original repository calls the hub's `retain` splits `retain2`."""
    return split.replace("retain", "retain2", 1) if split.startswith("retain") else split


def spec(corpus: str, config: str, split: str, fields: tuple[str, ...]) -> DatasetSpec:
    """A MUSE split; local files may use the hub's names or the original repository's (`retain2_qa`, ...)."""
    hf_id = HF_IDS[corpus]
    repo = hf_id.split("/")[-1]
    local = _local_split(split)
    local_names = (f"{repo}/{config}/{local}", f"{config}/{local}") if local != split else ()
    return DatasetSpec(hf_id, config, split, local_names=local_names, required_fields=fields)


def verbmem_spec(corpus: str) -> DatasetSpec:
    return spec(corpus, "verbmem", "forget", ("prompt", "gt"))


def knowmem_spec(corpus: str, split: str) -> DatasetSpec:
    return spec(corpus, "knowmem", split, ("question", "answer"))


def privleak_spec(corpus: str, split: str) -> DatasetSpec:
    return spec(corpus, "privleak", split, ("text",))


def raw_spec(corpus: str, split: str) -> DatasetSpec:
    """The `raw` corpus (forget, retain1, retain2, holdout documents) that unlearning methods train on."""
    return spec(corpus, "raw", split, ("text",))


#: MUSE-News's forget sets for scalability (`scal`, nested: forget_k holds forget_1..forget_k-1) and
#: sustainability (`sust`, pairwise disjoint), each split into forget_1..forget_4.
FOLD_CONFIGS: tuple[str, ...] = ("scal", "sust")
FOLD_COUNT = 4
FOLD_CORPORA: tuple[str, ...] = ("news",)


def fold_spec(corpus: str, config: str, index: int) -> DatasetSpec:
    """Split `forget_<index>` of the `scal` or `sust` config (documents, like `raw`)."""
    return spec(corpus, config, f"forget_{index}", ("text",))


def fold_specs(corpus: str, config: str) -> tuple[DatasetSpec, ...]:
    return tuple(fold_spec(corpus, config, index) for index in range(1, FOLD_COUNT + 1))


def all_specs(corpus: str) -> tuple[DatasetSpec, ...]:
    knowmem = [knowmem_spec(corpus, s) for s in ("forget_qa", "forget_qa_icl", "retain_qa", "retain_qa_icl")]
    privleak = [privleak_spec(corpus, s) for s in ("forget", "holdout")]
    return (verbmem_spec(corpus), *knowmem, *privleak)


def knowmem_prompt(icl: Sequence[dict], question: str) -> str:
    """The 10 in-context pairs of the split family, then the question, exactly as MUSE's `eval_knowmem`."""
    shots = "".join(f"Question: {pair['question']}\nAnswer: {pair['answer']}\n\n" for pair in icl)
    return shots + f"Question: {question}\nAnswer: "


def cut_knowmem_output(text: str) -> str:
    """MUSE's post-processing of a KnowMem generation."""
    return cut_at_stop(text, KNOWMEM_STOPS)
