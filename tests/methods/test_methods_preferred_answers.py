"""Methods that train towards another answer: DPO with the task's alternate answers, and rejection tuning on
refusals. Pairs are checked token by token, losses against per-example computations."""

from __future__ import annotations

import math

import pytest
from methods_support import ALTERNATES, FORGET, answer_tokens, split

import mu_eval
from mu_eval.method import MethodError
from mu_eval.methods.dpo import AlternateDPO, IdkDPO
from mu_eval.methods.refusals import REFUSALS
from mu_eval.methods.rejection import RejectionTuning
from mu_eval.task import TextExample, UnlearningData

ONE_STEP = {"steps": 1, "batch_size": len(FORGET), "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3}


def answer_text(tokenizer, encoded) -> str:
    return tokenizer.decode(encoded.input_ids[encoded.start : -1]).strip()  # the last token is the appended EOS


def sequence_logprob(model, tokenizer, example: TextExample) -> float:
    (logits, targets), = answer_tokens(model, tokenizer, [example])
    return sum(float(z[int(y)] - z.logsumexp(-1)) for z, y in zip(logits, targets))


def test_dpo_pairs_an_alternate_with_the_true_answer(trained):
    _, tokenizer = trained
    data = split(alternates=True)
    pairs = AlternateDPO(seed=3).forget_items(tokenizer, data.forget)
    chosen = []
    for (win, lose), example, wrong in zip(pairs, data.forget, ALTERNATES):
        assert answer_text(tokenizer, lose) == example.answer
        assert answer_text(tokenizer, win) in wrong
        assert win.input_ids[: win.start] == lose.input_ids[: lose.start], "same prompt"
        chosen.append(answer_text(tokenizer, win))
    again = AlternateDPO(seed=3).forget_items(tokenizer, data.forget)
    assert [answer_text(tokenizer, win) for win, _ in again] == chosen


def test_dpo_without_alternates_says_what_is_missing(trained):
    model, tokenizer = trained
    with pytest.raises(MethodError, match="3 of 3 forget examples carry no alternates.*idk_dpo"):
        AlternateDPO(**ONE_STEP).unlearn(model, tokenizer, split())
    partial = split(alternates=True)
    partial.forget[1] = TextExample(partial.forget[1].prompt, partial.forget[1].answer)
    with pytest.raises(MethodError, match="1 of 3"):
        AlternateDPO(**ONE_STEP).unlearn(model, tokenizer, partial)


def test_dpo_first_loss_and_direction(trained):
    """theta = theta_ref at the first step: (2/beta) ln 2; afterwards the alternate gains on the true answer."""
    model, tokenizer = trained
    data = split(alternates=True)
    win_examples = [TextExample(e.prompt, answer_text(tokenizer, w))
                    for e, (w, _) in zip(data.forget, AlternateDPO().forget_items(tokenizer, data.forget))]
    before = [sequence_logprob(model, tokenizer, w) - sequence_logprob(model, tokenizer, e)
              for w, e in zip(win_examples, data.forget)]
    method = AlternateDPO(beta=0.2, retain_loss="none", **dict(ONE_STEP, steps=5))
    method.unlearn(model, tokenizer, data)
    assert method.info["first_loss"] == pytest.approx(2 / 0.2 * math.log(2), rel=1e-5)
    after = [sequence_logprob(model, tokenizer, w) - sequence_logprob(model, tokenizer, e)
             for w, e in zip(win_examples, data.forget)]
    assert all(a > b + 1.0 for a, b in zip(after, before)), (before, after)


def test_alternates_pass_through_the_unlearn_api(trained):
    model, tokenizer = trained
    forget = split(alternates=True).forget
    result = mu_eval.unlearn(model, tokenizer, "dpo", forget=forget, retain_loss="none", **dict(ONE_STEP, steps=2))
    assert result.method["name"] == "dpo" and result.method["info"]["steps"] == 2


def test_rt_trains_on_a_refusal_per_forget_question(trained):
    model, tokenizer = trained
    items = RejectionTuning(seed=5).forget_items(tokenizer, FORGET)
    refusals = [answer_text(tokenizer, item) for item in items]
    assert all(text in REFUSALS for text in refusals)
    # the same seeded draw as IdkDPO's preferred answers
    assert refusals == [answer_text(tokenizer, win) for win, _ in IdkDPO(seed=5).forget_items(tokenizer, FORGET)]
    pairs = [TextExample(e.prompt, r) for e, r in zip(FORGET, refusals)]
    losses = [float(z.logsumexp(-1) - z[int(y)])
              for logits, targets in answer_tokens(model, tokenizer, pairs) for z, y in zip(logits, targets)]
    method = RejectionTuning(seed=5, **ONE_STEP)
    method.unlearn(model, tokenizer, UnlearningData(list(FORGET), []))
    assert method.info["first_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-4)


def test_rt_can_train_on_the_tasks_own_refusals(trained):
    model, tokenizer = trained
    supplied = [TextExample(e.prompt, f"I cannot say anything about that ({i}).") for i, e in enumerate(FORGET)]
    items = RejectionTuning(refusals="task").forget_items(tokenizer, supplied)
    assert [answer_text(tokenizer, item) for item in items] == [e.answer for e in supplied]
    assert not any(answer_text(tokenizer, item) in REFUSALS for item in items)


def test_rt_defaults_are_rwku_recipe():
    options = RejectionTuning().settings
    assert (options.lr, options.epochs, options.grad_accum_steps, options.retain_loss) == (4e-7, 3.0, 1, "none")


def test_dicts_carry_alternates_into_examples():
    from mu_eval.unlearning import as_examples

    (example,) = as_examples([{"question": "Q?", "answer": "right", "alternates": ["wrong", "also wrong"]}])
    assert example == TextExample("Q?", "right", ("wrong", "also wrong"))


def test_dpo_prefers_the_synthetic_tasks_perturbed_answers():
    """The task's own forget data is enough for `dpo`: each preferred answer is a perturbed answer of its
    question, never the true one."""
    from mu_eval.plugins import get_registry
    from mu_eval.task import TaskContext

    task = get_registry().task("synthetic_forget10", people=10)
    ctx = TaskContext(load=lambda spec: [], chat=lambda q: f"Q: {q}\nA: ", uses_chat_template=False)
    forget = task.unlearning_data(ctx).forget
    preferred = AlternateDPO(seed=3).preferred(forget)
    assert len(preferred) == len(forget) > 0
    for example, chosen in zip(forget, preferred):
        assert chosen.prompt == example.prompt
        assert chosen.answer in example.alternates and chosen.answer != example.answer
