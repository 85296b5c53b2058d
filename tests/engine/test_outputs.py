"""The check every export makes before it writes: the suffix (any case) and the folder."""

from pathlib import Path

import pytest

from engine.errors import UserError
from engine.outputs import output_target


def test_a_name_with_a_listed_suffix_in_an_existing_folder_comes_back_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert output_target("~/figure.PNG", (".png", ".svg"), "a figure") == tmp_path / "figure.PNG"
    assert output_target(tmp_path / "t.csv", (".csv",), "a table") == Path(tmp_path / "t.csv")


def test_another_suffix_or_a_missing_folder_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match=r"^Cannot write a figure to f\.jpg: use \.png or \.svg\.$"):
        output_target(tmp_path / "f.jpg", (".png", ".svg"), "a figure")
    with pytest.raises(UserError, match=r"^Cannot write the map to m: use a name ending in \.csv\.$"):
        output_target(tmp_path / "m", (".csv",), "the map", "a name ending in .csv")
    with pytest.raises(UserError, match="does not exist"):
        output_target(tmp_path / "nowhere" / "f.png", (".png",), "a figure")
