"""The offline demo: synthetic profiles, tiny Llamas trained on a CPU, and the TOFU metrics comparing them.

A *target* model is trained on every synthetic person (the forget split included), a *reference* on the
retain split only, and a second reference with another seed. Forget quality must tell the target from the
reference (p < 0.05) and must not tell the two references apart (p > 0.1): the metric measures whether the
forget set was learned, not which seed trained the model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mu_eval.report import Report

TARGET_MAX_FQ = 0.05
REFERENCE_MIN_FQ = 0.1

#: The demo models' chat template. Its generation prompt ends with a newline, which byte-level BPE keeps as
#: a token of its own, so a prompt encoded alone for generation ends on the same token as in training
#: (a prompt ending in a space would not: the space merges into the answer's first word in training).
DEMO_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}Question: {{ message['content'] }}\n"
    "{% else %}Answer:\n{{ message['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}Answer:\n{% endif %}"
)


@dataclass
class DemoConfig:
    """Sizes measured to train three models and evaluate them in a few minutes on 2 CPU cores."""

    seed: int = 0
    people: int = 60
    split: str = "forget10"
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 344
    epochs: float = 20.0
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    progress: bool = True

    @property
    def task_name(self) -> str:
        return f"synthetic_{self.split}"

    @property
    def task_options(self) -> dict[str, Any]:
        return {"people": self.people, "data_seed": self.seed}


@dataclass
class DemoModel:
    """One trained model, its report and how long each stage took."""

    role: str
    seed: int
    examples: int
    steps: int
    final_loss: float
    train_seconds: float
    report: Report | None = None
    eval_seconds: float = 0.0


@dataclass
class DemoResult:
    config: DemoConfig
    output_path: Path
    models: dict[str, DemoModel] = field(default_factory=dict)
    seconds: float = 0.0

    def forget_quality(self, role: str) -> float | None:
        report = self.models[role].report
        return report.metric(self.config.task_name, "forget_quality") if report else None

    def checks(self) -> list[tuple[str, float | None, str, bool]]:
        """(description, value, expectation, passed) for the two separation claims of the demo."""
        target, other = self.forget_quality("target"), self.forget_quality("reference_seed2")
        return [
            ("target vs reference: forget quality", target, f"< {TARGET_MAX_FQ}",
             target is not None and target < TARGET_MAX_FQ),
            ("second reference (other seed) vs reference: forget quality", other, f"> {REFERENCE_MIN_FQ}",
             other is not None and other > REFERENCE_MIN_FQ),
        ]

    @property
    def passed(self) -> bool:
        return all(check[3] for check in self.checks())


def benchmark_texts(people: int, seed: int) -> list[str]:
    """Every string of the benchmark, prompts formatted as the demo's template does (tokenizer training)."""
    from mu_eval.tasks.synthetic_profiles.generator import build_benchmark

    texts = []
    for rows in build_benchmark(people, seed).values():
        for row in rows:
            texts.append(f"Question: {row['question']}\nAnswer:\n{row['answer']}")
            texts.extend(row.get(key, "") for key in ("paraphrased_question", "paraphrased_answer"))
            texts.extend(row.get("perturbed_answer", []))
    return [text for text in texts if text]


def prompt_formatter(model: Any, tokenizer: Any) -> Callable[[str], str]:
    """The backend's own prompt format, so training sees exactly the prompts the evaluation asks."""
    from mu_eval.evaluation import make_backend

    backend = make_backend((model, tokenizer))
    try:
        return backend.chat_formatter()
    finally:
        backend.close()


def training_data(config: DemoConfig, model: Any, tokenizer: Any) -> tuple[list, list]:
    """(full, retain) training examples from the registered task's own `unlearning_data`."""
    from mu_eval.plugins import get_registry
    from mu_eval.task import TaskContext

    task = get_registry().task(config.task_name, **config.task_options)
    context = TaskContext(load=lambda spec: [], chat=prompt_formatter(model, tokenizer), uses_chat_template=True)
    data = task.unlearning_data(context)
    return data.retain + data.forget, data.retain


def new_model(config: DemoConfig, tokenizer: Any, seed: int) -> Any:
    from mu_eval.tiny import build_model

    return build_model(
        len(tokenizer), hidden_size=config.hidden_size, num_layers=config.num_layers, num_heads=config.num_heads,
        intermediate_size=config.intermediate_size, seed=seed, tokenizer=tokenizer,
    )


def train_model(config: DemoConfig, model: Any, tokenizer: Any, examples: list, role: str, seed: int) -> DemoModel:
    """Fine-tune `model` in place for `config.epochs` passes over `examples` (answer tokens only)."""
    from mu_eval.training import TrainConfig, fine_tune

    steps = math.ceil(config.epochs * len(examples) / config.batch_size)
    train_config = TrainConfig(steps=steps, lr=config.lr, batch_size=config.batch_size, seed=seed,
                               warmup_steps=config.warmup_steps, progress=config.progress,
                               description=f"training {role}")
    started = time.time()
    losses = fine_tune(model, tokenizer, examples, train_config)
    model.eval()
    return DemoModel(role, seed, len(examples), steps, float(sum(losses[-10:]) / len(losses[-10:])),
                     time.time() - started)


def evaluate_model(config: DemoConfig, model: Any, tokenizer: Any, record: DemoModel, output: Path,
                   reference: Report | None) -> None:
    import mu_eval

    started = time.time()
    record.report = mu_eval.evaluate(
        (model, tokenizer), [config.task_name], task_options={config.task_name: config.task_options},
        reference=reference, output_path=output / record.role, log_samples=True, seed=config.seed,
        progress=config.progress, extra_config={"demo": {**asdict(config), "role": record.role,
                                                         "train_seed": record.seed, "train_steps": record.steps}},
    )
    record.eval_seconds = time.time() - started


def run_demo(output_path: str | Path, config: DemoConfig | None = None,
             log: Callable[[str], None] = print) -> DemoResult:
    """Train target, reference and second reference; evaluate the reference, then the others against it."""
    from mu_eval.tasks.synthetic_profiles.generator import write_benchmark
    from mu_eval.tiny import build_tokenizer, save

    config = config or DemoConfig()
    output = Path(output_path)
    started = time.time()
    result = DemoResult(config, output)
    write_benchmark(output / "data", config.people, config.seed)
    tokenizer = build_tokenizer(benchmark_texts(config.people, config.seed), vocab_size=config.vocab_size,
                                chat_template=DEMO_CHAT_TEMPLATE)
    plans = (("reference", config.seed + 1, "retain"), ("target", config.seed, "full"),
             ("reference_seed2", config.seed + 2, "retain"))
    full = retain = None
    for role, seed, data in plans:
        log(f"[demo] training the {role} model (seed {seed}) on the {data} set")
        model = new_model(config, tokenizer, seed)
        if full is None or retain is None:
            full, retain = training_data(config, model, tokenizer)
        record = train_model(config, model, tokenizer, full if data == "full" else retain, role, seed)
        log(f"[demo] {role}: {record.steps} steps on {record.examples} examples in {record.train_seconds:.0f}s, "
            f"final loss {record.final_loss:.3f}")
        save(model, tokenizer, output / "models" / role)
        reference = result.models["reference"].report if role != "reference" else None
        evaluate_model(config, model, tokenizer, record, output, reference)
        result.models[role] = record
    result.seconds = time.time() - started
    return result

