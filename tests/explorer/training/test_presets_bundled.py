"""Every preset shipped in resources/presets/ validates against the registry (none is skipped)."""

from explorer.resources import resources_dir
from explorer.training.presets import load_presets


def test_every_bundled_preset_loads(caplog):
    shipped = sorted(p.stem for p in (resources_dir() / "presets").glob("*.json"))
    loaded = [p.key for p in load_presets()]
    assert shipped and all(name in loaded for name in shipped), caplog.text
    assert "skipped" not in caplog.text
