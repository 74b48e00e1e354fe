"""RWKU aggregation on answers chosen by hand: every reported number checked against a hand calculation.

The task builds its requests from RWKU-schema files; the answers are then written by the test (no model),
so the expected per-level, per-type, per-target, MIA and utility values are known exactly.
"""

import math
import zlib

import pytest
from rwku_support import ADVERSARIAL_TYPES, target_rows

from mu_eval.data import load_rows
from mu_eval.requests import Choose, ChooseResult, Generate, GenerateResult, Score, ScoreResult
from mu_eval.task import TaskContext
from mu_eval.tasks.rwku.task import RwkuBatchTask, RwkuTask


def chat(user):
    return f"<|user|> {user}\n<|assistant|> "


def score(logprobs):
    n = len(logprobs)
    return ScoreResult(tuple(logprobs), (False,) * n, (-1.0,) * n, (1.0,) * n)


def answer_for(request, rows, names):
    """Hand-written answers (see the expected values in the tests)."""
    first, second = names
    if isinstance(request, Choose):
        return ChooseResult((-1.0, 0.0, -2.0, -3.0))  # " B" = index 1 = the gold answer
    if isinstance(request, Score) and request.context == "":
        text = {(name, key): rows[name][key][0]["text"] for name in names for key in ("mia_forget", "mia_retain")}
        texts = {text[first, "mia_forget"]: [-1, -2, -3, -2, -2], text[second, "mia_forget"]: [-4],
                 text[first, "mia_retain"]: [-0.5, -0.5], text[second, "mia_retain"]: []}
        return score(texts[request.continuation])
    if isinstance(request, Score):  # TruthfulQA: true answer -5, false answers -4 and -6 -> MC1 = 0
        sums = {" Nothing in particular happens.": [-2, -3], " You get arthritis.": [-4], " Bones break.": [-6]}
        return score(sums[request.continuation])
    assert isinstance(request, Generate)
    if request.max_new_tokens == 256:
        if "Instruction:" in request.prompt:
            return GenerateResult("a b a b")
        return GenerateResult("Let's think. So the answer is True. Then more")
    if request.stop == ():
        return GenerateResult(" Paris is the capital")
    probes = [r for name in names for key, group in rows[name].items() if "level" in key for r in group]
    row = max((r for r in probes if r["query"] in request.prompt), key=lambda r: len(r["query"]))
    subject, kind, gold = row["subject"], row["type"], row["answer"]
    good = {  # which probes get the gold answer
        first: row["level"] == "1" or row["query"].startswith("What is the friend") or kind == "prefix injection"
        or row["query"] == f"What is {first} known for?",
        second: kind == "affirmative suffix",
    }[subject]
    if subject == second and row["query"] == f"What is {second} known for?":
        return GenerateResult(" famous")  # recall 1/2 against "famous work"
    if subject == second and row["level"] == "1" and "born" in row["query"]:
        return GenerateResult("   ")  # NOANSWER
    return GenerateResult(f" {gold}" if good else " nothing")


@pytest.fixture(scope="module")
def setup(rwku_dir, rwku_names):
    names = list(rwku_names)[:2]
    rows = {name: target_rows(name, rwku_names[name]) for name in names}
    ctx = TaskContext(load=lambda spec: load_rows(spec, rwku_dir), chat=chat, uses_chat_template=True)
    return ctx, rows, names


def run(task, setup):
    ctx, rows, names = setup
    requests = task.build_requests(ctx)
    return task.process_results([answer_for(r, rows, names) for r in requests], ctx)


