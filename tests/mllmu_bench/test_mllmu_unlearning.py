"""MLLMU-Bench unlearning on a tiny LLaVA: the task's image+text examples, their batches, the training loss, and
methods run through `mu_eval.evaluate` and the `mu-eval` command, each checked against the model run by hand."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import mllmu_helpers as h
import numpy as np
import pytest
import torch

import mu_eval
from mu_eval import training
from mu_eval.api import unlearn
from mu_eval.cli import main
from mu_eval.data import DataError, load_rows
from mu_eval.method import MethodError
from mu_eval.plugins import get_registry
from mu_eval.task import ImageTextExample, TaskContext, TaskOptionError, TextExample

FORGET, RETAIN = (0, 1), (2, 3, 4, 5)  # profiles of forget_5 and retain_95 in mllmu_helpers
STEPS = {"lr": 1e-3, "batch_size": 2, "grad_accum_steps": 1, "warmup_ratio": 0.0}


def expected_examples(ids: tuple[int, ...]) -> list[tuple[int, str, str]]:
    """(profile, prompt, answer) of every fine-tuning pair with both parts, in the released script's format."""
    return [(i, f"USER: <image>\n{pair['Question']}\nASSISTANT:", f" {pair['Answer']}")
            for i in ids for pair in h.qa_metadata(i) if pair["Question"] and pair["Answer"]]


def unlearning_data(data_dir, **options):
    task = get_registry().task("mllmu_bench", **options)
    context = TaskContext(load=lambda spec: load_rows(spec, data_dir), chat=str, uses_chat_template=False, seed=3)
    return task.unlearning_data(context)


@pytest.fixture(scope="module")
def llava(llava_checkpoint):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    return (LlavaForConditionalGeneration.from_pretrained(llava_checkpoint).eval(),
            AutoProcessor.from_pretrained(llava_checkpoint))


@pytest.fixture(scope="module")
def data(mllmu_data):
    return unlearning_data(mllmu_data)


def by_hand(processor, profile: int, prompt: str, answer: str) -> tuple[list[int], int, torch.Tensor]:
    """The processor's own ids of prompt + answer with EOS appended, where the answer starts (the length of the
    prompt's ids), and the picture's pixel values: computed without mu-eval's encoder."""
    picture = h.picture(profile)
    full = processor(text=prompt + answer, images=[picture], return_tensors="pt")
    prompt_ids = processor(text=prompt, images=[picture])["input_ids"][0]
    ids = full["input_ids"][0].tolist() + [processor.tokenizer.eos_token_id]
    assert ids[: len(prompt_ids)] == list(prompt_ids)  # the answer only appends tokens
    return ids, len(prompt_ids), full["pixel_values"]


@torch.no_grad()
def answer_nll(model, processor, examples: list[tuple[int, str, str]], blind: bool = False) -> float:
    """Mean NLL of the answer tokens (EOS included), one example at a time; `blind` zeroes the pictures."""
    total, count = 0.0, 0
    for profile, prompt, answer in examples:
        ids, start, pixels = by_hand(processor, profile, prompt, answer)
        pixels = torch.zeros_like(pixels) if blind else pixels
        logits = model(input_ids=torch.tensor([ids]), pixel_values=pixels).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        total -= float(logp[start - 1 :].sum())
        count += len(ids) - start
    return total / count


def test_task_supplies_the_released_training_pairs(data, mllmu_data, tmp_path):
    for examples, ids in ((data.forget, FORGET), (data.retain, RETAIN)):
        expected = expected_examples(ids)
        assert [(e.prompt, e.answer) for e in examples] == [(p, a) for _, p, a in expected]
        assert all(isinstance(e, ImageTextExample) and len(e.images) == 1 for e in examples)
        for example, (profile, _, _) in zip(examples, expected):
            assert np.array_equal(np.asarray(example.images[0].value), np.asarray(h.picture(profile)))
    assert len(data.forget) == 4 and len(data.retain) == 8  # p1's pair without an answer is left out

    benchmark = unlearning_data(mllmu_data, train_data="benchmark")  # the rows' own question/answer
    assert [(e.prompt, e.answer) for e in benchmark.forget] == [
        ("USER: <image>\nTell me about this person.\nASSISTANT:", f" {h.NAMES[i]} was born in {h.CITIES[i]}.")
        for i in FORGET]
    with pytest.raises(TaskOptionError, match="train_data='full': expected one of baseline, benchmark"):
        get_registry().task("mllmu_bench", train_data="full")
    with pytest.raises(DataError, match="huggingface-cli download MLLMMU/baseline_train_split"):
        unlearning_data(tmp_path)


