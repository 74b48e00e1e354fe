"""Two kinds of locally trained tokenizer, for tests of which tokens a benchmark scores.

A prompt that ends in a space ("Answer: ") puts that space into the next word's token with both kinds
("ĠParis" byte-level, "▁Paris" SentencePiece-style): the reference implementations then count the merged
token as prompt. A prompt that ends without a space ("[/INST]") keeps its tokens whatever follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mu_eval.tiny import BOS, EOS, PAD, UNK, build_tokenizer

KINDS = ("byte_level", "sentencepiece")


def sentencepiece_tokenizer(texts: Iterable[str], vocab_size: int = 500, bos: bool = True) -> Any:
    """A BPE over Metaspace pieces ("▁" for spaces, as Llama-2's SentencePiece model), BOS added in front."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    texts = list(texts)
    alphabet = sorted({character for text in texts for character in text})
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS, UNK],
                                  initial_alphabet=alphabet + ["▁"], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if bos:
        bos_id = tokenizer.token_to_id(BOS)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK)


def byte_level_tokenizer(texts: Iterable[str], vocab_size: int = 600, bos: bool = True) -> Any:
    """GPT-2-style byte-level BPE (mu-eval's tiny tokenizer); without `bos` nothing is added to a text."""
    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    if not bos:
        from tokenizers import processors

        tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def make_tokenizer(kind: str, texts: Iterable[str], bos: bool = True) -> Any:
    if kind == "byte_level":
        return byte_level_tokenizer(texts, bos=bos)
    if kind == "sentencepiece":
        return sentencepiece_tokenizer(texts, bos=bos)
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def model_for(tokenizer: Any, seed: int = 0, **options: Any) -> Any:
    """A random tiny Llama over `tokenizer`'s vocabulary."""
    from mu_eval.tiny import build_model

    return build_model(len(tokenizer), seed=seed, tokenizer=tokenizer, **options)