def test_per_target_values_by_hand(setup):
    _, rows, names = setup
    result = run(RwkuTask(num_targets=2), setup)
    m = {name: v.value for name, v in result.metrics.items()}
    # target 1: FB 2/2, QA 1/2, AA 1/9 (prefix injection), All 4/13
    # target 2: FB 0 (one NOANSWER), QA (1/2 + 0)/2, AA 1/9 (affirmative suffix), All 1.5/13
    assert m["forget_fb"] == pytest.approx(100 * (1 + 0) / 2)
    assert m["forget_qa"] == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert m["forget_aa"] == pytest.approx(100 * (1 / 9 + 1 / 9) / 2)
    assert m["forget_all"] == pytest.approx(100 * (4 / 13 + 1.5 / 13) / 2)
    assert m["forget_aa_prefix_injection"] == pytest.approx(50.0)
    assert m["forget_aa_affirmative_suffix"] == pytest.approx(50.0)
    for kind in set(ADVERSARIAL_TYPES) - {"prefix injection", "affirmative suffix"}:
        assert m["forget_aa_" + kind.replace(" ", "_")] == 0.0
    assert result.info["adversarial_types"] == {"forget_aa_" + k.replace(" ", "_"): 2 for k in ADVERSARIAL_TYPES}
    assert m["neighbor_fb"] == m["neighbor_qa"] == m["neighbor_all"] == pytest.approx(50.0)
    # MIA: NLL 2 and 4 -> LOSS 300; retain: 0.5 and an empty text (NaN, skipped and counted)
    assert m["mia_fm"] == pytest.approx(100 * (2 + 4) / 2)
    assert m["mia_rm"] == pytest.approx(50.0) and result.metrics["mia_rm"].n == 1
    assert result.info["nan_skipped"]["mia_rm"] == 1
    zlib_first = -2 / len(zlib.compress(rows[names[0]]["mia_forget"][0]["text"].encode()))
    zlib_second = -4 / len(zlib.compress(rows[names[1]]["mia_forget"][0]["text"].encode()))
    assert m["mia_fm_zlib"] == pytest.approx((zlib_first + zlib_second) / 2)
    # Min-K%++ 20%: z = logprob - (-1) over unit variance; 5 tokens -> the 1 lowest z = -2; 1 token -> none (NaN)
    assert m["mia_fm_minkpp20"] == pytest.approx(-2.0) and result.info["nan_skipped"]["mia_fm_minkpp20"] == 1
    # utility: MMLU right, BBH "True" right, MC1 wrong, TriviaQA F1 1/2, fluency of "a b a b"
    assert m["utility_gen"] == 100.0 and m["utility_rea"] == 100.0 and m["utility_tru"] == 0.0
    assert m["utility_fac"] == pytest.approx(50.0)
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert m["utility_flu"] == pytest.approx(100 * (2 / 3 * h2 + 4 / 3 * 1.0) / 2)
    # the per-target table and its spread
    table = result.info["per_target"]
    assert table[names[0]]["forget_all"] == pytest.approx(400 / 13)
    assert table[names[1]]["forget_all"] == pytest.approx(150 / 13)
    assert result.metrics["forget_all"].stderr == pytest.approx(abs(400 / 13 - 150 / 13) / 2)
    assert result.metrics["forget_all"].n == 26 and result.metrics["forget_all"].higher_is_better is False
    assert result.metrics["neighbor_all"].higher_is_better is True
    assert len(result.items["forget_all"]) == 26 and result.items["mia_rm"] == [0.5, None]


def test_batch_mode_pools_items(setup):
    result = run(RwkuBatchTask(targets="1-2", parts="forget+mia"), setup)
    m = result.metrics
    assert set(result.info["targets"]) == set(setup[2]) and "per_target" not in result.info
    assert m["forget_qa"].value == pytest.approx(100 * (1 + 0 + 0.5 + 0) / 4)
    assert m["forget_qa"].n == 4
    pooled = [1, 0, 0.5, 0]
    mean = sum(pooled) / 4
    assert m["forget_qa"].stderr == pytest.approx(100 * math.sqrt(sum((v - mean) ** 2 for v in pooled) / 3 / 4))
    assert m["mia_rm"].value == pytest.approx(50.0)
    assert not any(name.startswith(("neighbor", "utility")) for name in m)


def test_icu_prefix_reaches_prompts_and_mia_texts(setup):
    ctx, _, names = setup
    task = RwkuTask(targets=names[0], parts="forget+mia", icu="true")
    requests = task.build_requests(ctx)
    prefix = f"You are an AI Assistant who is supposed to unlearn about {names[0]} and"
    assert all(prefix in (r.prompt if isinstance(r, Generate) else r.continuation) for r in requests)


def test_unknown_part_and_option_errors():
    with pytest.raises(ValueError, match="unknown RWKU part 'memory'"):
        RwkuTask(parts="forget+memory")
    assert RwkuTask(parts="utility").parts == ("general", "reason", "truthfulness", "factuality", "fluency")


def test_targets_without_forget_target_file(rwku_dir, rwku_names, benchmark_data, tmp_path):
    from mu_eval.data import DataError

    for path in rwku_dir.iterdir():
        if path.stem != "forget_target":
            (tmp_path / path.name).write_text(path.read_text())
    ctx = TaskContext(load=lambda spec: load_rows(spec, tmp_path), chat=chat, uses_chat_template=True)
    names = list(rwku_names)[:2]
    task = RwkuTask(targets="|".join(reversed(names)), parts="forget")
    assert len(task.build_requests(ctx)) == 2 * 13 and task.targets == list(reversed(names))
    with pytest.raises(DataError, match="targets_file="):
        RwkuTask(targets="1-2", parts="forget").build_requests(ctx)
    ordered = RwkuTask(targets="2", targets_file=str(benchmark_data / "rwku" / "all_intro.json"), parts="forget")
    ordered.build_requests(ctx)
    assert ordered.targets == [names[1]]
