"""Registers the classifier unlearning methods through the `mu_eval` entry points, like any plugin."""

from __future__ import annotations

from typing import Any

import mu_eval

from .gradient import FineTune, L1Sparse, NegGrad, NegGradPlus
from .relabel import RandLabel, SalUn
from .ssd import SSD
from .teacher import BadTeacher, Scrub

CLASSIFIER_METHODS = (FineTune, NegGrad, NegGradPlus, RandLabel, SalUn, BadTeacher, Scrub, SSD, L1Sparse)


@mu_eval.hookimpl
def register_methods(register: Any) -> None:
    for method in CLASSIFIER_METHODS:
        register(method)
