"""The options of the MU-Bench tasks (`--task-args`), shared by the classification and generation tasks."""

from __future__ import annotations

from dataclasses import dataclass

from mu_eval.options import option


@dataclass
class DeletionOptions:
    """Which training rows form the forget set, and how much of the retain set is evaluated."""

    ratio: float = option(10.0, minimum=0.0, maximum=100.0, help="deletion ratio in percent (MU-Bench: 1 to 10)")
    df_file: str | None = option(None, help="the deletion-set index file (default: found under df_dir or the data dir)")
    df_dir: str | None = option(None, help="folder of MU-Bench's deletion-set files (mubench/df)")
    retain_eval_size: int | None = option(None, minimum=1, help="evaluate a seeded sample of this many retain rows")
