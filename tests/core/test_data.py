"""Dataset loading from local files of the hub's schema, through the real `datasets` library."""

from __future__ import annotations

import json

import pytest

from mu_eval.data import DataError, DatasetSpec, load_rows

SPEC = DatasetSpec("org/Bench", "qa", "test", required_fields=("question", "answer"))
ROWS = [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": "a2"}]


def test_jsonl_under_config_and_split(tmp_path):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "test.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    assert load_rows(SPEC, tmp_path) == ROWS


def test_json_array_under_repo_name(tmp_path):
    (tmp_path / "Bench" / "qa").mkdir(parents=True)
    (tmp_path / "Bench" / "qa" / "test.json").write_text(json.dumps(ROWS))
    assert load_rows(SPEC, tmp_path) == ROWS


def test_parquet(tmp_path):
    import datasets

    (tmp_path / "qa").mkdir()
    datasets.Dataset.from_list(ROWS).to_parquet(str(tmp_path / "qa" / "test.parquet"))
    assert load_rows(SPEC, tmp_path) == ROWS


def test_bare_strings_become_text_rows(tmp_path):
    spec = DatasetSpec("org/Bench", "privleak", "forget", local_names=("privleak/forget2",))
    (tmp_path / "privleak").mkdir()
    (tmp_path / "privleak" / "forget2.json").write_text(json.dumps(["first text", "second text"]))
    assert load_rows(spec, tmp_path) == [{"text": "first text"}, {"text": "second text"}]


def test_environment_variable_points_at_files(tmp_path, monkeypatch):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "test.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))
    monkeypatch.setenv("MU_EVAL_DATA_DIR", str(tmp_path))
    assert load_rows(SPEC) == ROWS


def test_missing_field_names_file_row_and_field(tmp_path):
    (tmp_path / "qa").mkdir()
    path = tmp_path / "qa" / "test.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"question": "q2"}))
    with pytest.raises(DataError) as error:
        load_rows(SPEC, tmp_path)
    message = str(error.value)
    assert str(path) in message and "row 1" in message and "'answer'" in message


def test_unavailable_dataset_names_it_and_the_paths_looked_at(tmp_path):
    with pytest.raises(DataError) as error:
        load_rows(SPEC, tmp_path)
    message = str(error.value)
    assert "'org/Bench'" in message and "'qa'" in message and "'test'" in message
    assert str(tmp_path / "qa" / "test.jsonl") in message


def test_unreadable_file_is_a_data_error(tmp_path):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "test.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        load_rows(SPEC, tmp_path)


def test_a_stray_split_file_is_not_taken_for_a_dataset_without_config(tmp_path):
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS))  # whose? nobody says
    spec = DatasetSpec("org/Other", None, "test", required_fields=("question",))
    with pytest.raises(DataError):
        load_rows(spec, tmp_path)
    (tmp_path / "Other").mkdir()
    (tmp_path / "Other" / "test.jsonl").write_text(json.dumps(ROWS[0]))
    assert load_rows(spec, tmp_path) == ROWS[:1]


def test_a_column_of_mixed_types_is_read_as_written(tmp_path):
    from mu_eval.data import read_local_file

    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "fine"}\n{"text": 7}\n')
    assert read_local_file(path) == [{"text": "fine"}, {"text": 7}]


@pytest.mark.parametrize(("name", "content", "rows"), [
    ("array.json", '[{"a": 1}, {"a": "x", "b": null}]', [{"a": 1}, {"a": "x", "b": None}]),
    ("lines.jsonl", '{"a": 1}\n\n{"a": [2]}\n', [{"a": 1}, {"a": [2]}]),
    ("one.jsonl", '{"a": 1}\n', [{"a": 1}]),
    ("lines.json", '{"a": 1}\n{"a": "y"}', [{"a": 1}, {"a": "y"}]),
    ("broken.json", "{not json", None),
    ("strings.json", '["a", "b"]', None),
    ("rows.parquet", '{"a": 1}', None),
])
def test_plain_json_rows_reads_arrays_and_lines_of_objects_only(tmp_path, name, content, rows):
    from mu_eval.plain_json import plain_json_rows

    (tmp_path / name).write_text(content)
    assert plain_json_rows(tmp_path / name) == rows
