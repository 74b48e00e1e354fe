"""The Python API: `evaluate` a model on tasks (optionally after unlearning, under a protocol, with attacks),
and `unlearn` a forget set from a model."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mu_eval.backend import Backend
from mu_eval.cache_location import run_cache_dir
from mu_eval.caller_state import preserved_state
from mu_eval.evaluation import ModelInput, check_device, check_limit, check_run_paths, make_backend
from mu_eval.method import Method, MethodError
from mu_eval.options import OptionError
from mu_eval.protocol_runner import run_protocol
from mu_eval.report import Report
from mu_eval.run_options import RunOptions
from mu_eval.seeding import seed_everything
from mu_eval.single_run import run_single
from mu_eval.task import Task
from mu_eval.task_data import UnlearningData
from mu_eval.unlearning import as_examples, instantiate_method, run_method


def evaluate(
    model: ModelInput,
    tasks: Sequence[str | Task],
    *,
    tokenizer: Any = None,
    task_options: dict[str, dict] | None = None,
    attacks: Sequence[str] = (),
    attack_options: dict[str, dict] | None = None,
    method: str | None = None,
    method_options: dict[str, Any] | None = None,
    protocol: str | None = None,
    protocol_options: dict[str, Any] | None = None,
    save_model: str | os.PathLike | None = None,
    backend: str = "hf",
    model_args: dict[str, Any] | None = None,
    device: str | None = None,
    batch_size: int | str = "auto",
    limit: int | float | None = None,
    seed: int = 1234,
    data_dir: str | os.PathLike | None = None,
    reference: Any = None,
    output_path: str | os.PathLike | None = None,
    log_samples: bool = False,
    use_cache: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_chat_template: bool = True,
    progress: bool = True,
    extra_config: dict[str, Any] | None = None,
    step: int | None = None,
    tag: str | None = None,
    subset_seed: int | None = None,
    max_new_tokens: int | None = None,
    generate: bool = True,
    data_parallel: bool = False,
) -> Report:
    """Evaluate `model` on `tasks` and return the report (also written to `output_path` when given).

    The caller's state is put back afterwards: the global random generators (Python, NumPy, torch CPU and
    CUDA) continue where they were, and an in-memory model keeps each module's train/eval mode, its devices,
    dtypes and `requires_grad` flags, and its tokenizer its padding and truncation settings. docs/python-api.md
    has examples, the training-loop helpers and checkpoint selection.

    Args:
        model: a checkpoint path or hub id, an in-memory `(model, tokenizer)` pair (or the model alone with
            `tokenizer=`), or a ready `Backend`. An in-memory model is named in the report by a hash of its
            weights (`report.model.weights_sha256`), computed where the weights live.
        tasks: registered task names (`mu-eval list tasks`) or `Task` instances.
        tokenizer: the tokenizer of an in-memory model passed alone.
        task_options: options per task name, e.g. `{"tofu_forget10": {"max_new_tokens": 32}}`.
        attacks: registered attack names, run on the evaluated model after the tasks.
        attack_options: options per attack name.
        method: an unlearning method to apply before evaluating (`mu-eval list methods`).
        method_options: the method's options (steps, lr, ...).
        protocol: "sequential" or "growing": the method runs once per forget fold and the tasks are evaluated
            after every step; the report's `protocol` section holds every step, `tasks` the last one
            (docs/protocols.md).
        protocol_options: the protocol's options (folds, ...).
        save_model: a folder to save the unlearned model to (with `method`).
        backend: the backend that answers requests: "hf" (default), "vllm", ...
        model_args: the backend's options for a checkpoint it loads (dtype, revision, max_length, ...).
        device: where a loaded checkpoint goes ("cuda", "cpu", ...); an in-memory model stays where it is.
        batch_size: requests per batch, or "auto" (a token budget that halves on CUDA out-of-memory errors).
        limit: evaluate only `limit` items of each evaluation set (a float below 1: that share of each set,
            rounded up, as lm-eval's): the first ones, or a seeded random choice with `subset_seed`; the
            report's `config.subset` says so. Metrics that compare with a reference (forget quality,
            privleak) need a reference evaluated on the same items.
        seed: seeds every generator the run uses (restored afterwards), so a run repeats exactly.
        data_dir: a folder of benchmark files to read instead of the hub (`mu-eval data fetch`).
        reference: the reference (retain-model) run for forget quality and privleak: a report, its path, or
            published logs (docs/reports.md).
        output_path: a folder (or report file) to write the report to.
        log_samples: also write per-sample records beside the report.
        use_cache: reuse answers from the answer cache; default on for checkpoints loaded from a path, off
            for in-memory models (their weights change during training; turned on, entries are keyed by
            the weights' hash).
        cache_dir: where the answer cache lives (default: $MU_EVAL_CACHE_DIR, else ~/.cache/mu-eval).
        use_chat_template: format prompts with the tokenizer's chat template when it has one.
        progress: show progress bars.
        extra_config: keys added to the report's `config` as given.
        step: the training step of an in-memory checkpoint, recorded as `config.step`.
        tag: a free label for this evaluation (run name, checkpoint name), recorded as `config.tag`.
        subset_seed: with `limit`, choose the items at random with this seed (the same items for every model
            evaluated with the same seed and limit, so a reference evaluated alike keeps forget quality and
            privleak defined) instead of taking the first ones.
        max_new_tokens: a cap on the tokens generated per answer, below each task's own length (faster,
            shorter generations; recorded in `config.generation`).
        generate: False for a scoring-only run: no text is generated, and the metrics computed from generated
            text (each task's `generation_metrics`, e.g. TOFU's ROUGE-L and model utility) are null.
        data_parallel: in processes started by `accelerate launch` or `torchrun` (every one calling
            `evaluate` alike), share the requests among them and gather the answers; the main process writes
            the report and the cache (docs/scaling.md). A method trains data-parallel too; no protocol or attacks.
    """
    check_step_and_tag(step, tag)
    check_fast_settings(limit, subset_seed, max_new_tokens, generate)
    check_limit(limit)
    check_device(device)
    check_run_paths(output_path, cache_dir if use_cache is not False else None, save_model)
    options = RunOptions(
        task_options=task_options, backend=backend, model_args=model_args, device=device, batch_size=batch_size,
        limit=limit, seed=seed, data_dir=data_dir, reference=reference, output_path=output_path,
        log_samples=log_samples, use_cache=use_cache, cache_dir=cache_dir, use_chat_template=use_chat_template,
        progress=progress, extra_config=extra_config, step=step, tag=tag, subset_seed=subset_seed,
        max_new_tokens=max_new_tokens, generate=generate, data_parallel=data_parallel,
    )
    if tokenizer is not None and not isinstance(model, tuple | Backend):
        model = (model, tokenizer)
    with preserved_state(*_callers_objects(model)), run_cache_dir(cache_dir):
        if protocol is not None:
            if data_parallel:
                raise OptionError("data-parallel processes evaluate tasks only: run a protocol in one process")
            return run_protocol(model, tasks, options, protocol=protocol, protocol_options=protocol_options,
                                method=method, method_options=method_options, attacks=attacks, save_model=save_model)
        return run_single(model, tasks, options, attacks=attacks, attack_options=attack_options, method=method,
                          method_options=method_options, save_model=save_model)


def check_step_and_tag(step: int | None, tag: str | None) -> None:
    """A step must be a count and a tag a string: anything else would go into the report as given."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"step must be a non-negative integer or None, got {step!r}")
    if tag is not None and not isinstance(tag, str):
        raise ValueError(f"tag must be a string or None, got {tag!r}")


