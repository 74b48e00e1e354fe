"""RWKU's training corpora as the task's unlearning data: which rows, mapped how, and the errors for bad files.

Expectations are built from the generated files themselves, with RWKU's mapping written out here: documents
(positive, passage) train on the whole text; a pair prefers `response[0]` (the fabricated biography) to
`response[1]` (the true one); a refusal row answers `instruction` (+ "\\n" + `input`) with `output`.
"""

import json
import shutil

import pytest
from rwku_support import CORPUS_MODELS

import mu_eval
from mu_eval.data import DataError, load_rows
from mu_eval.evaluation import instantiate_tasks
from mu_eval.task import TaskContext, TaskOptionError, TextExample
from mu_eval.tasks.rwku.task import RwkuBatchTask, RwkuTask

CORPORA = ("positive", "passage", "pair", "refusal")


def chat(text):
    return f"<|user|>\n{text}<|end|>\n<|assistant|>\n"


def context(folder, uses_chat_template=True):
    return TaskContext(load=lambda spec: load_rows(spec, folder), chat=chat, uses_chat_template=uses_chat_template,
                       limit=1)


def config_name(corpus, model):
    return "train_original_passage" if corpus == "passage" else f"train_{corpus}_{model}"


def file_rows(folder, corpus, model):
    return json.loads((folder / f"{config_name(corpus, model)}.json").read_text())


def expected(folder, corpus, model, targets, turn=chat):
    rows = file_rows(folder, corpus, model)
    examples = []
    for target in targets:
        for row in (r for r in rows if r["subject"] == target):
            if corpus in ("positive", "passage"):
                examples.append(TextExample("", row["text"]))
            elif corpus == "pair":
                examples.append(TextExample(turn(row["prompt"]), row["response"][1], (row["response"][0],)))
            else:
                user = row["instruction"] + ("\n" + row["input"] if row["input"] else "")
                examples.append(TextExample(turn(user), row["output"]))
    return examples


def copy_dir(source, target):
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize("model", CORPUS_MODELS)
@pytest.mark.parametrize("corpus", CORPORA)
def test_each_corpus_yields_the_selected_targets_rows_in_order(rwku_dir, rwku_names, corpus, model):
    names = list(rwku_names)
    task = RwkuTask(targets="3", train_corpus=corpus, corpus_model=model)
    data = task.unlearning_data(context(rwku_dir))
    want = expected(rwku_dir, corpus, model, [names[2]])
    assert want and len(want) < len(file_rows(rwku_dir, corpus, model)), "the file holds other targets too"
    assert data.forget == want, "the --limit of the context does not cut training data"
    assert data.retain == [] and data.holdout == []


@pytest.mark.parametrize("corpus", CORPORA)
def test_batch_mode_pools_the_selected_targets_in_selection_order(rwku_dir, rwku_names, corpus, recwarn):
    names = list(rwku_names)
    data = RwkuBatchTask(targets="3|1", train_corpus=corpus).unlearning_data(context(rwku_dir))
    assert data.forget == expected(rwku_dir, corpus, "llama3", [names[2], names[0]])
    assert not [w for w in recwarn if "one target per run" in str(w.message)]


def test_corpus_model_picks_the_generated_config(rwku_dir, rwku_names):
    ctx = context(rwku_dir)
    for corpus in ("positive", "pair", "refusal"):
        llama, phi = (RwkuTask(targets="1", train_corpus=corpus, corpus_model=m).unlearning_data(ctx).forget
                      for m in ("llama3", "phi3"))
        assert all("[llama3]" in e.prompt + e.answer for e in llama)
        assert all("[phi3]" in e.prompt + e.answer for e in phi)
    passages = {m: RwkuTask(targets="1", train_corpus="passage", corpus_model=m).unlearning_data(ctx).forget
                for m in ("llama3", "phi3")}
    assert passages["llama3"] == passages["phi3"], "the original passages are the same for every model"
    default = RwkuTask(targets="1").unlearning_data(ctx).forget
    assert default == expected(rwku_dir, "positive", "llama3", list(rwku_names)[:1])


def test_without_a_chat_template_the_prompt_is_the_bare_user_text(rwku_dir, rwku_names):
    name = list(rwku_names)[1]
    for corpus in ("pair", "refusal"):
        task = RwkuTask(targets=name, train_corpus=corpus)
        got = task.unlearning_data(context(rwku_dir, uses_chat_template=False)).forget
        assert got == expected(rwku_dir, corpus, "llama3", [name], turn=lambda text: text)


