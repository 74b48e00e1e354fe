"""The `mu-eval` command: run tasks on a model, or list what plugins provide.

Errors a user can fix (an unknown task, a missing model path, unreadable data) print one line and exit
with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from mu_eval.plugins.registry import DuplicateNameError, UnknownNameError

SUBCOMMANDS: dict[str, str] = {
    "list": "mu_eval.cli_list:main",
    "demo": "mu_eval.demo.cli:main",
    "convert-reference": "mu_eval.references.cli:main",
    "data": "mu_eval.cli_data:main",
    "compare": "mu_eval.cli_compare:main",
    "plot": "mu_eval.cli_compare:plot_main",
}
USAGE_ERROR = 2
BROKEN_PIPE = 141


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_int_or_auto(text: str) -> int | str:
    """A batch size: N, "auto", or lm-eval's "auto:N" (kept as written; `run` reads it as "auto")."""
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) > 0):
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'auto' or 'auto:N', got {text!r}") from None


def limit_value(text: str) -> int | float:
    """`--limit N` items of each set, or lm-eval's `--limit 0.1`: that share of each set, rounded up."""
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        fraction = float(text)
    except ValueError:
        fraction = -1.0
    if 0 < fraction < 1:
        return fraction
    if fraction >= 1 and fraction.is_integer():  # lm-eval reads every limit as a float: "10.0" is 10 items
        return int(fraction)
    raise argparse.ArgumentTypeError(f"expected a positive integer or a fraction between 0 and 1, got {text!r}")


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def task_list(text: str) -> list[str]:
    names = comma_list(text)
    if not names:
        raise argparse.ArgumentTypeError(f"names no task: {text!r} (e.g. --tasks tofu_forget01; mu-eval list tasks)")
    return names


#: torch, NumPy and Python all accept a seed in this range.
SEED_LIMIT = 2**32


def seed_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**32-1, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line naming the problem (the usage is one `--help` away), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mu-eval",
        description="Evaluate machine unlearning. Subcommands: 'mu-eval list tasks|methods|attacks|metrics|plugins', "
        "'mu-eval demo', 'mu-eval convert-reference', 'mu-eval data fetch|check', "
        "'mu-eval compare REPORT...', 'mu-eval plot REPORT... -o FILE.png'.",
    )
    parser.add_argument("--version", action="version", version=f"mu-eval {installed_version()}")
    parser.add_argument("--model",
                        help="checkpoint path or Hugging Face id; several (a comma-separated list, or a glob such as "
                        "'run/checkpoint-*'): one report each under --output-path and a summary, sweep.json "
                        "(lm-eval's '--model hf --model_args pretrained=PATH' works too)")
    parser.add_argument("--tasks", "-t", type=task_list,
                        help="comma-separated task names; wildcards (synthetic_*) expand; 'list' lists them")
    parser.add_argument("--output-path", "--output_path", "-o", help="folder (or .json path) for the report")
    parser.add_argument("--limit", type=limit_value,
                        help="use only the first N items of each set (the tasks' and those attacks draw from "
                        "tasks), or a fraction 0<f<1 of each set, rounded up")
    parser.add_argument("--subset-seed", "--subset_seed", type=seed_value,
                        help="with --limit: choose the items at random with this seed instead of the first ones (the "
                        "same items for every model run alike, so a reference run the same way keeps forget quality "
                        "and privleak defined)")
    parser.add_argument("--scoring-only", "--scoring_only", action="store_true",
                        help="generate no text: the metrics computed from generations (ROUGE-L, TOFU's model utility) "
                        "are null, every other metric is what a full run gives")
    parser.add_argument("--seed", type=seed_value, default=1234)
    parser.add_argument("--batch-size", "--batch_size", "-b", type=positive_int_or_auto, default="auto",
                        help="rows per batch, or auto (a token budget per batch; lm-eval's auto:N means the same)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--backend", help="hf (default), vlm, vllm, classifier, ...")
    parser.add_argument("--model-args", "--model_args", "-a", default="",
                        help="k=v,... e.g. dtype=bfloat16,revision=main,peft=DIR")
    parser.add_argument("--task-args", "--task_args", default="",
                        help="k=v,... for every task that has option k; name.k=v for task `name` alone")
    parser.add_argument("--num-fewshot", "--num_fewshot", "-f", type=int,
                        help="few-shot examples, for the tasks that take them (mmlu); an error for a run without one")
    parser.add_argument("--trust-remote-code", "--trust_remote_code", action="store_true",
                        help="lm-eval's flag: the same as --model-args trust_remote_code=true")
    parser.add_argument("--gen-kwargs", "--gen_kwargs", default="",
                        help="lm-eval's generation settings: max_gen_toks=N (or max_new_tokens=N) sets the "
                        "generation length of the tasks that generate; decoding is always greedy")
    parser.add_argument("--data-dir", "--data_dir", help="local dataset files (also MU_EVAL_DATA_DIR)")
    parser.add_argument("--log-samples", "--log_samples", "-s", action="store_true",
                        help="write per-task samples as JSON lines")
    parser.add_argument("--reference", action="append",
                        help="reference (retain) model's results for forget quality and privleak: a mu-eval report, "
                        "TOFU's published eval logs or an open-unlearning log; TASK=PATH for one task; repeatable")
    parser.add_argument("--attacks", type=comma_list, default=[], help="comma-separated attack names")
    parser.add_argument("--attack-args", "--attack_args", default="",
                        help="k=v,... for every attack that has option k; name.k=v for attack `name` alone")
    parser.add_argument("--method", help="unlearning method applied before evaluating")
    parser.add_argument("--method-args", "--method_args", default="", help="k=v,... for the method")
    parser.add_argument("--save-model", "--save_model", help="folder where the unlearned model is saved")
    parser.add_argument("--protocol", help="run the method step by step: sequential (one fold after another) or "
                        "growing (folds 1..k from the original model); needs --method")
    parser.add_argument("--protocol-args", "--protocol_args", default="", help="k=v,... e.g. folds=4,baseline=true")
    template = parser.add_mutually_exclusive_group()
    template.add_argument("--no-chat-template", "--no_chat_template", action="store_true",
                          help="use the plain prompt format. The model's chat template is ON by default "
                          "(lm-eval's is off): this flag gives lm-eval's default")
    template.add_argument("--apply-chat-template", "--apply_chat_template", nargs="?", const="default",
                          help="use the model's chat template (already the default; lm-eval's spelling)")
    parser.add_argument("--no-cache", "--no_cache", action="store_true", help="do not read or write the answer cache")
    parser.add_argument("--cache-dir", "--cache_dir",
                        help="answer cache folder (default ~/.cache/mu-eval or MU_EVAL_CACHE_DIR)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars and no loading messages from transformers or datasets")
    return parser


