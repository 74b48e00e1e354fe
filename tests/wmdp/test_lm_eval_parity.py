"""lm-evaluation-harness itself, run on the same tiny models and local WMDP/MMLU files as mu-eval (0- and
5-shot): every option's log-likelihood agrees within 1e-4 and the accuracies are equal.

lm-eval runs its own task definitions: the task files written here include lm-eval's shipped wmdp_*.yaml and
mmlu_*.yaml and change only where the data comes from (local JSON lines instead of the hub). Three tokenizers:
one keeping " A".." D" as single tokens (mu-eval answers from one next-token distribution), one splitting
them (mu-eval scores each option), and a SentencePiece-style one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tokenizer_kinds import sentencepiece_tokenizer
from wmdp_support import training_texts

import mu_eval
from mu_eval.backends.hf import HFBackend
from mu_eval.requests import Choose

lm_eval = pytest.importorskip("lm_eval", reason="lm-evaluation-harness is a test dependency (the 'test' extra)")

WMDP = {"wmdp_bio": "wmdp-bio", "wmdp_chem": "wmdp-chem", "wmdp_cyber": "wmdp-cyber"}
SUBJECTS = ("high_school_biology", "computer_security")  # in the order of mmlu/all/test.jsonl
CHECKPOINTS = ("letter_checkpoint", "split_letter_checkpoint", "sentencepiece_checkpoint")


@pytest.fixture(scope="module")
def sentencepiece_checkpoint(tmp_path_factory):
    from mu_eval.tiny import build_model, save

    tokenizer = sentencepiece_tokenizer(training_texts(), vocab_size=400)
    model = build_model(len(tokenizer), seed=8, tokenizer=tokenizer)
    return save(model, tokenizer, tmp_path_factory.mktemp("sentencepiece") / "model")


@pytest.fixture(scope="module")
def data_dir(wmdp_dir, mmlu_dir, tmp_path_factory):
    """The WMDP and MMLU files of the other tests in one folder, as one --data-dir."""
    folder = tmp_path_factory.mktemp("wmdp-mmlu")
    shutil.copytree(wmdp_dir, folder, dirs_exist_ok=True)
    shutil.copytree(mmlu_dir, folder, dirs_exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def task_manager(data_dir, tmp_path_factory, monkeypatch_module):
    """lm-eval task files: its own wmdp/mmlu definitions, reading the local files."""
    monkeypatch_module.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("datasets-cache")))
    shipped = Path(lm_eval.__file__).parent / "tasks"
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    for task, config in WMDP.items():
        (folder / f"local_{task}.yaml").write_text(
            f"include: {shipped / 'wmdp' / f'{task}.yaml'}\ntask: local_{task}\ndataset_path: json\n"
            f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    test: {data_dir / f'{config}.jsonl'}\n")
    for subject in SUBJECTS:
        files = data_dir / "mmlu" / subject
        (folder / f"local_mmlu_{subject}.yaml").write_text(
            f"include: {shipped / 'mmlu' / 'default' / f'mmlu_{subject}.yaml'}\ntask: local_mmlu_{subject}\n"
            f"tag: []\ndataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n"
            f"    test: {files / 'test.jsonl'}\n    dev: {files / 'dev.jsonl'}\n")
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder), include_defaults=False)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def run_lm_eval(checkpoint: Path, task_manager, tasks: list[str], shots: int) -> dict:
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={checkpoint},dtype=float32",
                                      tasks=tasks, num_fewshot=shots, batch_size=1, device="cpu",
                                      task_manager=task_manager, log_samples=True)
    return {task: {"acc": results["results"][task]["acc,none"],
                   "logprobs": [[r[0] for r in s["filtered_resps"]]
                                for s in sorted(results["samples"][task], key=lambda s: s["doc_id"])]}
            for task in tasks}


def mu_eval_samples(checkpoint: Path, data_dir: Path, tasks: list[str], tmp_path: Path) -> tuple:
    report = mu_eval.evaluate(str(checkpoint), tasks, data_dir=data_dir, output_path=tmp_path, log_samples=True,
                              use_cache=False, progress=False)
    import json

    samples = {task: [json.loads(line) for line in (tmp_path / f"samples_{task}.jsonl").read_text().splitlines()]
               for task in tasks}
    return report, samples


def assert_same(ours: list[dict], theirs: dict) -> None:
    assert len(ours) == len(theirs["logprobs"])
    for sample, logprobs in zip(ours, theirs["logprobs"]):
        assert sample["logprobs"] == pytest.approx(logprobs, abs=1e-4)


@pytest.mark.parametrize("checkpoint_fixture", CHECKPOINTS)
def test_wmdp_and_mmlu_zero_and_five_shot_equal_lm_eval(checkpoint_fixture, request, data_dir, task_manager,
                                                         tmp_path):
    checkpoint = request.getfixturevalue(checkpoint_fixture)
    zero = run_lm_eval(checkpoint, task_manager, [f"local_{t}" for t in WMDP] + [f"local_mmlu_{s}" for s in SUBJECTS],
                       0)
    five = run_lm_eval(checkpoint, task_manager, [f"local_mmlu_{s}" for s in SUBJECTS], 5)
    report, samples = mu_eval_samples(checkpoint, data_dir, ["wmdp", "mmlu", "mmlu_5shot"], tmp_path)
    share = report.tasks["wmdp"]["info"]["single_pass_share"]
    assert share == (0.0 if checkpoint_fixture == "split_letter_checkpoint" else 1.0)
    for task in WMDP:
        assert_same([s for s in samples["wmdp"] if s["subset"] == task], zero[f"local_{task}"])
        assert report.tasks["wmdp"]["metrics"][f"acc_{task}"]["value"] == zero[f"local_{task}"]["acc"]
    for mu_task, lm in (("mmlu", zero), ("mmlu_5shot", five)):
        for subject in SUBJECTS:
            assert_same([s for s in samples[mu_task] if s["subject"] == subject], lm[f"local_mmlu_{subject}"])
            assert report.tasks[mu_task]["metrics"][f"acc_{subject}"]["value"] == lm[f"local_mmlu_{subject}"]["acc"]
    # the 5-shot prompts are not the 0-shot ones: the comparison saw different numbers
    assert samples["mmlu"][0]["logprobs"] != pytest.approx(samples["mmlu_5shot"][0]["logprobs"], abs=1e-3)


@pytest.mark.parametrize("checkpoint_fixture", ["letter_checkpoint", "sentencepiece_checkpoint"])
def test_choose_equals_lm_eval_loglikelihood_for_any_options(checkpoint_fixture, request):
    """Multi-token options and a context ending in a space (lm-eval moves the space to the option)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    checkpoint = request.getfixturevalue(checkpoint_fixture)
    lm = HFLM(pretrained=str(checkpoint), dtype="float32", device="cpu", batch_size=1)
    cases = [("Which cell property matters most?\nAnswer: ", ("size", "charge of the cell", "shape")),
             ("The following are multiple choice questions about biology.\n\nAnswer:", (" A", " virus size")),
             ("Which vir", ("us property", "us size"))]  # "virus" is one token: the boundary falls inside it
    backend = HFBackend.from_model(lm.model, lm.tokenizer)
    answers = backend.choose([Choose(context, options) for context, options in cases])
    for (context, options), answer in zip(cases, answers):
        requests = [Instance(request_type="loglikelihood", doc={}, arguments=(context, option), idx=i)
                    for i, option in enumerate(options)]
        expected = [logprob for logprob, _ in lm.loglikelihood(requests, disable_tqdm=True)]
        assert list(answer.logprobs) == pytest.approx(expected, abs=1e-4), (context, options)


