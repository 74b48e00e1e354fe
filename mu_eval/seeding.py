"""Seeding every random generator a run touches (Python, NumPy, torch), so a run with a seed repeats exactly."""

from __future__ import annotations

import random


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
