"""Tiny-model kit: a Llama-architecture causal LM of a few million parameters and a locally trained tokenizer.

Used by the tests and the offline demo. Both are saved with `save_pretrained` and loaded back by the
harness exactly as a real checkpoint is, so the whole pipeline runs without a network.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"

#: A minimal chat template for tests that exercise template handling.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|> {{ message['content'] }}\n"
    "{% else %}<|assistant|> {{ message['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024, chat_template: str | None = None) -> Any:
    """Train a byte-level BPE tokenizer on `texts` and wrap it as a transformers fast tokenizer.

    BOS is added by the post-processor, EOS is not (the harness appends EOS explicitly), and offsets
    cover the original characters so continuations can be found by offsets.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]),
        ]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
    if chat_template:
        wrapped.chat_template = chat_template
    return wrapped


def build_model(
    vocab_size: int,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 172,
    max_position_embeddings: int = 512,
    seed: int = 0,
    tokenizer: Any = None,
) -> Any:
    """A randomly initialised LlamaForCausalLM from a small config (float32, eager-compatible)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
    )
    if tokenizer is not None:
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if tokenizer is not None:
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def save(model: Any, tokenizer: Any, directory: str | Path) -> Path:
    """Save as a regular checkpoint directory (config.json, safetensors weights, tokenizer files)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_checkpoint(
    directory: str | Path, texts: Iterable[str], seed: int = 0, vocab_size: int = 1024, **model_options: Any
) -> Path:
    """Tokenizer trained on `texts` plus a random tiny model, saved to `directory`."""
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    model = build_model(len(tokenizer), seed=seed, tokenizer=tokenizer, **model_options)
    return save(model, tokenizer, directory)
