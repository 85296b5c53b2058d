"""Fixtures shared by the GUI tests."""

import pytest

from engine.datasets import load_dataset
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model
from tests.window_fixtures import window  # noqa: F401


@pytest.fixture(scope="session")
def run_paths(tmp_path_factory):
    """Two small trained runs on the bundled digits: a VAE (2 epochs) and an AE (1 epoch)."""
    parent = tmp_path_factory.mktemp("runs")
    dataset = load_dataset(DIGITS)
    paths = []
    for variant, epochs in (("vae", 2), ("ae", 1)):
        trainer = Trainer(DIGITS, small_model(variant), quick_train(epochs=epochs), dataset=dataset, run_parent=parent)
        trainer.run_to_end()
        paths.append(trainer.run.path)
    return paths
