"""Material names keep their Unicode; collisions are planned, never silent (issue 13)."""

from __future__ import annotations

import pytest

from classroom.materials import (
    MaterialNameError,
    clean_file_name,
    clean_folder,
    plan_uploads,
)


def test_non_ascii_names_are_kept_and_distinct() -> None:
    assert clean_file_name("数据集X.csv") == "数据集X.csv"
    assert clean_file_name("报告X.csv") == "报告X.csv"
    assert clean_file_name("Cafe\u0301.txt") == "Café.txt"  # NFC: one code point for é


def test_path_parts_and_control_characters_are_removed() -> None:
    assert clean_file_name("C:\\Users\\me\\..\\notes.txt") == "notes.txt"
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("re\x00port\u202e.csv") == "report.csv"
    assert clean_file_name("..") == "" and clean_file_name("   ") == ""
    assert clean_folder("../datasets//week 1/./") == "datasets/week 1"


def test_overlong_names_and_deep_folders_are_refused() -> None:
    with pytest.raises(MaterialNameError, match="too long"):
        clean_file_name("数" * 100 + ".csv")  # 300 bytes in UTF-8
    with pytest.raises(MaterialNameError, match="folder levels"):
        clean_folder("a/b/c/d/e")


def test_ask_lists_every_clash_and_places_nothing_that_clashes() -> None:
    plan = plan_uploads(["a.csv", "b.csv", "b.csv"], {"a.csv"}, "ask")
    assert plan.conflicts == ["a.csv", "b.csv"] and not plan.overwrite


def test_rename_keeps_both_and_replace_overwrites_only_what_was_there() -> None:
    assert plan_uploads(["a.csv", "a.csv"], {"a.csv", "a (2).csv"}, "rename").paths == ["a (3).csv", "a (4).csv"]
    plan = plan_uploads(["d/a.csv", "d/a.csv"], {"d/a.csv"}, "replace")
    assert plan.paths == ["d/a.csv", "d/a (2).csv"] and plan.overwrite and plan.conflicts == []
    with pytest.raises(MaterialNameError):
        plan_uploads(["a"], set(), "overwrite-silently")


def test_sizes_read_as_people_read_them():
    from classroom.materials import human_size

    assert human_size(0) == "0 bytes" and human_size(1) == "1 byte" and human_size(1023) == "1023 bytes"
    assert human_size(1024) == "1.0 KB" and human_size(15_900) == "15.5 KB"
    assert human_size(60 * 1024 * 1024) == "60.0 MB" and human_size(180_000_000) == "171.7 MB"
    assert human_size(3 * 1024**4) == "3.0 TB" and human_size(5 * 1024**5) == "5120.0 TB"
