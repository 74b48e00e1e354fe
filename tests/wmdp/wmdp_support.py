"""WMDP/MMLU test support: files in the hub's schema and tiny models whose tokenizers do or do not keep
" A".." D" as single tokens (fixtures re-exported by conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TOPIC_WORDS = {
    "wmdp-bio": ["virus", "protein", "cell", "gene", "toxin", "enzyme"],
    "wmdp-chem": ["acid", "solvent", "reaction", "compound"],
    "wmdp-cyber": ["packet", "exploit", "kernel", "buffer", "shell"],
}


def make_rows(words: list[str], offset: int = 0) -> list[dict]:
    """Questions in cais/wmdp's schema: question, four choices, answer index."""
    return [
        {"question": f"  Which {word} property matters most in case {i}?  ",
         "choices": [f"{word} {c}" for c in ("size", "charge", "shape", "speed")],
         "answer": (i + offset) % 4}
        for i, word in enumerate(words)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="session")
def wmdp_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wmdp-data")
    for offset, (config, words) in enumerate(TOPIC_WORDS.items()):
        write_jsonl(folder / f"{config}.jsonl", make_rows(words, offset))
    return folder


@pytest.fixture(scope="session")
def mmlu_dir(tmp_path_factory) -> Path:
    """cais/mmlu's `all` config: test and dev rows of two subjects."""
    folder = tmp_path_factory.mktemp("mmlu-data")
    test, dev = [], []
    subjects = (("high_school_biology", ["cell", "gene", "virus"]), ("computer_security", ["kernel", "shell"]))
    for subject, words in subjects:
        test += [{**row, "subject": subject} for row in make_rows(words)]
        dev += [{**row, "subject": subject} for row in make_rows([f"{w}{k}" for w in words for k in "xyz"][:5], 1)]
    write_jsonl(folder / "mmlu" / "all" / "test.jsonl", test)
    write_jsonl(folder / "mmlu" / "all" / "dev.jsonl", dev)
    for subject in ("high_school_biology", "computer_security"):
        for split, rows in (("test", test), ("dev", dev)):
            write_jsonl(folder / "mmlu" / subject / f"{split}.jsonl", [r for r in rows if r["subject"] == subject])
    return folder


def training_texts() -> list[str]:
    texts = []
    for words in TOPIC_WORDS.values():
        for row in make_rows(words):
            lines = "".join(f"\n{letter}. {choice}" for letter, choice in zip("ABCD", row["choices"]))
            texts += [f"{row['question'].strip()}{lines}\nAnswer: {'ABCD'[row['answer']]}"] * 5
    return texts + ["The following are multiple choice questions (with answers) about biology."] * 5


@pytest.fixture(scope="session")
def letter_checkpoint(tmp_path_factory) -> Path:
    """A tokenizer trained on text full of " A".." D", so each letter-with-space is one token."""
    from mu_eval.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("wmdp-tiny") / "model", training_texts(), seed=5,
                                 vocab_size=400)


@pytest.fixture(scope="session")
def split_letter_checkpoint(tmp_path_factory) -> Path:
    """A tokenizer that never saw a capital letter after a space: " A" is two tokens, Choose must fall back."""
    from mu_eval.tiny import build_tiny_checkpoint

    texts = [t.lower() for t in training_texts()]
    return build_tiny_checkpoint(tmp_path_factory.mktemp("wmdp-split") / "model", texts, seed=6, vocab_size=300)
