"""One tiny float32 checkpoint vLLM's CPU attention runs (head size 32), one vLLM engine for the whole session
(started in this process), and an hf backend of the same checkpoint to compare it with.

These tests run where vLLM is installed (CI's second environment, `constraints-vllm.txt`); elsewhere each is
skipped as not applicable.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# vLLM's engine in this process rather than in two more: the same answers, a start of about 30 s instead of
# 80 to 120 s on a loaded 2-core machine (each new process imports vLLM again)
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

HAS_VLLM = importlib.util.find_spec("vllm") is not None

#: vLLM's CPU attention supports head sizes from 32 up: hidden 128 over 4 heads.
HIDDEN, HEADS = 128, 4
VOCAB = 600
#: Model args of the session's engine: float32 as the hf backend on CPU, no compilation (a faster start), a
#: small key/value cache, and every token among the choice candidates so that vLLM answers every choice.
ENGINE_ARGS = {"dtype": "float32", "enforce_eager": "true", "kv_cache_memory_bytes": str(64 << 20),
               "choose_top_k": str(10 * VOCAB)}  # wider than the vocabulary: the backend asks for all of it
#: How much EOS is favoured, so that some generations end at EOS rather than at max_new_tokens.
EOS_BOOST = 4.0


@pytest.fixture(scope="session")
def parity_checkpoint(tmp_path_factory) -> Path:
    """A random tiny Llama with a chat template, saved like a real checkpoint."""
    import torch
    from support import TRAINING_TEXTS

    from mu_eval.tiny import TINY_CHAT_TEMPLATE, build_model, build_tokenizer, save

    tokenizer = build_tokenizer(TRAINING_TEXTS, vocab_size=VOCAB, chat_template=TINY_CHAT_TEMPLATE)
    model = build_model(len(tokenizer), hidden_size=HIDDEN, num_heads=HEADS, seed=3, tokenizer=tokenizer)
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= EOS_BOOST
    return save(model, tokenizer, tmp_path_factory.mktemp("parity") / "model")


@pytest.fixture(scope="session")
def vllm_backend(parity_checkpoint):
    if not HAS_VLLM:
        pytest.skip("not applicable here: vllm is not installed")
    from mu_eval.backends.vllm import VLLMBackend

    backend = VLLMBackend.from_pretrained(str(parity_checkpoint), ENGINE_ARGS, device="cpu")
    yield backend
    backend.shutdown()


@pytest.fixture(scope="session")
def hf_backend(parity_checkpoint):
    from mu_eval.backends.hf import HFBackend

    return HFBackend.from_pretrained(str(parity_checkpoint), {"dtype": "float32"}, device="cpu")
