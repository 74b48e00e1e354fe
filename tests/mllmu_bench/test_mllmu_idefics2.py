"""MLLMU-Bench on a tiny Idefics2 with its real processor (`--backend vlm`): replies, batch sizing, unlearning
batches and prompt formats, each checked against the processor and the model run directly."""

from __future__ import annotations

import copy
import json

import mllmu_helpers as h
import numpy as np
import pytest
import torch

import mu_eval
from mu_eval import training
from mu_eval.backends.vision_language import VisionLanguageBackend
from mu_eval.cli import main
from mu_eval.data import DataError, load_rows
from mu_eval.inputs import InputStore
from mu_eval.plugins import get_registry
from mu_eval.requests import VisualGenerate, visual_generate_request
from mu_eval.task import ImageTextExample, TaskContext, TaskOptionError
from mu_eval.tasks.mllmu_bench import prompts

FORGET = (0, 1)  # forget_5's profiles in mllmu_helpers
STEPS = {"lr": 1e-3, "batch_size": 2, "grad_accum_steps": 1, "warmup_ratio": 0.0}


@pytest.fixture(scope="module")
def idefics2(idefics2_checkpoint):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return (AutoModelForImageTextToText.from_pretrained(idefics2_checkpoint).eval(),
            AutoProcessor.from_pretrained(idefics2_checkpoint))


def stop_ids(processor) -> list[int]:
    """EOS and the end of an Idefics2 turn: where a reply ends."""
    return [processor.tokenizer.eos_token_id, processor.tokenizer.convert_tokens_to_ids("<end_of_utterance>")]


@torch.no_grad()
def direct_reply(model, processor, prompt: str, pictures: list, max_new_tokens: int = 6) -> str:
    encoded = processor(text=prompt, images=pictures or None, return_tensors="pt", return_token_type_ids=False)
    output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids(processor))
    new = output[0, encoded["input_ids"].shape[1] :].tolist()
    ends = [i for i, token in enumerate(new) if token in stop_ids(processor)]
    return processor.tokenizer.decode(new[: ends[0]] if ends else new, skip_special_tokens=True)


def sample_pictures(sample: dict, shots: list[str]) -> list:
    """The pictures of a logged sample (not the test set's, drawn at random): few-shot profiles' first."""
    count = sample["prompt"].count("<image>")
    used = shots[:1] if sample["probe"] == "classification" else shots[:2]
    pictures = [h.picture(int(i[1:])) for i in used][: count - 1] + [h.picture(int(sample["id"][1:]))]
    return pictures[-count:] if count else []


