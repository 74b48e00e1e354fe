"""WMDP unlearning corpora from local files in the hub's schema: RMU's filter and order, pooling for `wmdp`,
the gated bio corpus, malformed rows, and an RMU run on a tiny model."""

import pytest
from wmdp_support import TOPIC_WORDS, make_rows, write_jsonl

import mu_eval
from mu_eval.data import DataError, load_rows
from mu_eval.task import TaskContext
from mu_eval.tasks.wmdp.wmdp import WmdpBio, WmdpChem, WmdpCyber, WmdpGroup
from mu_eval.unlearning import collect_unlearning_data

#: cais/wmdp-corpora rows are {"text": ...}; one empty row and one short one exercise the length filter
CYBER_FORGET = [{"text": "The exploit overwrites the return address on the stack."}, {"text": ""},
                {"text": "shellcode"}, {"text": "A heap spray places the payload where the pointer lands."}]
CYBER_RETAIN = [{"text": "Kernel modules are loaded at boot by the init system."}, {"text": ""}]
#: the bio forget corpus carries paper metadata beside `text`
BIO_FORGET = [{"title": f"Paper {i}", "abstract": f"About {w}.", "doi": f"10.0/{i}", "text": text}
              for i, (w, text) in enumerate([("virus", "The virus binds the cell receptor through its spike."),
                                             ("toxin", ""), ("gene", "A gene is cut and pasted into a plasmid.")])]
BIO_RETAIN = [{"text": "Proteins fold into shapes fixed by their amino acid sequence."}]
#: WikiText-2 raw: empty lines between headings and paragraphs, leading spaces and trailing newlines kept
WIKITEXT = [{"text": ""}, {"text": " = Robert Boulter = \n"}, {"text": ""},
            {"text": " Robert Boulter is an English film and television actor , born in London . \n"}]


def texts(rows, min_len=0):
    return [row["text"] for row in rows if len(row["text"]) > min_len]


def write_corpora(folder, bio=True):
    write_jsonl(folder / "wmdp-corpora" / "cyber-forget-corpus" / "train.jsonl", CYBER_FORGET)
    write_jsonl(folder / "wmdp-corpora" / "cyber-retain-corpus" / "train.jsonl", CYBER_RETAIN)
    write_jsonl(folder / "wmdp-corpora" / "bio-retain-corpus" / "train.jsonl", BIO_RETAIN)
    write_jsonl(folder / "wikitext" / "wikitext-2-raw-v1" / "test.jsonl", WIKITEXT)
    if bio:
        write_jsonl(folder / "wmdp-bio-forget-corpus" / "train.jsonl", BIO_FORGET)
    return folder


def context(folder):
    return TaskContext(load=lambda spec: load_rows(spec, folder), chat=str, uses_chat_template=False)


@pytest.fixture
def corpora_dir(tmp_path):
    return write_corpora(tmp_path)


def test_each_topic_gets_its_forget_corpus_and_wikitext_in_file_order(corpora_dir):
    for task, rows in ((WmdpCyber(), CYBER_FORGET), (WmdpBio(), BIO_FORGET)):
        data = task.unlearning_data(context(corpora_dir))
        assert [e.answer for e in data.forget] == texts(rows)
        assert [e.answer for e in data.retain] == texts(WIKITEXT) == [WIKITEXT[1]["text"], WIKITEXT[3]["text"]]
        assert all(e.prompt == "" and e.alternates == () for e in data.forget + data.retain)
        assert data.holdout == []


def test_options_choose_corpora_and_the_length_filter(corpora_dir):
    task = WmdpCyber(retain_corpora="cyber-retain-corpus+bio-retain-corpus", corpus_min_len="20")
    data = task.unlearning_data(context(corpora_dir))
    assert [e.answer for e in data.forget] == texts(CYBER_FORGET, 20) == [CYBER_FORGET[0]["text"],
                                                                          CYBER_FORGET[3]["text"]]
    assert [e.answer for e in data.retain] == texts(CYBER_RETAIN, 20) + texts(BIO_RETAIN, 20)
    assert WmdpCyber(retain_corpora="none").unlearning_data(context(corpora_dir)).retain == []
    with pytest.raises(ValueError, match="forget_corpora='cyber': expected one of"):
        WmdpCyber(forget_corpora="cyber")
    with pytest.raises(ValueError, match="corpus_min_len=-1: must be at least 0"):
        WmdpCyber(corpus_min_len="-1")


def test_group_pools_bio_then_cyber_and_chemistry_has_no_corpus(corpora_dir):
    ctx = context(corpora_dir)
    data = WmdpGroup().unlearning_data(ctx)
    assert [e.answer for e in data.forget] == texts(BIO_FORGET) + texts(CYBER_FORGET)
    # each forget document names its corpus, so RMU takes turns between them; retain text is one pool
    assert [e.group for e in data.forget] == (["bio-forget-corpus"] * len(texts(BIO_FORGET))
                                              + ["cyber-forget-corpus"] * len(texts(CYBER_FORGET)))
    assert {e.group for e in data.retain} == {""}
    assert [e.answer for e in data.retain] == texts(WIKITEXT)
    with pytest.raises(NotImplementedError, match="chemistry"):
        WmdpChem().unlearning_data(ctx)
    tasks = {"wmdp": WmdpGroup(), "wmdp_chem": WmdpChem(), "wmdp_cyber": WmdpCyber()}
    pooled, providers = collect_unlearning_data(tasks, {name: ctx for name in tasks})
    assert providers == ["wmdp", "wmdp_cyber"]
    assert [e.answer for e in pooled.forget] == texts(BIO_FORGET) + texts(CYBER_FORGET)


