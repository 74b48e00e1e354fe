"""MuEvalCallback in a real transformers.Trainer run on a tiny model: metrics logged through the Trainer under
eval/, one report per evaluated step under the output folder, the best checkpoint marked, and the training
itself unchanged by the evaluations (same final weights as a run without the callback)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from support import TRAINING_TEXTS
from transformers import TrainerCallback

import mu_eval
from mu_eval.in_loop import Selection
from mu_eval.integrations.transformers import MuEvalCallback
from mu_eval.tiny import build_model, build_tokenizer

TASK = "synthetic_forget10"
FAST = {"task_options": {TASK: {"people": 10, "mia_sets": "evaluated"}}, "limit": 4, "subset_seed": 0,
        "generate": False}
#: Lowest forget truth ratio among the checkpoints whose retain probability is not below a tenth of the
#: lowest seen: a floor that every checkpoint of this short run keeps, so the choice is by the metric alone.
SELECTION = Selection(metric="forget_truth_ratio", mode="min", floors={"retain_prob": 1e-4})


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TRAINING_TEXTS, vocab_size=600)


def model_with_dropout(tokenizer):
    """Dropout makes the training depend on torch's generator: an evaluation that reseeded it would show."""
    model = build_model(len(tokenizer), tokenizer=tokenizer, seed=3)
    model.config.attention_dropout = 0.2
    for layer in model.model.layers:
        layer.self_attn.attention_dropout = 0.2
    return model


def train(tokenizer, output_dir, callback_options=None, max_steps=6, rows=24):
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    texts = TRAINING_TEXTS[:rows]
    data = Dataset.from_dict({"text": texts}).map(lambda row: tokenizer(row["text"]), remove_columns=["text"])
    args = TrainingArguments(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=4, learning_rate=5e-3,
        logging_steps=1, save_strategy="steps", save_steps=3, report_to="none", use_cpu=True, seed=0,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = Trainer(model=model_with_dropout(tokenizer), args=args, train_dataset=data,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), processing_class=tokenizer)
    callback = MuEvalCallback.add_to(trainer, [TASK], **callback_options) if callback_options is not None else None
    trainer.add_callback(LogRecorder())
    trainer.train()
    return trainer, callback


class LogRecorder(TrainerCallback):
    """What a reporting integration (W&B, TensorBoard) sees: every `on_log` call's logs."""

    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.append((state.global_step, dict(logs or {})))


def test_trainer_run_logs_writes_reports_and_marks_the_best_checkpoint(tokenizer, tmp_path):
    trainer, callback = train(tokenizer, tmp_path / "run", {"at": "save", "select": SELECTION, **FAST})
    logged = {entry["step"]: entry for entry in trainer.state.log_history if any(k.startswith("eval/") for k in entry)}
    assert sorted(logged) == [3, 6]  # right after each save
    recorder = next(c for c in trainer.callback_handler.callbacks if isinstance(c, LogRecorder))
    received = {step: logs for step, logs in recorder.seen if f"eval/{TASK}/forget_prob" in logs}
    assert sorted(received) == [3, 6]
    assert all(received[s][k] == v for s in received for k, v in logged[s].items() if k.startswith("eval/"))
    folder = tmp_path / "run" / "mu_eval"
    for step, entry in logged.items():
        report = mu_eval.load_report(folder / f"step-{step}")
        assert report.data["config"]["step"] == step
        assert report.data["config"]["subset"]["chosen"] == "seeded random"
        metrics = report.tasks[TASK]["metrics"]
        assert entry[f"eval/{TASK}/forget_truth_ratio"] == metrics["forget_truth_ratio"]["value"]
        assert f"eval/{TASK}/model_utility" not in entry  # null in a scoring-only run: not sent to loggers
    hashes = {mu_eval.load_report(folder / f"step-{s}").data["model"]["weights_sha256"] for s in logged}
    assert len(hashes) == len(logged)  # every checkpoint is told apart

    # the best, recomputed from what the Trainer logged
    assert all(entry[f"eval/{TASK}/retain_prob"] >= 1e-4 for entry in logged.values())
    expected = min(logged, key=lambda s: (logged[s][f"eval/{TASK}/forget_truth_ratio"], s))
    best = json.loads((folder / "best.json").read_text())
    assert best["best"]["step"] == callback.best.step == expected
    assert best["evaluated_steps"] == [3, 6]
    checkpoint = tmp_path / "run" / f"checkpoint-{expected}"
    assert trainer.state.best_model_checkpoint == best["best"]["checkpoint"] == str(checkpoint)
    assert (checkpoint / "model.safetensors").is_file()
    assert math.isclose(best["best"]["value"], logged[expected][f"eval/{TASK}/forget_truth_ratio"])
    assert trainer.state.best_metric == best["best"]["value"]


def test_evaluations_do_not_change_the_training(tokenizer, tmp_path):
    """The loop's generators, modes and flags are put back after every evaluation: the weights after six
    steps with dropout are those of the same run without the callback."""
    plain, _ = train(tokenizer, tmp_path / "plain")
    evaluated, _ = train(tokenizer, tmp_path / "evaluated", {"every_n_steps": 1, **FAST})
    steps = [entry["step"] for entry in evaluated.state.log_history if f"eval/{TASK}/forget_prob" in entry]
    assert steps == [1, 2, 3, 4, 5, 6]
    for (name, a), (_, b) in zip(plain.model.named_parameters(), evaluated.model.named_parameters()):
        assert torch.equal(a, b), name
    assert evaluated.model.training == plain.model.training


def test_epoch_ends_are_evaluated(tokenizer, tmp_path):
    trainer, callback = train(tokenizer, tmp_path / "epochs", {"at": "epoch", **FAST}, max_steps=4, rows=8)
    steps = [entry["step"] for entry in trainer.state.log_history if f"eval/{TASK}/forget_prob" in entry]
    assert steps == [2, 4]  # 8 rows in batches of 4: an epoch every 2 steps
    assert [checkpoint.tag for checkpoint in callback.history] == ["epoch 1", "epoch 2"]


def test_callback_without_its_trainer_says_how_to_attach(tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to="none", use_cpu=True)
    from datasets import Dataset

    data = Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[1, 2, 3]]})
    trainer = Trainer(model=build_model(len(tokenizer), tokenizer=tokenizer), args=args, train_dataset=data,
                      callbacks=[MuEvalCallback([TASK], every_n_steps=1, **FAST)])
    with pytest.raises(ValueError, match="attach"):
        trainer.train()


def test_evaluating_at_saves_of_a_run_that_saves_nothing_is_refused(tokenizer, tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to="none", use_cpu=True, save_strategy="no")
    data = Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[1, 2, 3]]})
    trainer = Trainer(model=build_model(len(tokenizer), tokenizer=tokenizer), args=args, train_dataset=data)
    MuEvalCallback.add_to(trainer, [TASK], at="save", **FAST)
    with pytest.raises(ValueError, match="saves no checkpoints"):
        trainer.train()


@pytest.mark.parametrize(("options", "message"), [({}, "say when"), ({"every_n_steps": 0}, "every_n_steps"),
                                                  ({"at": "step"}, "at must be"), ({"at": "save", "lmit": 3}, "lmit"),
                                                  ({"at": "save", "data_parallel": True}, "main process only")])
def test_bad_callback_options_are_refused_when_made(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MuEvalCallback([TASK], **options)
