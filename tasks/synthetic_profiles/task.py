"""The synthetic-profiles tasks: TOFU's task logic over the seeded generator (no metric code of their own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mu_eval.options import option
from mu_eval.task import TaskContext
from mu_eval.task_data import ForgetFact
from mu_eval.tasks.synthetic_profiles.generator import DEFAULT_PEOPLE
from mu_eval.tasks.tofu.sources import SyntheticSource, TofuSource
from mu_eval.tasks.tofu.task import TofuOptions, TofuTask


@dataclass
class SyntheticOptions(TofuOptions):
    """TOFU's options, plus which synthetic benchmark to generate."""

    people: int = option(DEFAULT_PEOPLE, minimum=1, help="synthetic people (20 questions each)")
    data_seed: int = option(0, help="seed of the generator: the same people and seed give the same data")


class SyntheticProfilesTask(TofuTask):
    """TOFU metrics on generated fictitious profiles. Options as TOFU, plus `people` (60) and `data_seed` (0):
    the same pair always gives the same data, so a reference report is comparable only with the same pair."""

    Options: ClassVar[type | None] = SyntheticOptions

    def forget_facts(self, ctx: TaskContext) -> list[ForgetFact]:
        """Forget facts with their bare values as answers, for the reasoning and ununlearning attacks."""
        return self._facts(ctx, "forget_train")

    def retain_facts(self, ctx: TaskContext) -> list[ForgetFact]:
        return self._facts(ctx, "retain_train")

    def _facts(self, ctx: TaskContext, role: str) -> list[ForgetFact]:
        return [ForgetFact(question=row["question"], answer=row["short_answer"], fact=row["answer"])
                for row in self.source.rows(ctx, role, self.split) if row.get("short_answer")]

    def make_source(self) -> TofuSource:
        return SyntheticSource(self.settings.people, self.settings.data_seed)
