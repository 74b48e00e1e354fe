"""RWKU scoring functions against hand calculations and second implementations."""

import math

import nltk
import pytest
from rouge import Rouge

from mu_eval.metrics.rouge import rougeL_recall_rwku
from mu_eval.tasks.rwku import scoring
from mu_eval.tasks.rwku.data import select_targets, targets_from_file


@pytest.mark.parametrize(
    ("gold", "prediction", "expected"),
    [
        ("Portland", "Portland, Maine.", 0.0),  # RWKU's scorer: punctuation stays attached
        ("Stephen King", "stephen king", 0.0),  # case-sensitive
        ("Stephen King", "It was Stephen King", 1.0),
        ("the city of Bangor", "Bangor city", 0.25),  # LCS "city" (or "Bangor"): 1 of 4 words
    ],
)
def test_rouge_recall_rwku_spec_examples(gold, prediction, expected):
    assert rougeL_recall_rwku(gold, prediction) == pytest.approx(expected)
    direct = Rouge().get_scores(prediction, gold)[0]["rouge-l"]["r"]
    assert rougeL_recall_rwku(gold, prediction) == pytest.approx(direct)


def test_probe_prediction_and_bbh_extraction():
    assert scoring.probe_prediction("  Paris \t") == "Paris"
    assert scoring.probe_prediction("  \n ") == "NOANSWER"
    assert scoring.bbh_prediction("Let's think. So the answer is (B). More.") == "(B)"
    assert scoring.bbh_prediction("so The answer is  True . x") == "True"
    assert scoring.bbh_prediction("  no marker here ") == "no marker here"
    assert scoring.bbh_prediction("the answer is . ") == "NOANSWER"


def test_normalisation_f1_and_exact_match_by_hand():
    assert scoring.normalize_answer("The  Eiffel-Tower, in PARIS!") == "eiffeltower in paris"
    # prediction tokens: [paris, france, capital] ; gold [paris]: P = 1/3, R = 1, F1 = 0.5
    assert scoring.token_f1("Paris, the capital of France", "Paris") == pytest.approx(2 * (1 / 4) * 1 / (1 / 4 + 1))
    assert scoring.token_f1("paris france", "Paris, France") == 1.0
    assert scoring.token_f1("", "") == 1.0 and scoring.token_f1("a", "Paris") == 0.0
    assert scoring.best_over(scoring.token_f1, "Paris", ["London", "paris"]) == 1.0
    assert scoring.exact_match("(A)", "A") == 1.0 and scoring.exact_match("True", "False") == 0.0
    # a bare answer string is one reference, not a list of its characters
    assert scoring.as_references("True") == ["True"]
    assert scoring.best_over(scoring.exact_match, "t", scoring.as_references("True")) == 0.0


def test_fluency_entropy_by_hand_and_with_nltk():
    tokens = ["a", "b", "a", "b"]
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))  # bigrams ab, ba, ab
    h3 = 1.0  # trigrams aba, bab
    assert scoring.fluency_entropy(tokens) == pytest.approx((2 / 3 * h2 + 4 / 3 * h3) / 2)
    assert scoring.fluency_entropy(["one"]) == 0.0
    text = "the cat sat on the mat and the cat sat on the hat"
    words = text.split()

    def nltk_entropy(n):
        dist = nltk.FreqDist(nltk.ngrams(words, n))
        total = dist.N()
        return -sum(c / total * math.log2(c / total) for c in dist.values())

    expected = (2 / 3 * nltk_entropy(2) + 4 / 3 * nltk_entropy(3)) / 2
    assert scoring.fluency_entropy(words) == pytest.approx(expected)
    tokenize, note = scoring.word_tokenizer()
    assert tokenize("Hello there, world. It is fine!") == ["Hello", "there", ",", "world", ".", "It", "is", "fine", "!"]
    assert note


def test_targets_follow_all_intro_order(benchmark_data):
    order = targets_from_file(benchmark_data / "rwku" / "all_intro.json")
    assert len(order) == 200
    first = select_targets(order, None, 100)
    assert first[0] == "Stephen King" and first[99] == "Matthew Perry" and len(first) == 100
    assert select_targets(order, "1-3", 100) == ["Stephen King", "Confucius", "Bruce Lee"]
    assert select_targets(order, "Bruce Lee|2|Bruce Lee", 100) == ["Bruce Lee", "Confucius"]
    assert select_targets(order, ["Prince Harry, Duke of Sussex"], 100) == ["Prince Harry, Duke of Sussex"]
    with pytest.raises(ValueError, match="unknown RWKU target 'Nobody'"):
        select_targets(order, "Nobody", 100)
    with pytest.raises(ValueError, match="outside 1-200"):
        select_targets(order, "150-201", 100)
