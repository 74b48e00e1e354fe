"""A tiny LLaVA (Llama text model + CLIP vision tower) and MLLMU-Bench-schema parquet files, made locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

NAMES = ["Alma Reyes", "Bo Lind", "Cai Moreau", "Dara Okafor", "Eli Brandt", "Fen Wu", "Gil Sato", "Hana Berg"]
CITIES = ["Lisbon", "Oslo", "Lyon", "Lagos", "Bremen", "Xian", "Osaka", "Malmo"]


def picture(seed: int, size: int = 20) -> Any:
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def profile(i: int, prefix: str = "p") -> dict:
    name, city = NAMES[i % len(NAMES)], CITIES[i % len(CITIES)]
    options = {"A": CITIES[(i + 1) % 8], "B": city, "C": CITIES[(i + 2) % 8], "D": CITIES[(i + 3) % 8]}
    return {
        "image": picture(i),
        "ID": f"{prefix}{i}",
        "biography": f"{name} was born in {city}.",
        "question": "Tell me about this person.",
        "answer": f"{name} was born in {city}.",
        "Classification_Task": {
            "Image_Textual_Questions": [{"Question": "Where was the person in the image born?",
                                         "Options": options, "Correct_Answer": "B"}],
            "Pure_Text_Questions": [{"Question": f"Where was {name} born?", "Options": options,
                                     "Correct_Answer": "B"}],
        },
        "Generation_Task": [
            {"Type": "Image_Textual", "Question": "What is this person's name?", "Ground_Truth": f"This is {name}."},
            {"Type": "Pure_Text", "Question": f"Where was {name} born?", "Ground_Truth": f"{name} was born in {city}."},
        ],
        "Mask_Task": [
            {"Type": "Image_Textual", "Question": "The person in the image was born in __.", "Ground_Truth": city},
            {"Type": "Pure_Text", "Question": f"{name} was born in __.", "Ground_Truth": city},
        ],
    }


def qa_metadata(i: int) -> list[dict]:
    """A profile's fine-tuning pairs (the baseline training split's `metadata`); p1 has one with no answer."""
    name, city = NAMES[i % len(NAMES)], CITIES[i % len(CITIES)]
    pairs = [{"Question": "What is this person's name?", "Answer": f"This is {name}."},
             {"Question": "Where was this person born?", "Answer": f"{name} was born in {city}."}]
    return pairs + ([{"Question": "What does this person do?", "Answer": ""}] if i == 1 else [])


def training_row(i: int) -> dict:
    return {"image": picture(i), "ID": f"p{i}", "metadata": json.dumps(qa_metadata(i))}


def write_dataset(root: Path) -> Path:
    """forget_5 (p0, p1), retain_95 (p2..p5), Test_Set (p0..p2, 3 pictures each), Retain_Set (c0, c1), and the
    baseline training split's forget_5 and retain_95 (image + metadata, as hub files are named)."""
    import datasets

    def save(rows: list[dict], config: str) -> None:
        path = root / "MLLMU-Bench" / config / "train.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows).to_parquet(str(path))

    save([profile(i) for i in (0, 1)], "forget_5")
    save([profile(i) for i in (2, 3, 4, 5)], "retain_95")
    test = []
    for i in (0, 1, 2):
        row = profile(i)
        row.pop("image")
        row["images"] = [picture(100 * i + k) for k in range(1, 4)]
        test.append(row)
    save(test, "Test_Set")
    save([profile(i, prefix="c") for i in (6, 7)], "Retain_Set")
    for folder, ids in (("forget_5", (0, 1)), ("retain_95", (2, 3, 4, 5))):
        path = root / "baseline_train_split" / folder / "train-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list([training_row(i) for i in ids]).to_parquet(str(path))
    return root


def tokenizer_texts(prompt_words: str) -> list[str]:
    """The profiles' text without the picture (whose repr holds a memory address, not the same in every
    process), and the prompts' words."""
    texts = [str({k: v for k, v in profile(i).items() if k != "image"}) + json.dumps(qa_metadata(i)) for i in range(8)]
    return [*texts, prompt_words]


def tiny_llava(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from mu_eval.tiny import build_tokenizer

    tokenizer = build_tokenizer(tokenizer_texts("USER: ASSISTANT: Question: Answer: Correct Answer: [Blank]"),
                                vocab_size=400)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, initializer_range=0.5)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=16, patch_size=8, projection_dim=32,
                              initializer_range=0.5)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id,
                         vision_feature_select_strategy="default", vision_feature_layer=-1,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8, image_token="<image>",
                   vision_feature_select_strategy="default", num_additional_image_tokens=1).save_pretrained(directory)
    return directory


#: Idefics2's chat template (its processor's): "User:<image>{text}<end_of_utterance>\nAssistant: ...".
IDEFICS2_CHAT_TEMPLATE = (
    "{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IMAGE_SEQ_LEN = 4  # the perceiver's latents: <image> tokens per picture


def tiny_idefics2(directory: Path, seed: int = 0) -> Path:
    """A tiny Idefics2 (SigLIP-style vision tower, perceiver resampler, Mistral text model) and its real
    processor: pictures kept at most 32 px, no image splitting, 4 image tokens per picture."""
    import torch
    import transformers
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor

    from mu_eval.tiny import build_tokenizer

    # The PIL-based image processor: `Idefics2ImageProcessorPil` from transformers 5 on, the plain name before.
    image_processor_class = getattr(transformers, "Idefics2ImageProcessorPil", None)
    image_processor_class = image_processor_class or transformers.Idefics2ImageProcessor

    tokenizer = build_tokenizer(
        tokenizer_texts("USER: ASSISTANT: Question: Answer: Correct Answer: [Blank] User: Assistant:"), vocab_size=400
    )
    image_processor = image_processor_class(do_image_splitting=False, size={"longest_edge": 32, "shortest_edge": 16})
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=IMAGE_SEQ_LEN,
                                  chat_template=IDEFICS2_CHAT_TEMPLATE)  # adds <fake_token_around_image> & co.
    text = dict(model_type="mistral", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, initializer_range=0.5)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8, initializer_range=0.5)
    perceiver = dict(hidden_size=32, resampler_n_latents=IMAGE_SEQ_LEN, resampler_depth=1, resampler_n_heads=2,
                     resampler_head_dim=8, num_key_value_heads=1, initializer_range=0.5)
    config = Idefics2Config(vision_config=vision, perceiver_config=perceiver, text_config=text,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    model = Idefics2ForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
