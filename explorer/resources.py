"""Where the app's resources live: the top-level ``resources/`` folder of the checkout (found the
same way from a clean clone and from an editable install), or the folder named by
``LATENT_EXPLORER_RESOURCES``; and the person's own presets folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

RESOURCES_ENV = "LATENT_EXPLORER_RESOURCES"


def resources_dir() -> Path:
    override = os.environ.get(RESOURCES_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[1] / "resources"


def icon_path() -> Path:
    return resources_dir() / "icon.png"


def user_presets_dir() -> Path:
    """A folder where a person (a lecturer) puts presets of their own, beside the bundled ones."""
    return platformdirs.user_data_path("latent-explorer") / "presets"


def preset_dirs() -> list[Path]:
    return [resources_dir() / "presets", user_presets_dir()]


#: the training queue's file, in the settings folder (explorer/training/queue.py)
QUEUE_FILE = "train-queue.json"
