"""Tiny checkpoints of each MU-Bench architecture, built from configs, and data files in each dataset's schema.

Everything is made locally (random weights, tokenizers trained on the generated texts, images from numpy
arrays, sine tones, short frame stacks) and saved like the real thing, so the harness loads it through the
same `from_pretrained` / `datasets` paths it uses for real checkpoints and data.
"""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np

WORDS = ("the film was great awful boring lovely drug aspirin increases decreases effect of with left right "
         "image has two dogs birds there are three no one cat summary amanda baked cookies will bring jerry "
         "says hello tomorrow meeting at noon john asks about the party").split()


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def image(seed: int, size: int = 16) -> Any:
    from PIL import Image

    return Image.fromarray(rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def sentence(seed: int, length: int = 6) -> str:
    generator = rng(seed)
    return " ".join(WORDS[i] for i in generator.integers(0, len(WORDS), length))


def write_parquet(rows: list[dict], path: Path, features: Any = None) -> Path:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def write_index_file(indices: list[int], path: Path) -> Path:
    path.write_text("".join(f"{i}\n" for i in indices))
    return path


# -- tokenizers -------------------------------------------------------------------------------------------
def wordpiece_tokenizer(texts: list[str], vocab_size: int = 200) -> Any:
    """A BERT-style WordPiece tokenizer trained on `texts` ([CLS] a [SEP] b [SEP] template)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


# -- checkpoints ------------------------------------------------------------------------------------------
SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def vit(directory: Path, num_labels: int, seed: int = 0) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    model = ViTForImageClassification(ViTConfig(image_size=16, patch_size=8, num_labels=num_labels, **SMALL))
    model.save_pretrained(directory)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(directory)
    return directory


def bert(directory: Path, num_labels: int, texts: list[str], seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = wordpiece_tokenizer(texts)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, num_labels=num_labels,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **SMALL)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def wav2vec2(directory: Path, num_labels: int, seed: int = 0) -> Path:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    config = Wav2Vec2Config(conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_labels=num_labels,
                            classifier_proj_size=16, **SMALL)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(directory)
    return directory


def videomae(directory: Path, num_labels: int, seed: int = 0) -> Path:
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    torch.manual_seed(seed)
    config = VideoMAEConfig(image_size=16, patch_size=8, num_frames=4, tubelet_size=2, num_labels=num_labels, **SMALL)
    VideoMAEForVideoClassification(config).save_pretrained(directory)
    VideoMAEImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(directory)
    return directory


def vilt(directory: Path, texts: list[str], seed: int = 0) -> Path:
    import torch
    from transformers import ViltConfig, ViltForImagesAndTextClassification, ViltImageProcessor, ViltProcessor

    tokenizer = wordpiece_tokenizer(texts)
    torch.manual_seed(seed)
    config = ViltConfig(vocab_size=len(tokenizer), image_size=16, patch_size=8, max_image_length=-1, num_images=2,
                        num_labels=2, max_position_embeddings=64, modality_type_vocab_size=3, **SMALL)
    ViltForImagesAndTextClassification(config).save_pretrained(directory)
    image_processor = ViltImageProcessor(size={"shortest_edge": 16}, size_divisor=8, do_pad=True)
    ViltProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def t5(directory: Path, texts: list[str], seed: int = 0) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from mu_eval.tiny import build_tokenizer

    tokenizer = build_tokenizer(texts, vocab_size=300)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                      decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# -- data in each schema ----------------------------------------------------------------------------------
def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def tone(seed: int, rate: int = 16000, seconds: float = 0.1) -> np.ndarray:
    frequency = 200 + 50 * (seed % 10)
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def frames(seed: int, count: int = 6) -> list[Any]:
    return [image(seed * 100 + k) for k in range(count)]


def write_json(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def memorise(model: Any, batches: list[tuple[dict, Any]], steps: int = 80, lr: float = 3e-3) -> float:
    """Train `model` on fixed batches until it fits them; returns the final training accuracy."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        inputs, labels = batches[step % len(batches)]
        optimizer.zero_grad()
        F.cross_entropy(model(**inputs).logits, labels).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        right = sum(int((model(**inputs).logits.argmax(-1) == labels).sum()) for inputs, labels in batches)
    return right / sum(len(labels) for _, labels in batches)


# -- the tiny CIFAR-100 split shared by the image tests ------------------------------------------------
CIFAR_TRAIN, CIFAR_TEST, CIFAR_CLASSES = 24, 10, 7
#: The deletion index file of the tiny CIFAR-100 split: 10 lines (10% of MU-Bench's convention is moot here).
CIFAR_DF = [3, 17, 5, 11, 20, 0, 8, 9, 14, 22]


def cifar_rows(offset: int, count: int) -> list[dict]:
    return [{"img": image(offset + i), "fine_label": (offset + i) % CIFAR_CLASSES, "coarse_label": 0}
            for i in range(count)]


