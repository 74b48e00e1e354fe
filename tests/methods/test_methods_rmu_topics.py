"""RMU over several forget corpora, scheduled the way WMDP's RMU run takes its topics: turn by turn, each topic
with its own control vector and token limit, batches in file order."""

from __future__ import annotations

import pytest
import torch
from methods_support import FORGET, RETAIN

from mu_eval.method import MethodOptionError
from mu_eval.methods.rmu import RMU
from mu_eval.methods.rmu_topics import (
    TopicStep,
    control_vectors,
    split_by_topic,
    topic_max_length,
    topic_schedule,
    topics_in_order,
)
from mu_eval.task import TextExample, UnlearningData
from mu_eval.training import encode_examples

TWO_A_STEP = {"steps": 1, "batch_size": 2, "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3}


def test_schedule_alternates_topics_and_walks_each_in_file_order():
    # two topics of 5 and 3 documents, 4 retain texts, batches of 2, 7 steps (written out by hand)
    steps = topic_schedule([5, 3], retain_size=4, batch_size=2, steps=7)
    assert steps == [
        TopicStep(0, (0, 1), (0, 1)),
        TopicStep(1, (0, 1), (0, 1)),  # the same retain batch for both topics of a round, as WMDP indexes it
        TopicStep(0, (2, 3), (2, 3)),
        TopicStep(1, (2,), (2, 3)),
        TopicStep(0, (4,), (0, 1)),  # the retain text ran out: it starts over
        TopicStep(1, (0, 1), (0, 1)),  # topic 1 ran out after two batches: it starts over
        TopicStep(0, (0, 1), (2, 3)),
    ]


def test_schedule_without_retain_and_with_one_topic():
    steps = topic_schedule([3], retain_size=0, batch_size=2, steps=3)
    assert [(s.topic, s.forget, s.retain) for s in steps] == [(0, (0, 1), ()), (0, (2,), ()), (0, (0, 1), ())]


@pytest.mark.parametrize(("sizes", "batch_size"), [([], 2), ([3, 0], 2), ([3], 0)])
def test_schedule_rejects_empty_topics_and_batches(sizes, batch_size):
    with pytest.raises(ValueError):
        topic_schedule(sizes, retain_size=2, batch_size=batch_size, steps=1)


def test_control_vectors_have_the_coefficient_as_norm_and_differ_per_topic():
    vectors = control_vectors(3, hidden_size=16, coefficient=6.5, seed=0)
    assert [round(float(v.norm()), 5) for v in vectors] == [6.5, 6.5, 6.5]
    assert all(float(v.min()) >= 0 for v in vectors)  # u ~ U[0, 1): every component non-negative
    assert not torch.allclose(vectors[0], vectors[1]) and not torch.allclose(vectors[1], vectors[2])
    single = torch.rand(16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vectors[0], 6.5 * single / single.norm())  # topic 0 = the one-topic vector


def test_topic_limits_and_grouping():
    assert [topic_max_length((512, 768), t) for t in range(4)] == [512, 768, 768, 768]
    examples = [TextExample("", "b1", group="bio"), TextExample("", "c1", group="cyber"),
                TextExample("", "b2", group="bio")]
    topics = topics_in_order([e.group for e in examples])
    assert topics == ["bio", "cyber"]
    assert [[e.answer for e in part] for part in split_by_topic(examples, topics)] == [["b1", "b2"], ["c1"]]


# -- RMU itself on the tiny trained model ------------------------------------------------------------------
def grouped(examples, group):
    return [TextExample(e.prompt, e.answer, group=group) for e in examples]


def hidden_after_layer0(model, encoded):
    with torch.no_grad():
        ids = torch.tensor([encoded.input_ids])
        return model(input_ids=ids, output_hidden_states=True).hidden_states[1][0, encoded.start :]


def test_first_step_is_topic_zeros_first_batch_at_its_own_token_limit(trained):
    """Topic 0's first two documents in file order, cut at its limit, against topic 0's control vector."""
    model, tokenizer = trained
    a, b = grouped(FORGET[:2], "a"), grouped(FORGET[2:], "b")
    forget = [a[0], b[0], a[1]]  # interleaved in the data: grouping must not depend on adjacency
    limit = 9
    encoded = encode_examples(tokenizer, a, limit)
    assert all(len(e.input_ids) == limit for e in encoded)
    assert all(len(e.input_ids) > limit for e in encode_examples(tokenizer, a, None)), "the limit must cut"
    control = control_vectors(2, model.config.hidden_size, 5.0, seed=0)[0]
    squared = torch.cat([((hidden_after_layer0(model, e) - control) ** 2).mean(-1) for e in encoded])
    method = RMU(layer=0, steering_coeff=5.0, retain_weight=0.0, topic_max_lengths=(limit, 64), **TWO_A_STEP)
    method.unlearn(model, tokenizer, UnlearningData(forget=forget, retain=[]))
    assert method.info["topics"] == ["a", "b"]
    assert method.info["first_loss"] == pytest.approx(float(squared.mean()), rel=1e-4)


def test_each_topic_is_pushed_towards_its_own_control_vector(trained):
    """After alternating, topic a's answer states lie nearer a's vector than b's, and b's nearer b's; pooled
    under one vector (what RMU did before topics), b's states would head for a's vector instead."""
    model, tokenizer = trained
    topics = {"a": grouped(FORGET[:2], "a"), "b": grouped(FORGET[2:] + RETAIN[:1], "b")}
    controls = dict(zip(topics, control_vectors(2, model.config.hidden_size, 8.0, seed=0)))
    method = RMU(layer=0, steering_coeff=8.0, retain_weight=0.0, steps=40, lr=1e-2, batch_size=2,
                 grad_accum_steps=1, warmup_ratio=0.0)
    method.unlearn(model, tokenizer, UnlearningData(forget=topics["a"] + topics["b"], retain=[]))
    for name, examples in topics.items():
        states = torch.cat([hidden_after_layer0(model, e) for e in encode_examples(tokenizer, examples)])
        distance = {other: float(((states - c) ** 2).mean()) for other, c in controls.items()}
        assert distance[name] < distance["b" if name == "a" else "a"], (name, distance)


def test_pooled_mode_and_bad_topic_options(trained):
    model, tokenizer = trained
    data = UnlearningData(forget=grouped(FORGET[:2], "a") + grouped(FORGET[2:], "b"), retain=[])
    method = RMU(layer=0, retain_weight=0.0, topics="pooled", **TWO_A_STEP)
    method.unlearn(model, tokenizer, data)
    assert method.info["topics"] is None
    with pytest.raises(MethodOptionError, match="topics='mixed'"):
        RMU(topics="mixed")
    with pytest.raises(MethodOptionError, match="topic_max_lengths"):
        RMU(topic_max_lengths=(0,))