def test_several_targets_in_target_mode_warn_that_they_are_unlearned_together(rwku_dir, rwku_names):
    with pytest.warns(UserWarning, match="pools 2 targets.*one target per run"):
        data = RwkuTask(num_targets=2).unlearning_data(context(rwku_dir))
    assert data.forget == expected(rwku_dir, "positive", "llama3", list(rwku_names)[:2])


def test_bad_options_stop_before_any_model_is_loaded():
    for options, text in (({"train_corpus": "negative"}, "train_corpus='negative'"),
                          ({"corpus_model": "mistral"}, "corpus_model='mistral'")):
        with pytest.raises(TaskOptionError, match=text):
            instantiate_tasks(["rwku"], {"rwku": options})
    assert RwkuTask(train_corpus="Pair", corpus_model="PHI3").config()["corpus_model"] == "phi3"


@pytest.mark.parametrize(("corpus", "field", "value", "message"), [
    ("pair", "response", ["only one answer"], "field 'response' must be [chosen, rejected]"),
    ("pair", "prompt", 7, "field 'prompt' must be a string"),
    ("refusal", "output", ["I don't know."], "field 'output' must be a string"),
    ("refusal", "input", 0, "field 'input' must be a string"),
    ("positive", "text", {"text": "nested"}, "field 'text' must be a string"),
])
def test_malformed_rows_name_the_config_row_and_field(rwku_dir, tmp_path, corpus, field, value, message):
    folder = copy_dir(rwku_dir, tmp_path / "data")
    path = folder / f"{config_name(corpus, 'llama3')}.json"
    rows = json.loads(path.read_text())
    subject = rows[0]["subject"]
    index = max(i for i, row in enumerate(rows) if row["subject"] == subject)
    rows[index][field] = value
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError) as error:
        RwkuTask(targets=subject, train_corpus=corpus).unlearning_data(context(folder))
    text = str(error.value)
    assert f"config '{path.stem}'" in text and f"row {index}:" in text and message in text


def test_missing_field_names_the_file(rwku_dir, tmp_path):
    folder = copy_dir(rwku_dir, tmp_path / "data")
    path = folder / "train_refusal_phi3.json"
    rows = json.loads(path.read_text())
    del rows[2]["instruction"]
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError, match=f"{path}: row 2 lacks field 'instruction'"):
        RwkuTask(targets="1", train_corpus="refusal", corpus_model="phi3").unlearning_data(context(folder))


def test_missing_config_and_target_without_rows_are_named(rwku_dir, rwku_names, tmp_path):
    folder = copy_dir(rwku_dir, tmp_path / "data")
    (folder / "train_pair_phi3.json").unlink()
    with pytest.raises(DataError) as error:
        RwkuTask(targets="1", train_corpus="pair", corpus_model="phi3").unlearning_data(context(folder))
    assert "config 'train_pair_phi3'" in str(error.value) and str(folder / "train_pair_phi3.json") in str(error.value)
    fourth = list(rwku_names)[3]  # listed in forget_target, but no generated corpus
    with pytest.raises(DataError, match=f"train_positive_llama3.*no rows for the RWKU target.*{fourth}"):
        RwkuBatchTask(targets="1|4").unlearning_data(context(folder))


def run_method(checkpoint, folder, method, options, **task_options):
    report = mu_eval.evaluate(str(checkpoint), ["rwku"], data_dir=folder, method=method, progress=False,
                              method_options={"steps": 2, "batch_size": 2, "grad_accum_steps": 1, **options},
                              task_options={"rwku": {"targets": "2", "parts": "mia", **task_options}})
    return report["method"], report.tasks["rwku"]


def test_methods_train_on_the_selected_targets_corpus(rwku_checkpoint, rwku_dir, rwku_names):
    name = list(rwku_names)[1]
    section, task = run_method(rwku_checkpoint, rwku_dir, "grad_ascent", {})
    positive = [r for r in file_rows(rwku_dir, "positive", "llama3") if r["subject"] == name]
    assert section["data"] == {"forget": len(positive), "retain": 0, "holdout": 0, "tasks": ["rwku"]}
    assert section["info"]["steps"] == 2 and task["config"]["train_corpus"] == "positive"
    assert task["info"]["targets"] == [name]

    section, task = run_method(rwku_checkpoint, rwku_dir, "dpo", {"retain_loss": "none"}, train_corpus="pair")
    pairs = [r for r in file_rows(rwku_dir, "pair", "llama3") if r["subject"] == name]
    assert section["data"]["forget"] == len(pairs) != len(positive)
    assert section["info"]["steps"] == 2 and task["config"]["train_corpus"] == "pair"
