"""MUSE fixtures: the real MUSE-News files and a tiny model whose tokenizer was trained on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def muse_news_dir(benchmark_data: Path) -> Path:
    return benchmark_data / "muse-news"


@pytest.fixture(scope="session")
def muse_checkpoint(muse_news_dir: Path, tmp_path_factory) -> Path:
    """Random tiny Llama with a 4096-token context (privleak texts are ~2k tokens) and a BPE tokenizer
    trained on a slice of the MUSE-News texts."""
    from mu_eval.tiny import build_model, build_tokenizer, save

    texts = json.loads((muse_news_dir / "privleak" / "forget.json").read_text())[:4]
    texts += [r["prompt"] + r["gt"] for r in json.loads((muse_news_dir / "verbmem" / "forget.json").read_text())[:4]]
    for name in ("forget_qa", "forget_qa_icl", "retain2_qa", "retain2_qa_icl"):
        texts += [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in
                  json.loads((muse_news_dir / "knowmem" / f"{name}.json").read_text())]
    tokenizer = build_tokenizer(texts, vocab_size=2048)
    model = build_model(len(tokenizer), max_position_embeddings=4096, seed=3, tokenizer=tokenizer)
    return save(model, tokenizer, tmp_path_factory.mktemp("muse") / "model")


