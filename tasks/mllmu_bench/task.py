"""The MLLMU-Bench task: forget, test, retain and celebrity sets, three probes, two views, one sweep.

Sets (docs/mu-bench.md): forget = `forget_k`; test = `Test_Set` rows of the forget IDs, one of each
profile's pose-varied `images` drawn with the run's seed; retain = `retain_{100-k}`; celebrity =
`Retain_Set`. Few-shot profiles are drawn (seeded) from the retain set, as the released script does, and
left out of the retain set's multiple-choice and cloze items. Views: image+text items carry the profile's
picture, text-only items none. Accuracies and scores are fractions in [0, 1] (the paper prints %).
Unlearning methods train on image + question + answer examples (`unlearning.py`). Prompts are LLaVA's
USER/ASSISTANT text (the released evaluation script's, for both of the paper's models) or the model's own
chat template (`chat.py`).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mu_eval.data import DataError, DatasetSpec
from mu_eval.metrics.rouge import rouge_f1_all
from mu_eval.options import option
from mu_eval.requests import GenerateResult, visual_generate_request
from mu_eval.task import MetricValue, Task, TaskContext, TaskResult, UnlearningData

from . import prompts
from .chat import FORMATS, prompt_style
from .unlearning import TRAIN_SOURCES, baseline_spec, load_baseline, training_examples

HF_ID = "MLLMMU/MLLMU-Bench"
SETS = ("forget", "test", "retain", "celebrity")
VIEWS = {"Image_Textual": "multimodal", "Pure_Text": "text"}
FORGET_RATIOS = (5, 10, 15)


def spec(config: str) -> DatasetSpec:
    return DatasetSpec(HF_ID, config, "train", local_names=(config, f"mllmu/{config}"))


def nested(row: dict, name: str) -> Any:
    """A nested field, whether stored as a struct or as a JSON string."""
    value = row.get(name)
    if value is None:
        raise DataError(f"MLLMU-Bench row {row.get('ID', '?')} lacks field {name!r}")
    return json.loads(value) if isinstance(value, str) else value


def task_datasets(ratio: int) -> tuple[DatasetSpec, ...]:
    """The benchmark's configs, then the baseline training split's folders (read only to unlearn)."""
    evaluation = tuple(spec(c) for c in (f"forget_{ratio}", f"retain_{100 - ratio}", "Test_Set", "Retain_Set"))
    return evaluation + (baseline_spec(f"forget_{ratio}"), baseline_spec(f"retain_{100 - ratio}"))


@dataclass
class MllmuOptions:
    """The options of the MLLMU-Bench tasks (`--task-args`)."""

    forget: int = option(5, choices=FORGET_RATIOS, help="forget split: 5, 10 or 15 (percent of the profiles)")
    mc_shots: int = option(1, minimum=0, help="solved multiple-choice examples before each question")
    cloze_shots: int = option(2, minimum=0, help="solved cloze examples before each question")
    max_new_tokens: int = option(50, minimum=1, help="tokens generated per answer")
    train_data: str = option("baseline", choices=TRAIN_SOURCES, help="where unlearning examples come from")
    prompt_format: str = option("llava", choices=FORMATS, help="evaluation prompts: llava or chat")
    train_format: str | None = option(None, choices=FORMATS, help="the unlearning examples' text (default: "
                                                                  "prompt_format)")


class MLLMUBench(Task):
    """Options: forget (5, 10 or 15; default 5), mc_shots (1), cloze_shots (2), max_new_tokens (50),
    train_data (baseline or benchmark: where unlearning examples come from; see `unlearning.py`),
    prompt_format (llava or chat: evaluation prompts; default llava) and train_format (llava or chat: the
    unlearning examples' text; default prompt_format)."""

    name = "mllmu_bench"
    description = "MLLMU-Bench: multiple choice, cloze and generation on forget/test/retain/celebrity sets"
    datasets = task_datasets(5)

    Options: ClassVar[type | None] = MllmuOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        settings = self.settings
        self.forget = settings.forget
        self.mc_shots = settings.mc_shots
        self.cloze_shots = settings.cloze_shots
        self.max_new_tokens = settings.max_new_tokens
        self.train_data = settings.train_data
        self.prompt_format = settings.prompt_format
        self.train_format = settings.train_format or settings.prompt_format

    def unlearning_data(self, ctx: TaskContext) -> UnlearningData:
        """Forget and retain image+text examples, one per question-answer pair of each profile (all of them:
        `--limit` shortens evaluation only)."""
        forget, retain = f"forget_{self.forget}", f"retain_{100 - self.forget}"
        if self.train_data == "baseline":
            rows = load_baseline(ctx.load, forget), load_baseline(ctx.load, retain)
        else:
            rows = ctx.load(spec(forget)), ctx.load(spec(retain))
        style = prompt_style(self.train_format, ctx.chat)
        return UnlearningData(training_examples(rows[0], style), training_examples(rows[1], style))

    def load_sets(self, ctx: TaskContext) -> dict[str, list[tuple[dict, Any]]]:
        """(profile row, its picture) per set; test pictures drawn from each profile's `images` (seeded)."""
        forget = ctx.load(spec(f"forget_{self.forget}"))
        retain = ctx.load(spec(f"retain_{100 - self.forget}"))
        ids = {row["ID"] for row in forget}
        test_rows = [row for row in ctx.load(spec("Test_Set")) if row["ID"] in ids]
        rng = random.Random(ctx.seed)
        test = []
        for row in test_rows:
            pictures = row.get("images") or [row.get("image")]
            test.append((row, pictures[rng.randrange(len(pictures))]))
        return {
            "forget": [(row, row["image"]) for row in forget],
            "test": test,
            "retain": [(row, row["image"]) for row in retain],
            "celebrity": [(row, row["image"]) for row in ctx.load(spec("Retain_Set"))],
        }

    def build_requests(self, ctx: TaskContext) -> list[Any]:
        sets = self.load_sets(ctx)
        rng = random.Random(ctx.seed)
        pool = sets["retain"]
        count = max(self.mc_shots, self.cloze_shots)
        shots = rng.sample(pool, min(count, len(pool)))
        shot_ids = {row["ID"] for row, _ in shots}
        self.info = {"fewshot_ids": [row["ID"] for row, _ in shots], "forget": self.forget}
        self.style = prompt_style(self.prompt_format, ctx.chat)
        self.plan: list[dict] = []
        requests = []
        for set_name in SETS:
            for row, picture in ctx.limited(sets[set_name]):
                skip_shots = set_name == "retain" and row["ID"] in shot_ids
                for entry, request in self.profile_requests(ctx, row, picture, shots, skip_shots):
                    self.plan.append(dict(entry, set=set_name, id=row["ID"]))
                    requests.append(request)
        return requests

    def profile_requests(self, ctx: TaskContext, row: dict, picture: Any, shots: list,
                         skip_shots: bool) -> list[tuple[dict, Any]]:
        out = []
        tokens, style = self.max_new_tokens, self.style

        def request(prompt: str, pictures: list) -> Any:
            return visual_generate_request(ctx.inputs, prompt, pictures, tokens, image_token=style.image_token)

        if not skip_shots:
            classification = nested(row, "Classification_Task")
            for key, view in (("Image_Textual_Questions", "multimodal"), ("Pure_Text_Questions", "text")):
                image = view == "multimodal"
                examples = [nested(r, "Classification_Task")[key][0] for r, _ in shots[: self.mc_shots]]
                shot_pictures = [p for _, p in shots[: self.mc_shots]] if image else []
                for question in classification.get(key) or []:
                    prompt = style.mc(question, image, examples)
                    pictures = shot_pictures + [picture] if image else []
                    entry = {"probe": "classification", "view": view, "gold": question["Correct_Answer"],
                             "options": list(question["Options"]), "prompt": prompt}
                    out.append((entry, request(prompt, pictures)))
            for item in nested(row, "Mask_Task") or []:
                view = VIEWS.get(item.get("Type"), "text")
                image = view == "multimodal"
                found = [(p, self.first_of_type(nested(r, "Mask_Task"), item.get("Type")))
                         for r, p in shots[: self.cloze_shots]]
                solved = [(p, e) for p, e in found if e is not None]
                prompt = style.cloze(item, image, [e for _, e in solved])
                pictures = [p for p, _ in solved] + [picture] if image else []
                entry = {"probe": "cloze", "view": view, "gold": str(item["Ground_Truth"]), "prompt": prompt}
                out.append((entry, request(prompt, pictures)))
        for item in nested(row, "Generation_Task") or []:
            view = VIEWS.get(item.get("Type"), "text")
            prompt = style.generation(item, view == "multimodal")
            entry = {"probe": "generation", "view": view, "gold": str(item["Ground_Truth"]), "prompt": prompt}
            out.append((entry, request(prompt, [picture] if view == "multimodal" else [])))
        return out

    @staticmethod
    def first_of_type(items: list[dict], kind: str | None) -> dict | None:
        return next((i for i in items if i.get("Type") == kind), None)

    def process_results(self, results: list[GenerateResult], ctx: TaskContext) -> TaskResult:
        columns: dict[str, list[float]] = defaultdict(list)
        samples = []
        for entry, result in zip(self.plan, results):
            prefix = f"{entry['set']}_{entry['probe']}_{entry['view']}"
            reply = result.text
            if entry["probe"] == "classification":
                predicted = prompts.parse_letter(reply, entry["options"])
                columns[f"{prefix}_accuracy"].append(float(predicted == entry["gold"]))
            elif entry["probe"] == "cloze":
                columns[f"{prefix}_accuracy"].append(float(prompts.cloze_correct(entry["gold"], reply)))
            else:
                for key, value in rouge_f1_all(entry["gold"], reply.strip()).items():
                    columns[f"{prefix}_{key}"].append(value)
                columns[f"{prefix}_bleu"].append(prompts.bleu(entry["gold"], reply.strip()))
            samples.append({k: entry[k] for k in ("set", "probe", "view", "id", "gold", "prompt")} | {"reply": reply})
        metrics = {}
        for key, values in sorted(columns.items()):
            higher = not key.startswith("forget_") and not key.startswith("test_")
            variant = None
            if key.endswith(("rouge1", "rouge2", "rougeL")):
                variant = "rouge_score F1, stemmer on"
            elif key.endswith("bleu"):
                variant = "nltk sentence_bleu, whitespace tokens, smoothing method1"
            metrics[key] = MetricValue(float(np.mean(values)), len(values), higher, variant=variant)
        return TaskResult(metrics=metrics, items=dict(columns), samples=samples, info=self.info)


def forget_variant(ratio: int) -> type[MLLMUBench]:
    """`mllmu_forget<k>`: the task with its forget ratio fixed by name."""

    def __init__(self: MLLMUBench, **options: Any) -> None:
        MLLMUBench.__init__(self, **{**options, "forget": ratio})

    return type(f"MLLMUForget{ratio}", (MLLMUBench,), {
        "name": f"mllmu_forget{ratio}", "__init__": __init__,
        "description": f"MLLMU-Bench with the {ratio}% forget split",
        "datasets": task_datasets(ratio),
    })


MLLMU_TASKS = (MLLMUBench, *(forget_variant(r) for r in FORGET_RATIOS))
