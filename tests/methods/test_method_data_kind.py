"""A method given the other kind of data fails with a clear message before training."""

from __future__ import annotations

import pytest

from mu_eval.method import MethodError
from mu_eval.plugins import get_registry
from mu_eval.task import TextExample, UnlearningData
from mu_eval.task_data import ClassifierExample
from mu_eval.unlearning import check_data_kind


def test_llm_method_rejects_classifier_examples_and_vice_versa():
    registry = get_registry()
    llm_method = registry.method("grad_ascent")()
    classifier_method = registry.method("neggrad")()
    text = UnlearningData([TextExample("Question: a\nAnswer: ", "b")], [])
    labelled = UnlearningData([ClassifierExample.from_raw("text", "a short review", 1)], [])
    check_data_kind(llm_method, text)
    check_data_kind(classifier_method, labelled)
    with pytest.raises(MethodError, match="unlearns language models"):
        check_data_kind(llm_method, labelled)
    with pytest.raises(MethodError, match="unlearns classifiers"):
        check_data_kind(classifier_method, text)
