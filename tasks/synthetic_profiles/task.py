"""The synthetic-profiles tasks: TOFU's task logic over the seeded generator (no metric code of their own)."""

from __future__ import annotations

from typing import Any

from mu_eval.task import TaskContext
from mu_eval.tasks.synthetic_profiles.generator import DEFAULT_PEOPLE
from mu_eval.tasks.tofu.sources import SyntheticSource, TofuSource
from mu_eval.tasks.tofu.task import TofuTask, optional_int


def seed_option(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"task option data_seed must be an integer, got {value!r}") from None


class SyntheticProfilesTask(TofuTask):
    """TOFU metrics on generated fictitious profiles. Options as TOFU, plus `people` (60) and `data_seed` (0):
    the same pair always gives the same data, so a reference report is comparable only with the same pair."""

    extra_options = ("people", "data_seed")

    def forget_facts(self, ctx: TaskContext) -> list:
        """Forget facts with their bare values as answers, for the reasoning and ununlearning attacks."""
        return self._facts(ctx, "forget_train")

    def retain_facts(self, ctx: TaskContext) -> list:
        return self._facts(ctx, "retain_train")

    def _facts(self, ctx: TaskContext, role: str) -> list:
        from mu_eval.attacks.protocol import ForgetFact

        return [ForgetFact(question=row["question"], answer=row["short_answer"], fact=row["answer"])
                for row in self.source.rows(ctx, role, self.split) if row.get("short_answer")]

    def make_source(self) -> TofuSource:
        people = optional_int(self.options.get("people"), "people") or DEFAULT_PEOPLE
        return SyntheticSource(people, seed_option(self.options.get("data_seed", 0)))