def test_the_file_the_authors_send_is_found_under_its_own_name(tmp_path):
    write_corpora(tmp_path, bio=False)
    write_jsonl(tmp_path / "bio-forget-corpus.jsonl", BIO_FORGET)
    data = WmdpBio().unlearning_data(context(tmp_path))
    assert [e.answer for e in data.forget] == texts(BIO_FORGET)


def test_missing_bio_forget_corpus_says_how_to_get_it(tmp_path):
    write_corpora(tmp_path, bio=False)
    with pytest.raises(DataError) as error:
        WmdpGroup().unlearning_data(context(tmp_path))
    message = str(error.value)
    for part in ("gated", "https://huggingface.co/datasets/cais/wmdp-bio-forget-corpus", "request access",
                 "huggingface-cli login", "bio-forget-corpus.jsonl", "forget_corpora=cyber-forget-corpus",
                 str(tmp_path / "wmdp-bio-forget-corpus" / "train.jsonl")):
        assert part.lower() in message.lower(), part
    # a public corpus that is missing gets the plain message, without the access hint
    (tmp_path / "wmdp-corpora" / "cyber-forget-corpus" / "train.jsonl").unlink()
    with pytest.raises(DataError) as error:
        WmdpCyber().unlearning_data(context(tmp_path))
    assert "cyber-forget-corpus" in str(error.value) and "request access" not in str(error.value)


def test_malformed_rows_name_file_row_and_field(tmp_path):
    write_corpora(tmp_path)
    broken = [*BIO_FORGET[:2], {k: v for k, v in BIO_FORGET[2].items() if k != "text"}]
    path = tmp_path / "wmdp-bio-forget-corpus" / "train.jsonl"
    write_jsonl(path, broken)
    with pytest.raises(DataError) as error:
        WmdpBio().unlearning_data(context(tmp_path))
    assert str(path) in str(error.value) and "row 2 lacks field 'text'" in str(error.value)
    assert "request access" not in str(error.value), "a present but malformed file is not a missing corpus"
    write_jsonl(tmp_path / "wmdp-corpora" / "cyber-forget-corpus" / "train.jsonl", [{"text": "fine"}, {"text": 7}])
    with pytest.raises(DataError, match=r"'cyber-forget-corpus'.*row 1: field 'text' must be a string, got int"):
        WmdpCyber().unlearning_data(context(tmp_path))


def test_rmu_on_wmdp_cyber_trains_on_the_generated_corpora(letter_checkpoint, tmp_path):
    write_corpora(tmp_path, bio=False)
    write_jsonl(tmp_path / "wmdp-cyber.jsonl", make_rows(TOPIC_WORDS["wmdp-cyber"]))
    options = {"steps": 2, "batch_size": 2, "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3,
               "layer": 0, "max_length": 64}
    report = mu_eval.evaluate(str(letter_checkpoint), ["wmdp_cyber"], method="rmu", method_options=options,
                              data_dir=tmp_path, use_cache=False, progress=False)
    section = report["method"]
    assert section["name"] == "rmu"
    assert section["data"] == {"forget": len(texts(CYBER_FORGET)), "retain": len(texts(WIKITEXT)), "holdout": 0,
                               "tasks": ["wmdp_cyber"]}
    assert (section["data"]["forget"], section["data"]["retain"]) == (3, 2)
    assert section["info"]["steps"] == 2 and section["info"]["update_layers"] == [0]
    assert report.tasks["wmdp_cyber"]["metrics"]["acc"]["n"] == len(TOPIC_WORDS["wmdp-cyber"])


def test_rmu_on_the_wmdp_group_takes_turns_between_bio_and_cyber(letter_checkpoint, tmp_path):
    write_corpora(tmp_path)
    for subset in ("wmdp-bio", "wmdp-cyber", "wmdp-chem"):
        write_jsonl(tmp_path / f"{subset}.jsonl", make_rows(TOPIC_WORDS[subset]))
    options = {"steps": 2, "batch_size": 2, "grad_accum_steps": 1, "warmup_ratio": 0.0, "lr": 1e-3, "layer": 0,
               "max_length": 64, "topic_max_lengths": "48+64"}
    report = mu_eval.evaluate(str(letter_checkpoint), ["wmdp"], method="rmu", method_options=options,
                              data_dir=tmp_path, use_cache=False, progress=False)
    info = report["method"]["info"]
    assert info["topics"] == ["bio-forget-corpus", "cyber-forget-corpus"]
    assert list(report["method"]["config"]["options"]["topic_max_lengths"]) == [48, 64]
