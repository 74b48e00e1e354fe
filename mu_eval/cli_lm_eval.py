"""lm-evaluation-harness habits on the `mu-eval` command line, turned into mu-eval's own settings.

`--model hf --model_args pretrained=PATH` names the backend and the checkpoint the lm-eval way;
`--num_fewshot` and `--gen_kwargs max_gen_toks=N` become the options of the tasks that have them; task
names may hold shell-style wildcards. Each translation is strict: what has no mu-eval meaning is a one-line
error, never ignored (docs/lm-eval.md has the whole mapping).
"""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from mu_eval.options import OptionError, closest, option_names, parse_key_values
from mu_eval.plugins.registry import Registry

#: lm-eval's `--model` names and the mu-eval backend each means.
LM_EVAL_MODELS = {"hf": "hf", "hf-auto": "hf", "huggingface": "hf", "vllm": "vllm"}
#: `--gen_kwargs` keys that set the generation length, and those that only restate greedy decoding.
LENGTH_KEYS = ("max_gen_toks", "max_new_tokens")
GREEDY_VALUES = {"do_sample": ("false", "0"), "temperature": ("0", "0.0")}


def translate_model(args: argparse.Namespace, model_args: dict[str, str]) -> None:
    """`--model hf --model_args pretrained=PATH` as `--backend hf --model PATH` (in place).

    A real folder called `hf` stays a model path. Without `pretrained=` the lm-eval spelling is an error
    here, before any attempt to fetch a model called 'hf' from the hub.
    """
    name = args.model
    if name not in LM_EVAL_MODELS or Path(name).exists():
        if "pretrained" in model_args:
            raise OptionError("--model_args pretrained=... goes with lm-eval's --model hf|vllm; "
                              f"here --model already names the checkpoint ({name!r})")
        return
    if "pretrained" not in model_args:
        raise OptionError(f"--model {name} is lm-eval's spelling: give the checkpoint as --model_args pretrained="
                          f"PATH_OR_ID (or, mu-eval's way, --model PATH_OR_ID --backend {LM_EVAL_MODELS[name]})")
    backend = LM_EVAL_MODELS[name]
    if args.backend_given and args.backend != backend:
        raise OptionError(f"--model {name} means the {backend!r} backend, but --backend {args.backend} was given")
    args.model = model_args.pop("pretrained")
    args.backend = backend


def expand_tasks(patterns: list[str], registry: Registry) -> list[str]:
    """Task names with `*`, `?` and `[...]` wildcards expanded against the registered tasks, in order, once each."""
    known = registry.names("tasks")
    names: list[str] = []
    for pattern in patterns:
        if not any(char in pattern for char in "*?["):
            names.append(pattern)
            continue
        matched = fnmatch.filter(known, pattern)
        if not matched:
            guess = closest(pattern.replace("*", "").replace("?", ""), known)
            hint = f"; did you mean {guess!r}?" if guess else "; see `mu-eval list tasks`"
            raise OptionError(f"--tasks {pattern!r} matches no task{hint}")
        names.extend(matched)
    return list(dict.fromkeys(names))


def tasks_with(option: str, tasks: list[str], registry: Registry) -> list[str]:
    return [name for name in tasks if option in option_names(registry.task_options(name))]


def lm_eval_task_args(args: argparse.Namespace, task_args: dict[str, str], registry: Registry) -> dict[str, str]:
    """`task_args` with `--num_fewshot` and `--gen_kwargs`' length given to every task that has the option."""
    extra: dict[str, str] = {}
    if args.num_fewshot is not None:
        takers = tasks_with("num_fewshot", args.tasks, registry)
        if not takers:
            raise OptionError(f"--num_fewshot: no task of this run ({', '.join(args.tasks)}) takes few-shot "
                              "examples; the others are defined zero-shot by their benchmark")
        extra.update({f"{name}.num_fewshot": str(args.num_fewshot) for name in takers})
    generation = parse_key_values(args.gen_kwargs, "--gen_kwargs") if args.gen_kwargs else {}
    lengths = {key: value for key, value in generation.items() if key in LENGTH_KEYS}
    for key, value in generation.items():
        if key in LENGTH_KEYS:
            continue
        if value.strip().lower() in GREEDY_VALUES.get(key, ()):
            continue  # restates greedy decoding, which every generation here uses
        valid = [*LENGTH_KEYS, *GREEDY_VALUES]
        guess = closest(key, valid)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise OptionError(f"--gen_kwargs {key}={value}{hint}: mu-eval decodes greedily as the benchmarks define; "
                          f"only the length ({' or '.join(LENGTH_KEYS)}) can be set")
    if len(set(lengths.values())) > 1:
        raise OptionError("--gen_kwargs: max_gen_toks and max_new_tokens disagree")
    if lengths:
        takers = tasks_with("max_new_tokens", args.tasks, registry)
        if not takers:
            raise OptionError(f"--gen_kwargs: no task of this run ({', '.join(args.tasks)}) has a generation "
                              "length to set")
        extra.update({f"{name}.max_new_tokens": next(iter(lengths.values())) for name in takers})
    set_by_flags = {key.rpartition(".")[2] for key in extra}
    clash = sorted(key for key in task_args if key.rpartition(".")[2] in set_by_flags)
    if clash:
        raise OptionError(f"--task-args {clash[0]} is also set by --num_fewshot or --gen_kwargs: give it once")
    return {**task_args, **extra}
