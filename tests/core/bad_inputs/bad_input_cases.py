"""The bad-input corpus: each case is one thing a new user or an adversary gets wrong, run through the real
`mu-eval` command line on a tiny model. Every case must end with exit status 2, one line on stderr naming
the problem (the `expect` text), no traceback, and nothing written to the output folder.

A case starts from a run that works (`BASE`: a tiny model, TOFU-format files in a data folder, an output
folder and a cache folder), changes some of its flags (`flags`: a value replaces the flag's, None drops it),
appends `extra` arguments, and may first break a file (`setup`, given the case's `Env`). Values are
formatted with the Env's fields: {model}, {data}, {out}, {cache}, {tmp}.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Env:
    model: Path
    data: Path
    out: Path
    cache: Path
    tmp: Path


@dataclass
class Case:
    name: str
    #: what the one line must contain; `|` separates wordings of which one must appear (transformers words some
    #: load errors differently across the versions pyproject.toml allows)
    expect: str
    flags: dict[str, str | None] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    setup: Callable[[Env], None] | None = None
    #: the case writes into the model folder: it gets a private copy
    edits_model: bool = False
    #: the case relies on file permissions, which the superuser ignores
    needs_permissions: bool = False


BASE = {
    "--model": "{model}",
    "--tasks": "tofu_forget01",
    "--data-dir": "{data}",
    "--limit": "2",
    "--task-args": "max_new_tokens=4",
    "--output-path": "{out}",
    "--cache-dir": "{cache}",
    "--device": "cpu",
}


def argv(case: Case, env: Env) -> list[str]:
    flags = {**BASE, **case.flags}
    values = {key: (value.format(**vars(env)) if value is not None else None) for key, value in flags.items()}
    line = [part for key, value in values.items() if value is not None for part in (key, value)]
    return [*line, *(part.format(**vars(env)) for part in case.extra), "--quiet"]


# -- file breakers --------------------------------------------------------------------------------------------
def write(relative: str, content: str | bytes) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.tmp / relative if not relative.startswith("model/") else env.model / relative[6:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def edit_config(change: Callable[[dict], None]) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.model / "config.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return setup


def remove(*names: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        for name in names:
            target = env.model / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    return setup


def weights(env: Env) -> Path:
    return env.model / "model.safetensors"


def truncate_weights(env: Env) -> None:
    data = weights(env).read_bytes()
    weights(env).write_bytes(data[: len(data) // 2])


def garbage_weights(env: Env) -> None:
    weights(env).write_bytes(os.urandom(4096))


class Exploit:
    """A pickle that would run a shell command when loaded: `torch.load` must refuse it."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def pickle_weights(env: Env) -> None:
    weights(env).unlink()
    (env.model / "pytorch_model.bin").write_bytes(pickle.dumps(Exploit()))


def remote_code_config(data: dict) -> None:
    data["model_type"] = "custom_remote"
    data["auto_map"] = {"AutoConfig": "modeling_custom.CustomConfig",
                        "AutoModelForCausalLM": "modeling_custom.CustomModel"}


def other_architecture(data: dict) -> None:
    data.update({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 64, "n_layer": 2,
                 "n_head": 4, "n_positions": 512})


def both(*setups: Callable[[Env], None]) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        for one in setups:
            one(env)
    return setup


def make_dir(relative: str) -> Callable[[Env], None]:
    return lambda env: (env.tmp / relative).mkdir(parents=True, exist_ok=True)