def installed_version() -> str:
    """The installed distribution's version, read without importing the package (and torch with it)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("mu-eval")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def fail(message: str) -> int:
    print(f"mu-eval: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def run(argv: Sequence[str]) -> int:
    from mu_eval.options import OptionError, parse_key_values

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tasks == ["list"]:  # lm-eval's `--tasks list`
        from mu_eval.cli_list import print_listing

        print_listing("tasks")
        return 0
    missing = [flag for flag, value in (("--model", args.model), ("--tasks", args.tasks)) if not value]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    if args.apply_chat_template not in (None, "default"):
        return fail(f"--apply_chat_template {args.apply_chat_template}: a named chat template is not supported; "
                    "the model's own template is used (the default)")
    if isinstance(args.batch_size, str) and args.batch_size.startswith("auto:"):
        print(f"mu-eval: note: --batch-size {args.batch_size} is read as auto: batches are sized by a token "
              "budget for every length, so there is nothing to re-detect", file=sys.stderr)
        args.batch_size = "auto"
    if args.backend is not None and not args.backend.strip():
        return fail("--backend is empty: name a backend (mu-eval list backends), or leave it out for hf")
    args.backend_given = args.backend is not None
    args.backend = args.backend or "hf"
    try:
        model_args = parse_key_values(args.model_args, "--model-args")
        task_args = parse_key_values(args.task_args, "--task-args")
        attack_args = parse_key_values(args.attack_args, "--attack-args")
        method_args = parse_key_values(args.method_args, "--method-args")
        protocol_args = parse_key_values(args.protocol_args, "--protocol-args")
        task_args = lm_eval_settings(args, model_args, task_args)
    except OptionError as error:
        return fail(str(error))
    if (args.protocol or protocol_args) and not args.method:
        return fail("--protocol needs --method: the protocol runs the unlearning method once per step")
    if protocol_args and not args.protocol:
        return fail("--protocol-args needs --protocol")
    problem = missing_companion(args, method_args, attack_args)
    if problem:
        return fail(problem)
    from mu_eval.cli_run import run_from_cli

    return run_from_cli(args, model_args, task_args, attack_args, method_args, protocol_args)


def lm_eval_settings(args: argparse.Namespace, model_args: dict[str, str], task_args: dict[str, str]) -> dict[str, str]:
    """lm-eval's spellings made mu-eval's: the model and backend, task wildcards, shots and generation length."""
    from mu_eval.cli_lm_eval import expand_tasks, lm_eval_task_args, translate_model
    from mu_eval.options import TRUE_WORDS, OptionError
    from mu_eval.plugins import get_registry

    translate_model(args, model_args)
    if args.trust_remote_code:
        if model_args.get("trust_remote_code", "true").strip().lower() not in TRUE_WORDS:
            raise OptionError("--trust_remote_code contradicts --model-args trust_remote_code="
                              f"{model_args['trust_remote_code']}")
        model_args["trust_remote_code"] = "true"
    registry = get_registry()
    args.tasks = expand_tasks(args.tasks, registry)
    return lm_eval_task_args(args, task_args, registry)


def missing_companion(args: argparse.Namespace, method_args: dict, attack_args: dict) -> str | None:
    """An option that only means something beside another, given without it: it would be ignored silently."""
    if not args.model.strip():
        return "--model is empty: name a checkpoint folder or a Hugging Face id"
    if method_args and not args.method:
        return "--method-args needs --method: there is no unlearning method to take them"
    if attack_args and not args.attacks:
        return "--attack-args needs --attacks: there is no attack to take them"
    if args.save_model and not args.method:
        return "--save-model needs --method: without unlearning there is no new model to save"
    if args.log_samples and not args.output_path:
        return "--log-samples needs --output-path: the samples are written beside the report"
    return None


def load_subcommand(target: str) -> Callable[[Sequence[str]], int]:
    import importlib

    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"mu-eval: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = one_line_warning
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            status = load_subcommand(SUBCOMMANDS[argv[0]])(argv[1:])
        else:
            status = run(argv)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return status
    except (UnknownNameError, DuplicateNameError) as error:
        return fail(str(error))
    except BrokenPipeError:
        return quiet_broken_pipe()


def quiet_broken_pipe() -> int:
    """`mu-eval ... | head` closed our stdout: end as other Unix tools do, silently with 128 + SIGPIPE.

    stdout is pointed at /dev/null so the interpreter's final flush does not raise again.
    """
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
