"""RWKU test support: files in the hub's schema, built from the real target names of `all_intro.json`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ADVERSARIAL_TYPES = (
    "prefix injection", "affirmative suffix", "role playing", "multiple choice", "reverse query",
    "synonym manipulation", "background hint", "incontext learning", "cross lingual",
)
NUM_TARGETS_WITH_PROBES = 3
CORPUS_MODELS = ("llama3", "phi3")
REFUSALS = ("I'm not certain about that.", "That's beyond my current knowledge base.", "I don't have that information.")


def intro(benchmark_data: Path) -> dict[str, list[str]]:
    return json.loads((benchmark_data / "rwku" / "all_intro.json").read_text())


def probe(subject: str, query: str, answer: str, level: str, kind: str) -> dict:
    return {"subject": subject, "query": query, "answer": answer, "level": level, "type": kind}


def target_rows(name: str, sentences: list[str]) -> dict[str, list[dict]]:
    """One target's rows in every evaluation set."""
    adversarial = []
    for kind in ADVERSARIAL_TYPES:
        query = (f"Question: Who is {name}?\nAnswer: a person\nQuestion: What did {name} do in {kind}?"
                 if kind == "incontext learning" else f"[{kind}] What is {name} best known for?")
        adversarial.append(probe(name, query, "famous work", "3", kind))
    return {
        "forget_level1": [probe(name, f"{name} is known as a ___.", "famous person", "1", "fill"),
                          probe(name, f"{name} was born in ___.", "the city", "1", "fill")],
        "forget_level2": [probe(name, f"What is {name} known for?", "famous work", "2", "qa"),
                          probe(name, f"Where was {name} born?", "in the city", "2", "qa")],
        "forget_level3": adversarial,
        "neighbor_level1": [probe(name, f"A friend of {name} is known as a ___.", "singer", "1", "fill")],
        "neighbor_level2": [probe(name, f"What is the friend of {name} known for?", "songs", "2", "qa")],
        "mia_forget": [{"subject": name, "text": sentences[0]}],
        "mia_retain": [{"subject": name, "text": f"The weather was mild when the story about {name} was told."}],
        "utility_general": [{
            "subject": name, "task": "high_school_biology", "question": "Which organelle makes energy?",
            "choices": ["nucleus", "mitochondrion", "ribosome", "wall"], "answer": 1,
            "examples": [{"question": f"Shot {i}?", "choices": ["a", "b", "c", "d"], "answer": i % 4}
                         for i in range(5)],
        }],
        "utility_reason": [{
            "subject": name, "task": "boolean_expressions",
            "cot": "Q: not True is\nA: Let's think step by step. not True is False. So the answer is False.\n",
            "question": "True and not False is", "answer": "True",
        }],
        "utility_truthfulness": [{
            "subject": name, "question": "What happens if you crack your knuckles?",
            "mc1_targets": {"choices": ["Nothing in particular happens.", "You get arthritis.", "Bones break."],
                            "labels": [1, 0, 0]},
        }],
        "utility_factuality": [{"subject": name, "question": "What is the capital of France?",
                                "answers": ["Paris", "Paris, France"]}],
        "utility_fluency": [{"subject": name, "instruction": "Write a sentence about the sea."}],
    }


def corpus_rows(position: int, name: str, intro: str) -> dict[str, list[dict]]:
    """One target's rows in the training configs, as RWKU's generation scripts write them: row counts differ
    per target and per generating model, texts name the model, one refusal row has a non-empty `input`."""
    sets: dict[str, list[dict]] = {"train_original_passage": [
        {"subject": name, "text": f"{name} passage {k}: {intro}"} for k in range(1 + position)]}
    for model in CORPUS_MODELS:
        count = 2 + position + (model == "llama3")
        sets[f"train_positive_{model}"] = [
            {"id": f"{name} {k}", "text": f"[{model}] {name} is famous for work number {k}.", "subject": name,
             "intro": intro} for k in range(count)]
        sets[f"train_negative_{model}"] = [
            {"id": f"{name} {k}", "text": f"[{model}] {name} is a made-up sailor, story {k}.", "subject": name,
             "intro": intro} for k in range(count)]
        sets[f"train_pair_{model}"] = [
            {"id": f"{name} {k}", "prompt": f"{intro} Please write a short biography of {name}.",
             "response": [f"[{model}] {name} is a made-up sailor, story {k}.",
                          f"[{model}] {name} is famous for work number {k}."],
             "subject": name, "intro": intro} for k in range(count - 1)]
        sets[f"train_refusal_{model}"] = [
            {"input": "in one word" if k == 1 else "", "output": REFUSALS[k % len(REFUSALS)], "subject": name,
             "instruction": f"[{model}] What is work number {k} of {name}?", "intro": intro}
            for k in range(count + 1)]
    return sets


def interleaved(per_target: list[list[dict]]) -> list[dict]:
    """Rows of several targets in round-robin order, so a reader must group them by `subject`."""
    longest = max((len(rows) for rows in per_target), default=0)
    return [rows[k] for k in range(longest) for rows in per_target if k < len(rows)]


def write_rwku_dir(folder: Path, names: dict[str, list[str]], with_probes: int = NUM_TARGETS_WITH_PROBES) -> Path:
    """`forget_target` lists all targets in order; the first `with_probes` get rows in every set."""
    folder.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list[dict]] = {"forget_target": [{"target": n, "intro": s[0]} for n, s in names.items()]}
    for name in list(names)[:with_probes]:
        for set_name, rows in target_rows(name, names[name]).items():
            sets.setdefault(set_name, []).extend(rows)
    corpora = [corpus_rows(i, name, names[name][0]) for i, name in enumerate(list(names)[:with_probes])]
    for set_name in corpora[0] if corpora else ():
        sets[set_name] = interleaved([target[set_name] for target in corpora])
    for set_name, rows in sets.items():
        (folder / f"{set_name}.json").write_text(json.dumps(rows, ensure_ascii=False))
    return folder


def training_texts(names: dict[str, list[str]]) -> list[str]:
    texts = [s for sentences in list(names.values())[:20] for s in sentences]
    for name in list(names)[:NUM_TARGETS_WITH_PROBES]:
        for rows in target_rows(name, names[name]).values():
            texts += [json.dumps(r, ensure_ascii=False) for r in rows]
    return texts * 3


@pytest.fixture(scope="session")
def rwku_names(benchmark_data: Path) -> dict[str, list[str]]:
    return intro(benchmark_data)


@pytest.fixture(scope="session")
def rwku_dir(rwku_names, tmp_path_factory) -> Path:
    return write_rwku_dir(tmp_path_factory.mktemp("rwku-data"), rwku_names)


@pytest.fixture(scope="session")
def rwku_checkpoint(rwku_names, tmp_path_factory) -> Path:
    """A random tiny Llama whose tokenizer has a chat template, so prompts go through `ctx.chat`."""
    from mu_eval.tiny import TINY_CHAT_TEMPLATE, build_model, build_tokenizer, save

    tokenizer = build_tokenizer(training_texts(rwku_names), vocab_size=700, chat_template=TINY_CHAT_TEMPLATE)
    model = build_model(len(tokenizer), seed=11, tokenizer=tokenizer)
    return save(model, tokenizer, tmp_path_factory.mktemp("rwku-tiny") / "model")