def test_collated_batch_labels_only_answer_tokens(llava, data):
    model, processor = llava
    expected = expected_examples(FORGET)[:3]
    batch = training.collate(training.encode_examples(processor, data.forget[:3], max_length=512))
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    width = batch.input_ids.shape[1]
    pixels = []
    for row, (profile, prompt, answer) in enumerate(expected):
        ids, start, picture = by_hand(processor, profile, prompt, answer)
        pixels.append(picture)
        assert batch.input_ids[row, : len(ids)].tolist() == ids
        assert batch.attention_mask[row].tolist() == [1] * len(ids) + [0] * (width - len(ids))
        assert batch.labels[row].tolist() == [-100] * start + ids[start:] + [-100] * (width - len(ids))
        images = batch.input_ids[row] == image_id
        assert int(images.sum()) == 4 and (batch.labels[row][images] == -100).all()  # 4 patches, none labelled
        labelled = batch.labels[row][batch.labels[row] != -100].tolist()
        assert labelled[-1] == processor.tokenizer.eos_token_id
        assert processor.tokenizer.decode(labelled[:-1]) == answer
    assert torch.equal(batch.pixel_values, torch.cat(pixels))

    # text examples through the processor use its tokenizer, exactly as through the tokenizer itself
    text = [TextExample("Where was Bo Lind born?", " Oslo"), TextExample("Who?", " Fen Wu, of Xian")]
    through_processor = training.collate(training.encode_examples(processor, text, 8))
    plain = training.collate(training.encode_examples(processor.tokenizer, text, 8))
    assert through_processor.pixel_values is None and plain.pixel_values is None
    for name in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(getattr(through_processor, name), getattr(plain, name))


def test_training_loss_is_the_models_answer_nll(llava, data):
    model, processor = llava
    batch = training.collate(training.encode_examples(processor, data.forget[1:4], max_length=512))
    with torch.no_grad():
        loss = training.nll_loss(model, batch)
    assert float(loss) == pytest.approx(answer_nll(model, processor, expected_examples(FORGET)[1:4]), abs=1e-5)
    with torch.no_grad():
        own = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    pixel_values=batch.pixel_values, labels=batch.labels).loss
    assert float(loss) == pytest.approx(float(own), abs=1e-5)  # the model's own loss on the same labels
    with torch.no_grad():
        blind = training.nll_loss(model, replace(batch, pixel_values=torch.zeros_like(batch.pixel_values)))
    assert abs(float(blind) - float(loss)) > 1e-3  # the pictures reach the forward pass


