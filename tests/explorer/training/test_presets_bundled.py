"""Every preset shipped in resources/presets/ validates against the registry (none is skipped), and
an unreadable preset of the person's own is skipped without stopping the others or the start-up."""

import json
import logging

import explorer.training.presets as presets_module
from explorer.resources import resources_dir
from explorer.training.presets import load_presets
from tests.window_fixtures import close_window, open_window

NESTED = "[" * 100_000 + "]" * 100_000


def test_every_bundled_preset_loads(caplog):
    shipped = sorted(p.stem for p in (resources_dir() / "presets").glob("*.json"))
    loaded = [p.key for p in load_presets()]
    assert shipped and all(name in loaded for name in shipped), caplog.text
    assert "skipped" not in caplog.text


def user_presets(tmp_path):
    """A user presets folder: a deeply nested file first, then a good preset after it."""
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "a-nested.json").write_text(NESTED)
    good = json.loads((resources_dir() / "presets" / "05-beta-vae-4.json").read_text())
    (folder / "b-mine.json").write_text(json.dumps({**good, "title": "Mine"}))
    return folder


def test_a_deeply_nested_preset_is_skipped_in_one_sentence_and_the_next_loads(tmp_path, caplog):
    folder = user_presets(tmp_path)
    with caplog.at_level(logging.WARNING):
        presets = load_presets([folder])
    assert [p.key for p in presets] == ["b-mine"]
    (message,) = [r.getMessage() for r in caplog.records]
    assert "a-nested.json" in message and "nested too deeply" in message and "\n" not in message


def test_start_up_survives_a_deeply_nested_user_preset(qtbot, tmp_path, monkeypatch):
    folder = user_presets(tmp_path)
    monkeypatch.setattr(presets_module, "preset_dirs", lambda: [resources_dir() / "presets", folder])
    w = open_window(qtbot, tmp_path / "runs")
    try:
        qtbot.waitUntil(lambda: w.views_built, timeout=30_000)
        assert "b-mine" in [p.key for p in w.presets]
        assert w.training_panel.preset.findData("b-mine") >= 0
    finally:
        close_window(w)