def user(text: str, image: bool) -> dict:
    return {"role": "user", "content": ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def built(data, prompt_format: str, chat):
    """The task's plan and requests, with `chat` (the backend's chat formatter) in the context."""
    task = get_registry().task("mllmu_forget5", max_new_tokens="6", prompt_format=prompt_format)
    ctx = TaskContext(load=lambda spec: load_rows(spec, data), chat=chat, uses_chat_template=True, seed=7)
    return task, ctx, task.build_requests(ctx)


@pytest.mark.parametrize("prompt_format", ["llava", "chat"])
def test_replies_equal_the_model_run_directly(idefics2, mllmu_data, tmp_path, prompt_format):
    model, processor = idefics2
    report = mu_eval.evaluate(
        (model, processor), ["mllmu_bench"], backend="vlm", data_dir=mllmu_data, output_path=tmp_path,
        task_options={"mllmu_bench": {"max_new_tokens": "6", "prompt_format": prompt_format}}, log_samples=True,
        batch_size=5, seed=7, use_cache=False, progress=False)
    task = report.data["tasks"]["mllmu_bench"]
    assert task["metrics"]["forget_classification_multimodal_accuracy"]["n"] == 2
    assert task["metrics"]["celebrity_generation_text_rougeL"]["n"] == 2
    samples = [json.loads(line) for line in (tmp_path / "samples_mllmu_bench.jsonl").read_text().splitlines()]
    shots = task["info"]["fewshot_ids"]
    checked = [s for s in samples if s["set"] != "test"]
    for sample in checked:  # one at a time: no padding, no batching
        expected = direct_reply(model, processor, sample["prompt"], sample_pictures(sample, shots))
        assert sample["reply"] == expected, (sample["set"], sample["probe"], sample["view"], sample["id"])
    assert len(checked) == 40 and len({s["reply"] for s in checked}) > 5  # not one reply for every prompt
    assert ("User:" in samples[0]["prompt"]) == (prompt_format == "chat")


def test_vlm_backend_loads_the_checkpoint(idefics2, idefics2_checkpoint, mllmu_data, tmp_path):
    model, processor = idefics2
    argv = ["--model", str(idefics2_checkpoint), "--backend", "vlm", "--tasks", "mllmu_bench", "--data-dir",
            str(mllmu_data), "--task-args", "max_new_tokens=6", "--output-path", str(tmp_path), "--quiet",
            "--no-cache", "--log-samples", "--seed", "7", "--limit", "1"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["backend"] == "vlm" and report["model"]["answer_version"] == 2
    samples = [json.loads(line) for line in (tmp_path / "samples_mllmu_bench.jsonl").read_text().splitlines()]
    shots = report["tasks"]["mllmu_bench"]["info"]["fewshot_ids"]
    checked = [s for s in samples if s["set"] != "test"]
    for sample in checked:  # the model the command loaded (the class config.json names) answers as this one
        assert sample["reply"] == direct_reply(model, processor, sample["prompt"], sample_pictures(sample, shots))
    assert len(checked) >= 12
    assert VisionLanguageBackend.from_model(model, processor).stop_ids == tuple(stop_ids(processor))


def test_processor_model_args_reach_the_processor_and_the_cache_key(idefics2_checkpoint):
    """`processor.do_image_splitting=true` turns splitting on for a checkpoint saved without it: a picture then
    takes 4 crops + the whole (5 image sequences), batch sizing follows, and the identity says why."""
    from PIL import Image

    plain = VisionLanguageBackend.from_pretrained(str(idefics2_checkpoint), device="cpu")
    split = VisionLanguageBackend.from_pretrained(str(idefics2_checkpoint), device="cpu",
                                                  model_args={"processor.do_image_splitting": "true"})
    assert plain.tokenizer.image_processor.do_image_splitting is False
    assert split.tokenizer.image_processor.do_image_splitting is True
    assert split.identity()["processor_args"] == {"do_image_splitting": True}
    assert "processor_args" not in plain.identity()
    picture = Image.new("RGB", (32, 32), (200, 40, 90))
    store = InputStore()
    request = visual_generate_request(store, "USER: <image>\nWho is this?\nASSISTANT:", [picture], 6)
    plain.inputs = split.inputs = store
    lengths = {}
    for name, backend in (("plain", plain), ("split", split)):
        ids = backend.tokenizer(text=request.prompt, images=[picture])["input_ids"][0]
        assert backend.request_length(request) == len(ids) + 6
        lengths[name] = list(ids).count(backend.tokenizer.tokenizer.convert_tokens_to_ids("<image>"))
    assert lengths == {"plain": h.IMAGE_SEQ_LEN, "split": 5 * h.IMAGE_SEQ_LEN}


@pytest.mark.parametrize("prompt_format", ["llava", "chat"])
def test_request_length_counts_the_processors_image_tokens(idefics2, mllmu_data, prompt_format):
    model, processor = idefics2
    backend = VisionLanguageBackend.from_model(model, processor)
    _, ctx, requests = built(mllmu_data, prompt_format, backend.chat_formatter())
    backend.inputs = ctx.inputs
    with_images = [r for r in requests if isinstance(r, VisualGenerate) and r.images]
    assert with_images and any(len(r.images) == 3 for r in with_images)  # two cloze shots and the question
    for request in requests:
        pictures = [ctx.inputs.get(d) for d in request.images]
        processed = processor(text=request.prompt, images=pictures or None)["input_ids"][0]
        assert backend.request_length(request) == len(processed) + request.max_new_tokens, request.prompt
    # <fake_token_around_image>, the perceiver's 4 latents, <fake_token_around_image>
    assert backend._placeholders.positions() == h.IMAGE_SEQ_LEN + 2
    # Only the chat format puts a word right after a picture, which shows whether the processor adds a space
    # there (this processor release's choice, followed by the lengths checked above).
    assert (backend._placeholders.space_after_image is None) is (prompt_format != "chat")


def chat_pair(processor, question: str, answer: str) -> tuple[str, str]:
    """The released Idefics2 scripts' text of one pair (the chat template, stripped), cut where the reply starts."""
    prompt = processor.apply_chat_template([user(question, True)], add_generation_prompt=True)
    full = processor.apply_chat_template([user(question, True), assistant(answer)]).strip()
    assert full.startswith(prompt)
    return prompt, full[len(prompt) :]


def by_hand(processor, pictures: list, prompt: str, answer: str) -> tuple[list[int], int, dict]:
    """The processor's ids of prompt + answer with EOS appended, where the answer starts, and its image inputs."""
    full = processor(text=prompt + answer, images=pictures, return_tensors="pt")
    prompt_ids = processor(text=prompt, images=pictures)["input_ids"][0]
    ids = full["input_ids"][0].tolist() + [processor.tokenizer.eos_token_id]
    assert ids[: len(prompt_ids)] == list(prompt_ids)
    return ids, len(prompt_ids), {k: full[k] for k in ("pixel_values", "pixel_attention_mask")}


def forget_pairs(processor, train_format: str) -> list[tuple[int, str, str]]:
    pairs = [(i, p["Question"], p["Answer"]) for i in FORGET for p in h.qa_metadata(i) if p["Answer"]]
    if train_format == "chat":
        return [(i, *chat_pair(processor, q, a)) for i, q, a in pairs]
    return [(i, f"USER: <image>\n{q}\nASSISTANT:", f" {a}") for i, q, a in pairs]


def unlearning_data(model, processor, data, train_format: str):
    task = get_registry().task("mllmu_bench", train_format=train_format)
    chat = VisionLanguageBackend.from_model(model, processor).chat_formatter()
    return task.unlearning_data(TaskContext(load=lambda spec: load_rows(spec, data), chat=chat,
                                            uses_chat_template=True, seed=3))


@torch.no_grad()
def answer_nll(model, processor, examples: list[tuple[int, str, str]]) -> float:
    """Mean NLL of the answer tokens (EOS included), one example at a time, from the processor's own inputs."""
    total, count = 0.0, 0
    for profile, prompt, answer in examples:
        ids, start, images = by_hand(processor, [h.picture(profile)], prompt, answer)
        logits = model(input_ids=torch.tensor([ids]), **images).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        total -= float(logp[start - 1 :].sum())
        count += len(ids) - start
    return total / count


@pytest.mark.parametrize("train_format", ["chat", "llava"])
def test_collated_batch_labels_only_the_answer(idefics2, mllmu_data, train_format):
    model, processor = idefics2
    data = unlearning_data(model, processor, mllmu_data, train_format)
    expected = forget_pairs(processor, train_format)
    assert [(e.prompt, e.answer) for e in data.forget] == [(p, a) for _, p, a in expected]
    batch = training.collate(training.encode_examples(processor, data.forget[:3], max_length=512))
    width = batch.input_ids.shape[1]
    for row, (profile, prompt, answer) in enumerate(expected[:3]):
        ids, start, images = by_hand(processor, [h.picture(profile)], prompt, answer)
        assert batch.input_ids[row, : len(ids)].tolist() == ids
        assert batch.attention_mask[row].tolist() == [1] * len(ids) + [0] * (width - len(ids))
        assert batch.labels[row].tolist() == [-100] * start + ids[start:] + [-100] * (width - len(ids))
        labelled = batch.labels[row][batch.labels[row] != -100].tolist()
        assert labelled[-1] == processor.tokenizer.eos_token_id
        assert processor.tokenizer.decode(labelled[:-1]) == answer  # Idefics2's chat turn ends <end_of_utterance>
        assert torch.equal(batch.pixel_values[row : row + 1], images["pixel_values"])
        assert torch.equal(batch.image_inputs["pixel_attention_mask"][row : row + 1], images["pixel_attention_mask"])
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((batch.input_ids == image_id).sum()) == 3 * h.IMAGE_SEQ_LEN
    with torch.no_grad():
        loss = training.nll_loss(model, batch)
    assert float(loss) == pytest.approx(answer_nll(model, processor, expected[:3]), abs=1e-5)


def test_pictures_of_different_sizes_share_a_batch(idefics2):
    """Padded pixels and pixel masks: the loss equals the model's own loss on the processor's own batch."""
    model, processor = idefics2
    pairs = [(h.picture(1), *chat_pair(processor, "Who is this?", "Bo Lind.")),
             (h.picture(2, size=28), *chat_pair(processor, "Where was this person born?", "Lyon."))]
    batch = training.collate(training.encode_examples(processor, [ImageTextExample(p, a, (i,)) for i, p, a in pairs]))
    assert batch.pixel_values.shape[-2:] == (28, 28)
    texts = [p + a for _, p, a in pairs]
    side, processor.tokenizer.padding_side = processor.tokenizer.padding_side, "right"
    own = processor(text=texts, images=[[i] for i, _, _ in pairs], padding=True, return_tensors="pt")
    processor.tokenizer.padding_side = side
    eos = processor.tokenizer.eos_token_id
    labels = torch.full((2, batch.input_ids.shape[1]), -100)
    for row, (picture, prompt, answer) in enumerate(pairs):
        ids, start, _ = by_hand(processor, [picture], prompt, answer)
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
        assert own["input_ids"][row, : len(ids) - 1].tolist() == ids[:-1]
    input_ids = torch.cat([own["input_ids"], torch.zeros(2, 1, dtype=torch.long)], 1)
    attention = torch.cat([own["attention_mask"], torch.zeros(2, 1, dtype=torch.long)], 1)
    for row in range(2):
        end = int(attention[row].sum())
        input_ids[row, end], attention[row, end] = eos, 1
    assert torch.equal(batch.input_ids, input_ids) and torch.equal(batch.labels, labels)
    with torch.no_grad():
        ours = training.nll_loss(model, batch)
        theirs = model(input_ids=input_ids, attention_mask=attention, pixel_values=own["pixel_values"],
                       pixel_attention_mask=own["pixel_attention_mask"], labels=labels).loss
    assert float(ours) == pytest.approx(float(theirs), abs=1e-5)


def test_grad_ascent_raises_the_forget_nll(idefics2, mllmu_data, tmp_path):
    model, processor = copy.deepcopy(idefics2[0]), idefics2[1]
    forget = forget_pairs(processor, "chat")
    before = answer_nll(model, processor, forget)
    report = mu_eval.evaluate(
        (model, processor), ["mllmu_bench"], backend="vlm", method="grad_ascent",
        method_options={"steps": 4, **STEPS}, data_dir=mllmu_data, output_path=tmp_path, batch_size=8,
        task_options={"mllmu_bench": {"max_new_tokens": "4", "train_format": "chat"}}, use_cache=False,
        progress=False)
    assert report.data["method"]["info"]["steps"] == 4 and report.data["method"]["data"]["forget"] == len(forget)
    after = answer_nll(model, processor, forget)
    print(f"Idefics2 forget NLL {before:.3f} -> {after:.3f}, probability {np.exp(-before):.3g} -> {np.exp(-after):.3g}")
    assert after > before + 0.5 and not model.training


def expected_conversation(entry: dict, shots: list[str]) -> list[dict]:
    """The conversation of one chat-format prompt, written from the profile data: each solved example is a user
    turn worded as the question is and the assistant's answer; the question is the last user turn."""
    profile = h.profile(int(entry["id"][1:]))
    image = entry["view"] == "multimodal"
    kind = "Image_Textual" if image else "Pure_Text"

    def mc(question: dict) -> str:
        options = "\n".join(f"{key}: {value}" for key, value in question["Options"].items())
        return f"{question['Question']}\n{options}\nJust give ONE letter representing the answer directly."

    def cloze(item: dict) -> str:
        return (f"{item['Question'].replace('__', '[Blank]')}\n"
                "Please **ONLY** provide the correct answer that should replace the [Blank].")

    if entry["probe"] == "classification":
        pick = lambda p: p["Classification_Task"][f"{kind}_Questions"][0]  # noqa: E731
        solved = [(mc(pick(h.profile(int(s[1:])))), pick(h.profile(int(s[1:])))["Correct_Answer"]) for s in shots[:1]]
        question = mc(pick(profile))
    elif entry["probe"] == "cloze":
        pick = lambda p: next(i for i in p["Mask_Task"] if i["Type"] == kind)  # noqa: E731
        solved = [(cloze(pick(h.profile(int(s[1:])))), pick(h.profile(int(s[1:])))["Ground_Truth"]) for s in shots[:2]]
        question = cloze(pick(profile))
    else:
        solved = []
        item = next(i for i in profile["Generation_Task"] if i["Type"] == kind)
        question = (f"{item['Question']}\nAnswer the question based on your trained knowledge in one sentence "
                    "accurately in ENGLISH.")
    return [t for text, answer in solved for t in (user(text, image), assistant(answer))] + [user(question, image)]


def test_prompt_formats(idefics2, mllmu_data):
    model, processor = idefics2
    backend = VisionLanguageBackend.from_model(model, processor)
    chat, _, requests = built(mllmu_data, "chat", backend.chat_formatter())
    shots = chat.info["fewshot_ids"]
    for entry, request in zip(chat.plan, requests):
        conversation = expected_conversation(entry, shots)
        assert entry["prompt"] == processor.apply_chat_template(conversation, add_generation_prompt=True)
        assert entry["prompt"].count("<image>") == len(request.images)
    assert chat.plan[0]["prompt"].startswith("User:<image>") and chat.plan[0]["prompt"].endswith("\nAssistant:")
    assert {e["probe"] for e in chat.plan} == {"classification", "cloze", "generation"}

    # the LLaVA format does not use the template: the same text with or without it, the released script's
    llava, _, _ = built(mllmu_data, "llava", backend.chat_formatter())
    plain, _, _ = built(mllmu_data, "llava", str)
    assert [e["prompt"] for e in llava.plan] == [e["prompt"] for e in plain.plan]
    question = h.profile(0)["Classification_Task"]["Image_Textual_Questions"][0]
    shot = h.profile(int(plain.info["fewshot_ids"][0][1:]))["Classification_Task"]["Image_Textual_Questions"][0]
    assert plain.plan[0]["prompt"] == prompts.mc_prompt(question, True, [shot])
    assert plain.plan[0]["prompt"].startswith("USER: <image>\nQuestion: ")

    with pytest.raises(DataError, match="chat template"):
        built(mllmu_data, "chat", str)
    with pytest.raises(TaskOptionError, match="prompt_format='qwen': expected one of llava, chat"):
        get_registry().task("mllmu_bench", prompt_format="qwen")
