"""Where a TOFU-schema benchmark's rows come from: the `locuslab/TOFU` configs, or a synthetic generator.

The task logic only ever asks a source for the rows of one *role* of one forget split; both sources
answer with TOFU's field names, so one task class serves both and no metric code is duplicated.
"""

from __future__ import annotations

from typing import Any, Protocol

from mu_eval.data import DatasetSpec
from mu_eval.task import TaskContext

TOFU_ID = "locuslab/TOFU"
SPLITS = ("forget01", "forget05", "forget10")

#: Evaluation sets, in report order.
EVAL_SETS = ("forget", "retain", "real_authors", "world_facts")
#: Every role a source serves: the four evaluation sets, the MIA holdout, and the two training sets.
ROLES = (*EVAL_SETS, "holdout", "forget_train", "retain_train")

PERTURBED_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
FACT_FIELDS = ("question", "answer", "perturbed_answer")
QA_FIELDS = ("question", "answer")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown TOFU forget split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def config_name(role: str, split: str) -> str:
    """TOFU's config for `role` of forget split `split` (forget10 -> forget10_perturbed, retain90, ...)."""
    percent = check_split(split).removeprefix("forget")
    names = {
        "forget": f"forget{percent}_perturbed",
        "retain": "retain_perturbed",
        "real_authors": "real_authors_perturbed",
        "world_facts": "world_facts_perturbed",
        "holdout": f"holdout{percent}",
        "forget_train": f"forget{percent}",
        "retain_train": f"retain{100 - int(percent):02d}",
    }
    if role not in names:
        raise ValueError(f"unknown TOFU role {role!r}; expected one of {', '.join(ROLES)}")
    return names[role]


def required_fields(role: str) -> tuple[str, ...]:
    if role in ("forget", "retain"):
        return PERTURBED_FIELDS
    if role in ("real_authors", "world_facts"):
        return FACT_FIELDS
    return QA_FIELDS


class TofuSource(Protocol):
    """Rows in TOFU's schema for one role of one forget split."""

    name: str

    def datasets(self, split: str) -> tuple[DatasetSpec, ...]: ...

    def rows(self, ctx: TaskContext, role: str, split: str) -> list[dict]: ...

    def describe(self) -> dict[str, Any]: ...


class HubSource:
    """HF `locuslab/TOFU` (split `train` of every config), or local files of the same names via --data-dir."""

    name = "tofu"

    def spec(self, role: str, split: str) -> DatasetSpec:
        return DatasetSpec(TOFU_ID, config_name(role, split), "train", required_fields=required_fields(role))

    def datasets(self, split: str) -> tuple[DatasetSpec, ...]:
        return tuple(self.spec(role, split) for role in ROLES)

    def rows(self, ctx: TaskContext, role: str, split: str) -> list[dict]:
        return ctx.load(self.spec(role, split))

    def describe(self) -> dict[str, Any]:
        return {"source": self.name, "hf_id": TOFU_ID}


class SyntheticSource:
    """The seeded synthetic profiles (`mu_eval.tasks.synthetic_profiles`), generated in memory."""

    name = "synthetic_profiles"

    def __init__(self, people: int, seed: int) -> None:
        self.people = people
        self.seed = seed

    def datasets(self, split: str) -> tuple[DatasetSpec, ...]:
        return ()

    def rows(self, ctx: TaskContext, role: str, split: str) -> list[dict]:
        from mu_eval.tasks.synthetic_profiles.generator import build_benchmark

        return build_benchmark(self.people, self.seed)[config_name(role, split)]

    def describe(self) -> dict[str, Any]:
        return {"source": self.name, "people": self.people, "data_seed": self.seed}
