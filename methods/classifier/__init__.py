"""Classifier unlearning methods (MU-Bench / SalUn protocol): `unlearn(model, processor, data) -> model`.

`data` is a `ClassifierUnlearningData` (or the merged `UnlearningData` of `mu_eval.unlearning.apply_method`)
holding `ClassifierExample`s; MU-Bench classification tasks produce it from `unlearning_data(ctx)`.
"""

from mu_eval.task_data import ClassifierExample, ClassifierUnlearningData

__all__ = ["ClassifierExample", "ClassifierUnlearningData"]