def read_only(relative: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.tmp / relative
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
    return setup


def data_rows(change: Callable[[dict], None], name: str = "forget01_perturbed.json") -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.data / name
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        change(rows[0])
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return setup


def data_file(content: str | bytes, name: str = "forget01_perturbed.json") -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        (env.data / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return setup


def report_file(data: object) -> Callable[[Env], None]:
    return write("ref/report.json", json.dumps(data))


def minimal_report(tasks: dict) -> dict:
    return {"schema_version": 1, "mu_eval_version": "0", "created": "2026-01-01T00:00:00+00:00", "config": {},
            "model": {"model": "x", "revision": None, "weights_sha256": None, "dtype": "float32", "adapter": None,
                      "backend": "hf"}, "method": None, "tasks": tasks, "attacks": {}, "timings": {},
            "engine": {}, "versions": {}}


LONG = "x" * 5000
TWO_TO_THE_70 = str(2**70)

MODEL_FOLDERS = [
    Case("model-missing", "does not exist", {"--model": "{tmp}/no-such-model"}),
    Case("model-empty-folder", "config.json", {"--model": "{tmp}/empty"}, setup=make_dir("empty")),
    Case("model-is-a-file", "model", {"--model": "{tmp}/file"}, setup=write("file", "hello")),
    Case("model-config-garbage", "config.json", setup=write("model/config.json", "{not json"), edits_model=True),
    Case("model-config-empty", "config.json", setup=write("model/config.json", ""), edits_model=True),
    Case("model-config-a-list", "config.json", setup=write("model/config.json", "[1, 2]"), edits_model=True),
    Case("model-config-a-folder", "config.json",
         setup=both(remove("config.json"), lambda e: (e.model / "config.json").mkdir()), edits_model=True),
    Case("model-config-without-model-type", "model_type", setup=edit_config(lambda d: d.pop("model_type")),
         edits_model=True),
    Case("model-unknown-model-type", "no_such_arch", setup=edit_config(lambda d: d.update(model_type="no_such_arch")),
         edits_model=True),
    Case("model-truncated-safetensors", "model.safetensors", setup=truncate_weights, edits_model=True),
    Case("model-garbage-safetensors", "model.safetensors", setup=garbage_weights, edits_model=True),
    Case("model-empty-safetensors", "model.safetensors", setup=write("model/model.safetensors", b""),
         edits_model=True),
    Case("model-shape-mismatch", "mismatch|loading state_dict",
         setup=edit_config(lambda d: d.update(intermediate_size=96)), edits_model=True),
    Case("model-weights-of-another-architecture", "weights|state dictionary", setup=edit_config(other_architecture),
         edits_model=True),
    Case("model-no-weights", "no file named model.safetensors|no file named pytorch_model.bin, model.safetensors",
         setup=remove("model.safetensors"), edits_model=True),
    Case("model-no-tokenizer", "tokenizer",
         setup=remove("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"),
         edits_model=True),
    Case("model-tokenizer-garbage", "tokenizer", setup=write("model/tokenizer.json", "\x00garbage"),
         edits_model=True),
    Case("model-tokenizer-config-garbage", "tokenizer_config.json", setup=write("model/tokenizer_config.json", "{"),
         edits_model=True),
    Case("model-path-5000-characters", "too long", {"--model": "{tmp}/" + LONG}),
    Case("model-path-with-nul", "null", {"--model": "{tmp}/a\x00b"}),
    Case("model-empty-name", "--model", {"--model": ""}),
    Case("model-hub-id-offline", "no-such-model", {"--model": "nobody-here/no-such-model"}),
    Case("model-malicious-pickle", "weights only|unable to load weights", setup=pickle_weights, edits_model=True),
    Case("model-remote-code-refused", "trust_remote_code", setup=edit_config(remote_code_config), edits_model=True),
]

MODEL_ARGS = [
    Case("model-args-max-length-text", "max_length", {"--model-args": "max_length=abc"}),
    Case("model-args-max-length-negative", "max_length", {"--model-args": "max_length=-1"}),
    Case("model-args-max-length-zero", "max_length", {"--model-args": "max_length=0"}),
    Case("model-args-max-length-float", "max_length", {"--model-args": "max_length=1e3"}),
    Case("model-args-max-length-huge", "max_length", {"--model-args": "max_length=" + TWO_TO_THE_70}),
    Case("model-args-attn-bogus", "attn_implementation", {"--model-args": "attn_implementation=bogus"}),
    Case("model-args-attn-typo", "attn_implementation", {"--model-args": "attn_implementation=spda"}),
    Case("model-args-dtype-bogus", "dtype", {"--model-args": "dtype=float8"}),
    Case("model-args-unknown-key", "maxlength", {"--model-args": "maxlength=12"}),
    Case("model-args-trust-remote-code-typo", "trust_remote_code", {"--model-args": "trust_remote_code=ture"}),
    Case("model-args-revision-on-local-folder", "revision", {"--model-args": "revision=main"}),
    Case("model-args-peft-missing", "peft", {"--model-args": "peft={tmp}/no-adapter"}),
    Case("model-args-peft-a-file", "peft", {"--model-args": "peft={tmp}/adapter.txt"},
         setup=write("adapter.txt", "x")),
    Case("model-args-peft-empty-folder", "peft", {"--model-args": "peft={tmp}/adapter"}, setup=make_dir("adapter")),
    Case("model-args-generation-cache-bogus", "generation_cache", {"--model-args": "generation_cache=bogus"}),
    Case("model-args-no-equals", "key=value", {"--model-args": "dtype"}),
    Case("model-args-no-key", "key=value", {"--model-args": "=float32"}),
    Case("model-args-duplicate-key", "dtype", {"--model-args": "dtype=float32,dtype=float16"}),
]

OPTIONS = [
    Case("tasks-empty", "--tasks", {"--tasks": ""}),
    Case("tasks-only-commas", "--tasks", {"--tasks": ",,"}),
    Case("tasks-unknown", "unknown task", {"--tasks": "tofu_forget1"}),
    Case("tasks-one-unknown-among-known", "unknown task", {"--tasks": "tofu_forget01,nothing_like_it"}),
    Case("seed-2-to-the-70", "--seed", {"--seed": TWO_TO_THE_70}),
    Case("seed-text", "--seed", {"--seed": "abc"}),
    Case("seed-negative", "--seed", {"--seed": "-1"}),
    Case("seed-float", "--seed", {"--seed": "1.5"}),
    Case("device-bogus", "--device", {"--device": "bogus"}),
    Case("device-cuda-without-cuda", "cuda", {"--device": "cuda"}),
    Case("device-cuda-index-out-of-range", "cuda", {"--device": "cuda:99"}),
    Case("device-empty", "--device", {"--device": ""}),
    Case("device-cpu-with-index-text", "--device", {"--device": "cpu:x"}),
    Case("batch-size-zero", "--batch-size", extra=["--batch-size", "0"]),
    Case("batch-size-negative", "--batch-size", extra=["--batch-size", "-1"]),
    Case("batch-size-text", "--batch-size", extra=["--batch-size", "many"]),
    Case("batch-size-float", "--batch-size", extra=["--batch-size", "1.5"]),
    Case("limit-zero", "--limit", {"--limit": "0"}),
    Case("limit-text", "--limit", {"--limit": "all"}),
    Case("limit-negative", "--limit", {"--limit": "-5"}),
    Case("backend-unknown", "backend", extra=["--backend", "hff"]),
    Case("backend-empty", "backend", extra=["--backend", ""]),
    Case("method-unknown", "method", extra=["--method", "gradascent"]),
    Case("method-args-without-method", "--method-args", extra=["--method-args", "steps=1"]),
    Case("method-args-unknown-key", "stpes", extra=["--method", "grad_ascent", "--method-args", "stpes=1"]),
    Case("method-args-steps-negative", "steps", extra=["--method", "grad_ascent", "--method-args", "steps=-1"]),
    Case("method-args-lr-text", "lr", extra=["--method", "grad_ascent", "--method-args", "lr=fast"]),
    Case("method-args-lr-negative", "lr", extra=["--method", "grad_ascent", "--method-args", "lr=-1"]),
    Case("method-args-batch-size-zero", "batch_size",
         extra=["--method", "grad_ascent", "--method-args", "batch_size=0"]),
    Case("method-args-epochs-negative", "epochs", extra=["--method", "grad_ascent", "--method-args", "epochs=-2"]),
    Case("attack-args-without-attacks", "--attack-args", extra=["--attack-args", "steps=1"]),
    Case("attacks-unknown", "attack", extra=["--attacks", "relearning"]),
    Case("attack-args-unknown-key", "no_such_key", extra=["--attacks", "relearn", "--attack-args", "no_such_key=1"]),
    Case("attack-args-bad-value", "fraction", extra=["--attacks", "relearn", "--attack-args", "fraction=2"]),
    Case("protocol-without-method", "--method", extra=["--protocol", "sequential"]),
    Case("protocol-unknown", "protocol", extra=["--method", "grad_ascent", "--protocol", "sideways"]),
    Case("protocol-args-without-protocol", "--protocol", extra=["--method", "grad_ascent", "--protocol-args",
                                                                 "folds=2"]),
    Case("protocol-args-folds-zero", "folds", extra=["--method", "grad_ascent", "--protocol", "sequential",
                                                      "--protocol-args", "folds=0"]),
    Case("task-args-unknown-key", "no_such_option", {"--task-args": "no_such_option=1"}),
    Case("task-args-max-new-tokens-text", "max_new_tokens", {"--task-args": "max_new_tokens=many"}),
    Case("task-args-max-new-tokens-zero", "max_new_tokens", {"--task-args": "max_new_tokens=0"}),
    Case("task-args-task-not-in-run", "tofu_forget05", {"--task-args": "tofu_forget05.max_new_tokens=4"}),
    Case("task-args-bad-choice", "scoring", {"--task-args": "scoring=whatever"}),
    Case("unknown-flag", "--frobnicate", extra=["--frobnicate"]),
    Case("missing-model-flag", "--model", {"--model": None}),
    Case("missing-tasks-flag", "--tasks", {"--tasks": None}),
    Case("limit-without-value", "--limit", {"--limit": None}, extra=["--limit"]),
    Case("save-model-without-method", "--save-model", extra=["--save-model", "{tmp}/saved"]),
    Case("log-samples-without-output-path", "--output-path", {"--output-path": None}, extra=["--log-samples"]),
]

DATA_FILES = [
    Case("data-dir-missing", "data", {"--data-dir": "{tmp}/no-data"}),
    Case("data-dir-is-a-file", "data", {"--data-dir": "{tmp}/data.txt"}, setup=write("data.txt", "x")),
    Case("data-file-garbage", "forget01_perturbed", setup=data_file("{{{ not json")),
    Case("data-file-empty", "forget set is empty", setup=data_file("")),
    Case("data-file-invalid-utf8", "forget01_perturbed", setup=data_file(b"\xff\xfe\x00garbage\n")),
    Case("data-file-a-folder", "forget01_perturbed",
         setup=lambda env: ((env.data / "forget01_perturbed.json").unlink(),
                            (env.data / "forget01_perturbed.json").mkdir())),
    Case("data-file-missing", "forget01", setup=lambda env: (env.data / "forget01_perturbed.json").unlink()),
    Case("data-row-without-answer", "answer", setup=data_rows(lambda row: row.pop("answer"))),
    Case("data-row-without-question", "question", setup=data_rows(lambda row: row.pop("question"))),
    Case("data-perturbed-answer-a-number", "perturbed_answer",
         setup=data_rows(lambda row: row.update(perturbed_answer=7))),
    Case("data-perturbed-answer-list-of-numbers", "perturbed_answer",
         setup=data_rows(lambda row: row.update(perturbed_answer=[1, 2]))),
    Case("data-perturbed-answer-empty-list", "perturbed_answer",
         setup=data_rows(lambda row: row.update(perturbed_answer=[]))),
    Case("data-paraphrased-answer-a-list", "paraphrased_answer",
         setup=data_rows(lambda row: row.update(paraphrased_answer=["a", "b"]))),
    Case("data-question-a-list", "question", setup=data_rows(lambda row: row.update(question=["a"]))),
    Case("data-answer-null", "answer", setup=data_rows(lambda row: row.update(answer=None))),
    Case("data-row-not-an-object", "forget01_perturbed", setup=data_file("[1, 2, 3]\n")),
    Case("data-retain-file-garbage", "retain_perturbed", setup=data_file("nope", "retain_perturbed.json")),
]

REFERENCES = [
    Case("reference-missing", "reference", extra=["--reference", "{tmp}/no-report.json"]),
    Case("reference-garbage", "reference", extra=["--reference", "{tmp}/ref/report.json"],
         setup=write("ref/report.json", "{{{")),
    Case("reference-empty-file", "reference", extra=["--reference", "{tmp}/ref/report.json"],
         setup=write("ref/report.json", "")),
    Case("reference-not-a-report", "reference", extra=["--reference", "{tmp}/ref/report.json"],
         setup=report_file({"hello": "world"})),
    Case("reference-a-list", "reference", extra=["--reference", "{tmp}/ref/report.json"], setup=report_file([1, 2])),
    Case("reference-folder-without-report", "report", extra=["--reference", "{tmp}/ref"], setup=make_dir("ref")),
    Case("reference-items-wrong-type", "items", extra=["--reference", "{tmp}/ref/report.json"],
         setup=report_file(minimal_report({"tofu_forget01": {"metrics": {}, "items": {"truth_ratio": "abc"}}}))),
    Case("reference-items-not-numbers", "items", extra=["--reference", "{tmp}/ref/report.json"],
         setup=report_file(minimal_report({"tofu_forget01": {"metrics": {}, "items": {"truth_ratio": [{"a": 1}]}}}))),
    Case("reference-tasks-a-list", "tasks", extra=["--reference", "{tmp}/ref/report.json"],
         setup=report_file(minimal_report([]))),  # type: ignore[arg-type]
    Case("reference-for-unknown-task", "tofu_forget5", extra=["--reference", "tofu_forget5={tmp}/ref/report.json"],
         setup=report_file(minimal_report({}))),
    Case("reference-empty-task-name", "reference", extra=["--reference", "={tmp}/ref/report.json"],
         setup=report_file(minimal_report({}))),
    Case("reference-invalid-utf8", "reference", extra=["--reference", "{tmp}/ref/report.json"],
         setup=write("ref/report.json", b"\xff\xfe\xfa")),
]

PATHS = [
    Case("output-path-is-a-file", "output", {"--output-path": "{tmp}/taken"}, setup=write("taken", "x")),
    Case("output-path-under-a-file", "output", {"--output-path": "{tmp}/taken/out"}, setup=write("taken", "x")),
    Case("output-json-under-a-file", "output", {"--output-path": "{tmp}/taken/report.json"},
         setup=write("taken", "x")),
    Case("output-path-under-proc", "output", {"--output-path": "/proc/mu-eval-out"}),
    Case("output-path-under-sys", "output", {"--output-path": "/sys/kernel/mu-eval-out"}),
    Case("output-path-read-only", "output", {"--output-path": "{tmp}/ro/out"}, setup=read_only("ro"),
         needs_permissions=True),
    Case("output-path-read-only-itself", "output", {"--output-path": "{tmp}/ro"}, setup=read_only("ro"),
         needs_permissions=True),
    Case("output-path-5000-characters", "output", {"--output-path": "{tmp}/" + LONG}),
    Case("output-path-with-nul", "output", {"--output-path": "{tmp}/a\x00b"}),
    Case("output-report-is-a-folder", "output", {"--output-path": "{tmp}/o/report.json"},
         setup=make_dir("o/report.json/inner")),
    # the model folder is broken too: the path error must win, which shows the check runs before any loading
    Case("output-path-checked-before-the-model-loads", "output folder /sys/kernel/mu-eval-out",
         {"--output-path": "/sys/kernel/mu-eval-out"}, setup=garbage_weights, edits_model=True),
    Case("output-read-only-checked-before-the-model-loads", "output", {"--output-path": "{tmp}/ro/out"},
         setup=both(read_only("ro"), garbage_weights), edits_model=True, needs_permissions=True),
    Case("cache-dir-is-a-file", "cache", {"--cache-dir": "{tmp}/cachefile"}, setup=write("cachefile", "x")),
    Case("cache-dir-under-a-file", "cache", {"--cache-dir": "{tmp}/cachefile/sub"}, setup=write("cachefile", "x")),
    Case("cache-dir-under-proc", "cache", {"--cache-dir": "/proc/mu-eval-cache"}),
    Case("cache-dir-under-sys", "cache", {"--cache-dir": "/sys/kernel/mu-eval-cache"}),
    Case("cache-dir-read-only", "cache", {"--cache-dir": "{tmp}/ro"}, setup=read_only("ro"), needs_permissions=True),
    Case("cache-dir-5000-characters", "cache", {"--cache-dir": "{tmp}/" + LONG}),
    Case("save-model-is-a-file", "save", extra=["--method", "grad_ascent", "--save-model", "{tmp}/taken"],
         setup=write("taken", "x")),
    Case("save-model-under-proc", "save", extra=["--method", "grad_ascent", "--save-model", "/proc/mu-eval-model"]),
    Case("save-model-read-only", "save", extra=["--method", "grad_ascent", "--save-model", "{tmp}/ro/model"],
         setup=read_only("ro"), needs_permissions=True),
    Case("save-model-5000-characters", "save", extra=["--method", "grad_ascent", "--save-model", "{tmp}/" + LONG]),
]

CASES: list[Case] = [*MODEL_FOLDERS, *MODEL_ARGS, *OPTIONS, *DATA_FILES, *REFERENCES, *PATHS]