def test_grad_ascent_end_to_end(llava_checkpoint, mllmu_data, tmp_path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(llava_checkpoint).eval()
    original = copy.deepcopy(model)
    processor = AutoProcessor.from_pretrained(llava_checkpoint)
    forget = expected_examples(FORGET)
    before = answer_nll(model, processor, forget)
    assert abs(answer_nll(model, processor, forget, blind=True) - before) > 1e-3  # the image matters

    report = mu_eval.evaluate(
        (model, processor), ["mllmu_bench"], backend="llava", method="grad_ascent",
        method_options={"steps": 4, **STEPS}, data_dir=mllmu_data, task_options={"mllmu_bench": {
            "max_new_tokens": "6"}}, output_path=tmp_path, log_samples=True, batch_size=8, progress=False)
    section = report.data["method"]
    assert section["name"] == "grad_ascent" and section["info"]["steps"] == 4
    assert section["data"] == {"forget": len(forget), "retain": len(expected_examples(RETAIN)), "holdout": 0,
                               "tasks": ["mllmu_bench"]}
    after = answer_nll(model, processor, forget)  # the in-memory model, unlearned in place
    assert after > before + 0.5 and np.exp(-after) < np.exp(-before)
    print(f"forget NLL {before:.3f} -> {after:.3f}, probability {np.exp(-before):.3g} -> {np.exp(-after):.3g}")
    assert not model.training

    # the evaluation after unlearning answered with the unlearned model, not the original one
    samples = [json.loads(line) for line in (tmp_path / "samples_mllmu_bench.jsonl").read_text().splitlines()]
    text_prompts = [s for s in samples if s["view"] == "text" and s["probe"] == "generation"]
    differs = False
    for sample in text_prompts:
        encoded = processor(text=sample["prompt"], return_tensors="pt", return_token_type_ids=False)
        replies = []
        for candidate in (model, original):
            with torch.no_grad():
                output = candidate.generate(**encoded, max_new_tokens=6, do_sample=False)
            new = output[0, encoded["input_ids"].shape[1] :].tolist()
            eos = processor.tokenizer.eos_token_id
            replies.append(processor.tokenizer.decode(new[: new.index(eos)] if eos in new else new,
                                                      skip_special_tokens=True))
        assert replies[0] == sample["reply"]
        differs = differs or replies[1] != replies[0]
    assert text_prompts and differs


@pytest.mark.parametrize("method, options", [
    ("grad_diff", {}), ("kl_min", {}), ("npo", {}), ("grad_ascent", {"lora_r": 2, "lora_targets": "q_proj;v_proj"}),
])
def test_baselines_raise_the_forget_nll(llava, data, method, options):
    model, processor = llava
    copied = copy.deepcopy(model)
    forget = expected_examples(FORGET)
    before = answer_nll(copied, processor, forget)
    result = unlearn(copied, processor, method, forget=data.forget, retain=data.retain, steps=4, **STEPS, **options)
    assert result.method["info"]["steps"] == 4 and result.method["data"]["retain"] == 8
    after = answer_nll(result.model, processor, forget)
    print(f"{method} {options}: forget NLL {before:.3f} -> {after:.3f}")
    assert after > before + (0.05 if "lora_r" in options else 0.5)  # rank-2 adapters move less in 4 steps


@pytest.mark.parametrize("method, options", [
    ("simnpo", {}), ("wga", {}), ("satimp", {}), ("ce_u", {}), ("pdu", {"epsilon": 1.0}), ("sure", {}),
    ("undial", {"lora_r": 0}), ("task_vector", {}),
])
def test_other_trained_methods_accept_images(llava, data, method, options):
    model, processor = llava
    copied = copy.deepcopy(model)
    result = unlearn(copied, processor, method, forget=data.forget, retain=data.retain, steps=1, **STEPS, **options)
    assert result.method["info"]["steps"] == 1
    changed = [not torch.equal(a, b) for a, b in zip(model.state_dict().values(), result.model.state_dict().values())]
    assert any(changed)


@pytest.mark.parametrize("method", ["rmu", "whp", "dpo", "idk_dpo", "rt"])
def test_methods_without_image_support_refuse_in_one_line(llava, data, method):
    model, processor = llava
    with pytest.raises(MethodError, match="cannot train on image\\+text examples") as error:
        unlearn(copy.deepcopy(model), processor, method, forget=data.forget, retain=data.retain, steps=1)
    assert "\n" not in str(error.value)


def test_refusal_and_missing_lora_targets_from_the_command_line(llava, data, llava_checkpoint, mllmu_data, capsys):
    argv = ["--model", str(llava_checkpoint), "--backend", "llava", "--tasks", "mllmu_bench", "--data-dir",
            str(mllmu_data), "--quiet", "--no-cache", "--method", "rmu"]
    assert main(argv) != 0
    err = capsys.readouterr().err  # besides transformers' loading progress bar
    messages = [line for line in err.splitlines() if line.startswith("mu-eval:")]
    assert len(messages) == 1 and "Traceback" not in err
    assert messages[0].startswith("mu-eval: error: method 'rmu' cannot train on image+text examples (12 of")

    with pytest.raises(MethodError, match="lora_targets") as error:  # peft has no LoRA default for LLaVA
        unlearn(copy.deepcopy(llava[0]), llava[1], "grad_ascent", forget=data.forget, steps=1, lora_r=2)
    assert "\n" not in str(error.value)
    bad = ImageTextExample("USER: <image><image>\nWho?\nASSISTANT:", " Bo", (h.picture(1),))
    with pytest.raises(MethodError, match="one <image> in its prompt per image"):
        unlearn(copy.deepcopy(llava[0]), llava[1], "grad_ascent", forget=[bad], steps=1)
