"""Text, relation extraction, audio, image-pair and video MU-Bench tasks end to end, each checked against the
model run directly through its own processor."""

from __future__ import annotations

import json
import wave
from io import BytesIO

import mubench_helpers as h
import numpy as np
import pytest
import torch

from mu_eval.cli import main


def run(task: str, model, root, *extra: str, df: list[int], task_args: str = "") -> dict:
    df_file = h.write_index_file(df, root / f"{task}.txt")
    out = root / f"out-{task}-{len(extra)}"
    args = f"df_file={df_file},ratio=10,kg_draws=20" + (f",{task_args}" if task_args else "")
    argv = ["--model", str(model), "--backend", "classifier", "--tasks", task, "--data-dir", str(root / "data"),
            "--task-args", args, "--output-path", str(out), "--quiet", "--no-cache", *extra]
    assert main(argv) == 0
    return json.loads((out / "report.json").read_text())["tasks"][task]


def check_against(task: dict, logits_by_set: dict[str, np.ndarray], labels_by_set: dict[str, list[int]]) -> None:
    for name, logits in logits_by_set.items():
        probs = torch.softmax(torch.tensor(logits, dtype=torch.float64), -1).numpy()
        labels = np.array(labels_by_set[name])
        assert task["metrics"][f"{name}_accuracy"]["value"] == pytest.approx((probs.argmax(1) == labels).mean())
        assert task["items"][f"{name}_confidence"] == pytest.approx(probs[np.arange(len(labels)), labels], abs=1e-5)


def split(rows, df):
    return {"forget": [rows[i] for i in df], "retain": [r for i, r in enumerate(rows) if i not in df]}


def test_imdb_text_and_batch_size_invariance(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = [h.sentence(i, 3 + i % 7) for i in range(16)]
    rows = [{"text": t, "label": i % 2} for i, t in enumerate(texts)]
    h.write_parquet(rows[:10], tmp_path / "data" / "imdb" / "train.parquet")
    h.write_parquet(rows[10:], tmp_path / "data" / "imdb" / "test.parquet")
    model_dir = h.bert(tmp_path / "bert", 2, texts)
    ood = [{"text": h.sentence(200 + i), "label": i % 2} for i in range(6)]
    for number, name in enumerate(("train", "validation", "test")):
        h.write_parquet(ood[2 * number : 2 * number + 2], tmp_path / "data" / "rotten_tomatoes" / f"{name}.parquet")
    df = [4, 1, 7]
    one = run("mubench_imdb", model_dir, tmp_path, "--batch-size", "1", df=df)
    five = run("mubench_imdb", model_dir, tmp_path, "--batch-size", "5", "--device", "cpu", df=df, task_args="ood=true")
    assert "ood_accuracy" not in one["metrics"] and five["metrics"]["ood_accuracy"]["n"] == 6
    for key in ("test_confidence", "forget_confidence", "retain_confidence"):
        assert one["items"][key] == pytest.approx(five["items"][key], abs=1e-5)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sets = {"test": rows[10:], **split(rows[:10], df), "ood": ood}
    logits = {}
    for name, chosen in sets.items():
        with torch.no_grad():  # one text at a time: no padding at all
            logits[name] = np.stack([model(**tokenizer(r["text"], return_tensors="pt")).logits[0].numpy()
                                     for r in chosen])
    check_against(five, logits, {n: [r["label"] for r in c] for n, c in sets.items()})


def test_ddi_string_labels_map_to_five_classes(tmp_path):
    names = ["DDI-false", "DDI-mechanism", "DDI-advise", "DDI-effect", "DDI-int"]
    texts = [h.sentence(50 + i) for i in range(12)]
    rows = [{"text": t, "label": names[i % 5]} for i, t in enumerate(texts)]
    for split_name, chosen in (("train", rows[:8]), ("test", rows[8:])):
        path = tmp_path / "data" / "ddi" / f"{split_name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    model_dir = h.bert(tmp_path / "bert", 5, texts)
    task = run("mubench_ddi", model_dir, tmp_path, df=[2, 5])
    assert task["items"]["forget_label"] == [2, 0] and task["items"]["test_label"] == [3, 4, 0, 1]
    assert task["info"]["num_classes"] == 5 and task["metrics"]["selection_df_term"]["variant"].endswith("0.2")
    tsv = tmp_path / "tsv"  # MU-Bench's raw files: no header; an unused first column, the text, the label
    tsv.mkdir()
    for split_name, chosen in (("train", rows[:8]), ("test", rows[8:])):
        lines = [f"{i}\t{r['text']}\t{r['label']}\n" for i, r in enumerate(chosen)]
        (tsv / f"{split_name}.tsv").write_text("".join(lines))
    from_tsv = run("mubench_ddi", model_dir, tmp_path, "--seed", "1", df=[2, 5], task_args=f"tsv_dir={tsv}")
    assert from_tsv["items"] == task["items"]


def test_speech_commands_audio_arrays_and_wav_bytes(tmp_path):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    train = [{"audio": {"array": h.tone(i).tolist(), "sampling_rate": 16000}, "label": i % 12} for i in range(8)]
    test = [{"audio": {"bytes": h.wav_bytes(h.tone(20 + i, rate=8000), 8000), "path": f"{i}.wav"}, "label": i}
            for i in range(4)]
    h.write_parquet(train, tmp_path / "data" / "superb" / "ks" / "train.parquet")
    h.write_parquet(test, tmp_path / "data" / "superb" / "ks" / "test.parquet")
    model_dir = h.wav2vec2(tmp_path / "w2v", 12)
    task = run("mubench_speech_commands", model_dir, tmp_path, df=[6, 2])
    model = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)

    def decoded(row):  # an independent reading of the stored audio, resampled to 16 kHz by scipy
        from scipy.signal import resample_poly

        audio = row["audio"]
        if "array" in audio:
            return np.asarray(audio["array"], dtype=np.float32)
        with wave.open(BytesIO(audio["bytes"])) as handle:
            samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768.0
        return resample_poly(samples, 2, 1).astype(np.float32)

    sets = {"test": test, **split(train, [6, 2])}
    logits = {}
    for name, chosen in sets.items():
        with torch.no_grad():
            logits[name] = np.stack([model(**extractor(decoded(r), sampling_rate=16000, return_tensors="pt"))
                                     .logits[0].numpy() for r in chosen])
    check_against(task, logits, {n: [r["label"] for r in c] for n, c in sets.items()})


