"""Deletion sets from MU-Bench's real index files: ratios, nesting, upstream agreement, errors."""

from __future__ import annotations

import pytest

from mu_eval.data import DataError
from mu_eval.tasks.mu_bench.deletion import deletion_indices, load_forget_indices, read_index_file, read_mask_file

RATIOS = (2, 4, 6, 8, 10)


def test_cifar100_two_percent_is_the_first_thousand_of_five_thousand(benchmark_data):
    indices = read_index_file(benchmark_data / "mubench-df" / "cifar100.txt")
    assert len(indices) == 5000
    assert deletion_indices(indices, 2) == indices[:1000]
    assert deletion_indices(indices, "2.0") == indices[:1000]


def test_bioceleb_two_percent_is_the_first_three_of_seventeen(benchmark_data):
    indices = read_index_file(benchmark_data / "mubench-df" / "bioceleb.txt")
    assert len(indices) == 17
    assert deletion_indices(indices, 2) == indices[:3]


def test_sets_are_nested_and_match_upstream_float_arithmetic(benchmark_data):
    for path in sorted((benchmark_data / "mubench-df").glob("*.txt")):
        indices = read_index_file(path)
        previous: list[int] = []
        for ratio in RATIOS:
            chosen = deletion_indices(indices, ratio)
            assert len(chosen) == int(ratio / 10 * len(indices)), (path.name, ratio)  # upstream's expression
            assert chosen[: len(previous)] == previous
            previous = chosen
        assert previous == indices


def test_load_forget_indices_finds_df_dir_and_checks_range(benchmark_data, tmp_path):
    chosen, source = load_forget_indices("bioceleb", 4, {"df_dir": str(benchmark_data / "mubench-df")}, 121)
    assert len(chosen) == 6 and source.endswith("bioceleb.txt")
    with pytest.raises(DataError, match="outside the training split"):
        load_forget_indices("bioceleb", 4, {"df_dir": str(benchmark_data / "mubench-df")}, 50)
    with pytest.raises(DataError, match="df_file=PATH"):
        load_forget_indices("cifar100", 2, {"df_dir": str(tmp_path)}, 50000)


def test_ucf101_style_boolean_masks(tmp_path):
    folder = tmp_path / "ucf101"
    folder.mkdir()
    (folder / "2.0.txt").write_text("False\nTrue\nFalse\nTrue\n")
    assert read_mask_file(folder / "2.0.txt") == [1, 3]
    chosen, _ = load_forget_indices("ucf101", 2, {"df_dir": str(tmp_path)}, 4)
    assert chosen == [1, 3]
    (tmp_path / "bad.txt").write_text("1\nx\n")
    with pytest.raises(DataError, match="line 2"):
        read_index_file(tmp_path / "bad.txt")