def check_fast_settings(limit: int | float | None, subset_seed: int | None, max_new_tokens: int | None,
                        generate: bool) -> None:
    """The in-loop settings, refused before any model is loaded when they would be ignored or meaningless."""
    if subset_seed is not None and (isinstance(subset_seed, bool) or not isinstance(subset_seed, int)):
        raise ValueError(f"subset_seed must be an integer or None, got {subset_seed!r}")
    if subset_seed is not None and limit is None:
        raise ValueError("subset_seed chooses `limit` items per set: give limit too")
    if max_new_tokens is not None and (isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int)
                                       or max_new_tokens < 1):
        raise ValueError(f"max_new_tokens must be a positive integer or None, got {max_new_tokens!r}")
    if not isinstance(generate, bool):
        raise ValueError(f"generate must be True or False, got {generate!r}")


def _callers_objects(model: ModelInput) -> tuple[Any, Any]:
    """The caller's torch model and tokenizer, when the caller handed them in (None for a path)."""
    if isinstance(model, tuple):
        return model
    if isinstance(model, Backend):
        return getattr(model, "torch_model", None), model.tokenizer
    return None, None


@dataclass
class UnlearningResult:
    """What `mu_eval.unlearn` returns: the unlearned model, its tokenizer and the method section."""

    model: Any
    tokenizer: Any
    method: dict[str, Any] = field(default_factory=dict)


def unlearn(
    model: Any,
    tokenizer: Any = None,
    method: str | Method | None = None,
    *,
    forget: Iterable[Any],
    retain: Iterable[Any] = (),
    holdout: Iterable[Any] = (),
    save_model: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | None = None,
    model_args: dict[str, Any] | None = None,
    **options: Any,
) -> UnlearningResult:
    """Unlearn `forget` from a model (a path or hub id, or an in-memory model with its tokenizer).

    An in-memory model is changed in place when the method allows it; its modes, devices, dtypes and
    `requires_grad` flags, the tokenizer's settings and the global random generators are put back.
    Prompts are used verbatim: format them with the model's chat template first if it has one. `options` are
    the method's own options.
    """
    if method is None:
        raise MethodError("name the unlearning method, e.g. unlearn(model, tokenizer, 'npo', forget=...)")
    check_run_paths(None, None, save_model)  # before the model loads and trains, not after
    if isinstance(model, str | os.PathLike):
        backend = make_backend(str(model), model_args=model_args, device=device)
        model, tokenizer = backend.torch_model, backend.tokenizer
    elif tokenizer is None:
        raise MethodError("an in-memory model needs its tokenizer")
    data = UnlearningData(as_examples(forget), as_examples(retain), as_examples(holdout))
    if not data.forget:
        raise MethodError("the forget set is empty")
    instance = instantiate_method(method, options, seed)
    with preserved_state(model, tokenizer):
        seed_everything(seed)
        unlearned, section = run_method(instance, model, tokenizer, data, save_model)
    return UnlearningResult(unlearned, tokenizer, section)