def test_nlvr2_image_pairs_with_vilt(tmp_path):
    from datasets import Features, Image, Value
    from transformers import AutoProcessor, ViltForImagesAndTextClassification

    texts = [h.sentence(80 + i) for i in range(10)]
    rows = [{"left_image": h.image(300 + i), "right_image": h.image(400 + i), "sentence": t,
             "label": "True" if i % 3 else "False"} for i, t in enumerate(texts)]
    features = Features({"left_image": Image(), "right_image": Image(), "sentence": Value("string"),
                         "label": Value("string")})
    h.write_parquet(rows[:7], tmp_path / "data" / "nlvr2" / "train.parquet", features)
    h.write_parquet(rows[7:], tmp_path / "data" / "nlvr2" / "test.parquet", features)
    model_dir = h.vilt(tmp_path / "vilt", texts)
    task = run("mubench_nlvr2", model_dir, tmp_path, df=[0, 4], task_args="retain_eval_size=3")
    assert len(task["items"]["retain_index"]) == 3
    assert task["info"]["random_accuracy"] == 0.5 and task["info"]["upstream_random"] == pytest.approx(1 / 3)
    model = ViltForImagesAndTextClassification.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)

    def logits_of(row):
        pixels = processor.image_processor([row["left_image"], row["right_image"]], return_tensors="pt")
        text = processor.tokenizer(row["sentence"], return_tensors="pt")
        with torch.no_grad():
            return model(**text, pixel_values=pixels["pixel_values"][None],
                         pixel_mask=pixels["pixel_mask"][None]).logits[0].numpy()

    retain = [rows[i] for i in task["items"]["retain_index"]]
    sets = {"test": rows[7:], "forget": [rows[0], rows[4]], "retain": retain}
    check_against(task, {n: np.stack([logits_of(r) for r in c]) for n, c in sets.items()},
                  {n: [int(r["label"] == "True") for r in c] for n, c in sets.items()})


def test_tiny_imagenet_reads_the_valid_split_of_200_classes(tmp_path):
    from datasets import Features, Image, Value
    from transformers import ViTForImageClassification, ViTImageProcessor

    rows = [{"image": h.image(500 + i), "label": (37 * i) % 200} for i in range(14)]
    features = Features({"image": Image(), "label": Value("int64")})
    h.write_parquet(rows[:9], tmp_path / "data" / "tiny_imagenet" / "train.parquet", features)
    h.write_parquet(rows[9:], tmp_path / "data" / "tiny_imagenet" / "valid.parquet", features)
    model_dir = h.vit(tmp_path / "vit200", 200)
    df = [2, 5, 8]
    task = run("mubench_tiny_imagenet", model_dir, tmp_path, df=df)
    assert task["metrics"]["test_accuracy"]["n"] == 5 and task["info"]["random_accuracy"] == pytest.approx(1 / 200)
    model = ViTForImageClassification.from_pretrained(model_dir).eval()
    processor = ViTImageProcessor.from_pretrained(model_dir)
    sets = {"test": rows[9:], **split(rows[:9], df)}
    with torch.no_grad():
        logits = {n: model(**processor([r["image"] for r in c], return_tensors="pt")).logits.numpy()
                  for n, c in sets.items()}
    check_against(task, logits, {n: [r["label"] for r in c] for n, c in sets.items()})


def test_ucf101_frame_stacks_with_videomae(tmp_path):
    import datasets
    from datasets import Features, Image, Value
    from transformers import AutoImageProcessor, AutoModelForVideoClassification

    rows = [{"video": h.frames(i), "label": i % 5} for i in range(8)]
    frames = datasets.List(Image()) if hasattr(datasets, "List") else datasets.Sequence(Image())  # List from 4.0 on
    features = Features({"video": frames, "label": Value("int64")})
    h.write_parquet(rows[:5], tmp_path / "data" / "ucf101" / "train.parquet", features)
    h.write_parquet(rows[5:], tmp_path / "data" / "ucf101" / "test.parquet", features)
    model_dir = h.videomae(tmp_path / "vmae", 101)
    task = run("mubench_ucf101", model_dir, tmp_path, df=[3])
    model = AutoModelForVideoClassification.from_pretrained(model_dir).eval()
    processor = AutoImageProcessor.from_pretrained(model_dir)

    def logits_of(row):  # 4 of 6 frames, evenly spaced: 0, 2, 3, 5
        clip = [np.asarray(row["video"][i]) for i in (0, 2, 3, 5)]
        with torch.no_grad():
            return model(**processor([clip], return_tensors="pt")).logits[0].numpy()

    sets = {"test": rows[5:], **split(rows[:5], [3])}
    check_against(task, {n: np.stack([logits_of(r) for r in c]) for n, c in sets.items()},
                  {n: [r["label"] for r in c] for n, c in sets.items()})
