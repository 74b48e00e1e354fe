"""KnowMem prompt against MUSE's own prompt text, the output cut, and local file names (retain2, bare strings)."""

import json

import pytest

from mu_eval.data import DataError, find_local_file, load_rows
from mu_eval.task import TaskContext
from mu_eval.tasks.muse import data
from mu_eval.tasks.muse.task import MuseNews


def test_knowmem_prompt_matches_golden(muse_news_dir):
    icl = load_rows(data.knowmem_spec("news", "forget_qa_icl"), muse_news_dir)
    rows = load_rows(data.knowmem_spec("news", "forget_qa"), muse_news_dir)
    prompt = data.knowmem_prompt(icl, rows[0]["question"])
    assert prompt.startswith(
        "Question: How much total prize money are Mark Selby and Kyren Wilson set to share for making maximum "
        "breaks at the Crucible?\nAnswer: £55,000\n\n"
    )
    assert prompt.endswith("Question: What year did the Orkney Islands become part of Scotland?\nAnswer: ")
    assert rows[0]["answer"] == "1472"
    assert prompt.count("Question: ") == 11 and prompt.count("\n\n") == 10


@pytest.mark.parametrize(
    ("raw", "cut"),
    [
        ("1472\n\nQuestion: next", "1472"),
        (" in 1472\nQuestion 2", " in 1472"),
        ("1472 Question: more", "1472 "),
        ("a\nQuestion\n\nb", "a"),
        ("no stop here", "no stop here"),
    ],
)
def test_knowmem_output_cut(raw, cut):
    assert data.cut_knowmem_output(raw) == cut


def test_retain_splits_are_found_under_the_original_names(muse_news_dir):
    for split, original in (("retain_qa", "retain2_qa"), ("retain_qa_icl", "retain2_qa_icl")):
        path, _ = find_local_file(data.knowmem_spec("news", split), muse_news_dir)
        assert path == muse_news_dir / "knowmem" / f"{original}.json"
    path, _ = find_local_file(data.privleak_spec("news", "retain"), muse_news_dir)
    assert path == muse_news_dir / "privleak" / "retain2.json"


def test_privleak_bare_strings_become_text_rows(muse_news_dir):
    rows = load_rows(data.privleak_spec("news", "holdout"), muse_news_dir)
    raw = json.loads((muse_news_dir / "privleak" / "holdout.json").read_text())
    assert len(rows) == 100 and [r["text"] for r in rows] == raw


def test_missing_field_names_file_row_and_field(tmp_path):
    folder = tmp_path / "verbmem"
    folder.mkdir()
    (folder / "forget.json").write_text(json.dumps([{"prompt": "a", "gt": "b"}, {"prompt": "c"}]))
    with pytest.raises(DataError) as error:
        load_rows(data.verbmem_spec("news"), tmp_path)
    message = str(error.value)
    assert str(folder / "forget.json") in message and "row 1" in message and "'gt'" in message


def test_unlearning_data_is_the_raw_corpus(tmp_path, muse_news_dir):
    texts = json.loads((muse_news_dir / "privleak" / "forget.json").read_text())[:6]
    (tmp_path / "raw").mkdir()
    for index, split in enumerate(("forget", "retain1", "holdout")):
        (tmp_path / "raw" / f"{split}.json").write_text(json.dumps(texts[2 * index : 2 * index + 2]))
    ctx = TaskContext(load=lambda spec: load_rows(spec, tmp_path), chat=str, uses_chat_template=False)
    unlearning = MuseNews().unlearning_data(ctx)
    assert [e.answer for e in unlearning.forget] == texts[:2] and [e.answer for e in unlearning.retain] == texts[2:4]
    assert [e.answer for e in unlearning.holdout] == texts[4:] and all(e.prompt == "" for e in unlearning.forget)