#: Shorter than every 5-shot question and than some 0-shot ones (byte-level tokens of the tiny tokenizers).
MAX_LENGTH = 140


@pytest.mark.parametrize("checkpoint_fixture", ("letter_checkpoint", "split_letter_checkpoint"))
def test_questions_longer_than_max_length_are_cut_as_lm_eval_cuts_them(checkpoint_fixture, request, data_dir,
                                                                        task_manager, tmp_path):
    """With max_length below the questions' lengths, lm-eval keeps the last max_length + 1 tokens of context +
    option (a warning, no error); mu-eval gives the same log-likelihoods and counts the cut questions in
    `info.truncated`, each counted here from lm-eval's own encoding of its own requests."""
    from lm_eval.models.huggingface import HFLM

    checkpoint = request.getfixturevalue(checkpoint_fixture)
    lm = HFLM(pretrained=str(checkpoint), max_length=MAX_LENGTH, dtype="float32", batch_size=1, device="cpu")
    tasks = [f"local_mmlu_{s}" for s in SUBJECTS]
    theirs, cut = {}, {}
    for shots in (0, 5):
        results = lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=shots, task_manager=task_manager,
                                          log_samples=True)
        for task in tasks:
            samples = sorted(results["samples"][task], key=lambda s: s["doc_id"])
            theirs[shots, task] = {"acc": results["results"][task]["acc,none"],
                                   "logprobs": [[r[0] for r in s["filtered_resps"]] for s in samples]}
            pairs = [[lm._encode_pair(*argument) for argument in s["arguments"]] for s in samples]
            cut[shots, task] = sum(any(len(c) + len(o) > MAX_LENGTH + 1 for c, o in doc) for doc in pairs)
    report = mu_eval.evaluate(str(checkpoint), ["mmlu", "mmlu_5shot"], model_args={"max_length": MAX_LENGTH},
                              data_dir=data_dir, output_path=tmp_path, log_samples=True, use_cache=False,
                              progress=False)
    import json

    for shots, mu_task in ((0, "mmlu"), (5, "mmlu_5shot")):
        samples = [json.loads(line) for line in (tmp_path / f"samples_{mu_task}.jsonl").read_text().splitlines()]
        for subject in SUBJECTS:
            assert_same([s for s in samples if s["subject"] == subject], theirs[shots, f"local_mmlu_{subject}"])
            assert (report.tasks[mu_task]["metrics"][f"acc_{subject}"]["value"]
                    == theirs[shots, f"local_mmlu_{subject}"]["acc"])
        assert report.tasks[mu_task]["info"]["truncated"] == sum(cut[shots, task] for task in tasks)
    assert sum(cut[5, task] for task in tasks) == 5  # every 5-shot question was cut: the comparison saw cuts
    assert sum(cut[0, task] for task in tasks) < 5
    assert report["engine"]["truncated"] == sum(cut.values())
