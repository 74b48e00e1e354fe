"""`MuEvalCallback`: mu-eval inside a `transformers.Trainer` run.

Evaluates the model every N steps, at each epoch's end or at each checkpoint save; logs the metrics through
the Trainer's own `log` (so W&B, TensorBoard or any `report_to` receives them, under `eval/`), writes one
report per step under `<output_dir>/mu_eval/`, and with a `Selection` marks the best checkpoint
(`best.json`; at saves also the Trainer's `state.best_model_checkpoint`, which checkpoint rotation keeps).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mu_eval.in_loop import InLoopEvaluator, Selection, resolve_metric
from mu_eval.task import Task

WHEN = ("epoch", "save")


class MuEvalCallback(TrainerCallback):
    """Evaluate `tasks` during training.

    `every_n_steps` evaluates when the global step is a multiple of N; `at` ("epoch" or "save") at each
    epoch's end or right after each checkpoint is saved (the report then names the checkpoint folder).
    `select` picks the best evaluation (see `mu_eval.in_loop.Selection`). Other keywords are
    `mu_eval.evaluate`'s options, used for every evaluation: `limit`, `subset_seed`, `max_new_tokens`,
    `generate=False`, `task_options`, `reference`, `reference_model` (evaluated once), ...

    The callback logs through its Trainer: create it, pass it in `callbacks=[...]` (or `add_callback`), then
    `callback.attach(trainer)`; or call `MuEvalCallback.add_to(trainer, tasks, ...)`. Only the main process
    evaluates.
    """

    def __init__(
        self,
        tasks: Sequence[str | Task],
        *,
        every_n_steps: int | None = None,
        at: str | None = None,
        select: Selection | None = None,
        tokenizer: Any = None,
        folder: str = "mu_eval",
        **evaluate_options: Any,
    ) -> None:
        if every_n_steps is not None and (isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int)
                                          or every_n_steps < 1):
            raise ValueError(f"every_n_steps must be a positive integer or None, got {every_n_steps!r}")
        if at is not None and at not in WHEN:
            raise ValueError(f"at must be one of {', '.join(WHEN)} or None, got {at!r}")
        if every_n_steps is None and at is None:
            raise ValueError("say when to evaluate: every_n_steps=N, at='epoch' or at='save'")
        if evaluate_options.get("data_parallel"):
            raise ValueError("the callback evaluates on the main process only (the others would wait for it in "
                             "the data-parallel sweep): drop data_parallel")
        self.every_n_steps = every_n_steps
        self.at = at
        self.tokenizer = tokenizer
        self.folder = folder
        self.trainer: Any = None
        self.evaluator = InLoopEvaluator(tasks, select=select, **evaluate_options)
        self._last_step: int | None = None

    @classmethod
    def add_to(cls, trainer: Any, tasks: Sequence[str | Task], **options: Any) -> MuEvalCallback:
        """Make the callback, add it to `trainer` and attach it: the one-line form."""
        return cls(tasks, **options).attach(trainer)

    def attach(self, trainer: Any) -> MuEvalCallback:
        """Log through `trainer` (added to its callbacks if it is not there yet)."""
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        self.trainer = trainer
        return self

    @property
    def best(self) -> Any:
        """The best evaluation so far (`mu_eval.in_loop.Checkpoint`), or None."""
        return self.evaluator.best

    @property
    def history(self) -> list[Any]:
        return self.evaluator.history

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.trainer is None:
            raise ValueError("MuEvalCallback logs through its Trainer: call callback.attach(trainer) before "
                             "train(), or create it with MuEvalCallback.add_to(trainer, tasks, ...)")
        if self.at == "save" and str(getattr(args.save_strategy, "value", args.save_strategy)) == "no":
            raise ValueError("MuEvalCallback(at='save') never runs: the Trainer saves no checkpoints "
                             "(save_strategy='no'); use every_n_steps or at='epoch'")
        self.evaluator.output_dir = Path(args.output_dir) / self.folder

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.every_n_steps is not None and state.global_step % self.every_n_steps == 0:
            self._evaluate(args, state, kwargs)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.at == "epoch":
            self._evaluate(args, state, kwargs)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.at == "save":
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self._evaluate(args, state, kwargs, checkpoint)

    def _evaluate(self, args: Any, state: Any, kwargs: dict[str, Any], checkpoint: Path | None = None) -> None:
        """One evaluation at the current step (once per step, whichever events ask for it)."""
        if not state.is_world_process_zero or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        tokenizer = self.tokenizer or kwargs.get("processing_class") or kwargs.get("tokenizer")
        if tokenizer is None:
            raise ValueError("MuEvalCallback needs the tokenizer: give it to the Trainer (processing_class=) or "
                             "to the callback (tokenizer=)")
        tag = checkpoint.name if checkpoint is not None else f"epoch {state.epoch:g}" if state.epoch else None
        self.evaluator(kwargs["model"], tokenizer, step=state.global_step, tag=tag, checkpoint=checkpoint)
        latest = self.evaluator.history[-1]
        self.trainer.log(self.evaluator.logged(latest.metrics))
        selection = self.evaluator.select
        if selection is not None and self.evaluator.best is latest and checkpoint is not None:
            state.best_model_checkpoint = str(checkpoint)
            state.best_metric = latest.metrics[resolve_metric(selection.metric, latest.metrics)]
