"""The settings a run shares between its parts: one value handed from `evaluate` to the protocol runner
and back to `evaluate` for every step, instead of the same sixteen keyword arguments spelled out three times."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """Everything about a run but the model, the tasks and what is done to the model (method, protocol,
    attacks); the keyword arguments of `mu_eval.evaluate` of the same names, with the same defaults."""

    task_options: dict[str, dict] | None = None
    backend: str = "hf"
    model_args: dict[str, str] | None = None
    device: str | None = None
    batch_size: int | str = "auto"
    limit: int | float | None = None
    seed: int = 1234
    data_dir: str | os.PathLike | None = None
    reference: Any = None
    output_path: str | os.PathLike | None = None
    log_samples: bool = False
    use_cache: bool | None = None
    cache_dir: str | os.PathLike | None = None
    use_chat_template: bool = True
    progress: bool = True
    extra_config: dict[str, Any] | None = None
    #: Share the requests among the data-parallel processes a launcher started (every process runs the run).
    data_parallel: bool = False
    step: int | None = None
    tag: str | None = None
    subset_seed: int | None = None
    max_new_tokens: int | None = None
    generate: bool = True

    def context_settings(self) -> dict[str, Any]:
        """What every task's context carries besides limit and seed: how items are chosen and generation."""
        return {"subset_seed": self.subset_seed, "max_new_tokens": self.max_new_tokens, "generate": self.generate}

    def describe_subset(self) -> dict[str, Any] | None:
        """The report's `config.subset`: null for whole sets, else how many items per set and how chosen."""
        if self.limit is None:
            return None
        chosen = "first" if self.subset_seed is None else "seeded random"
        size = {"share_per_set": self.limit} if isinstance(self.limit, float) else {"items_per_set": self.limit}
        return {**size, "chosen": chosen, "seed": self.subset_seed}
