"""Attributes: the direction from one class's codes to another's, walked from the cursor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.datasets import load_dataset
from engine.history import ProbeCodes
from explorer.insights.attributes import AttributesView
from explorer.session import LatentCursor, RunState
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def test_the_row_walks_the_cursor_along_mean_b_minus_mean_a(qtbot, digits):
    state = RunState(DIGITS, small_model("vae", latent_dim=3), quick_train(), dataset=digits)
    idx = torch.arange(150)
    with torch.no_grad():
        codes = state.model.encode(digits.val.images[idx].float() / 255).numpy()
    labels = digits.val.labels[idx].numpy()
    state.probe = ProbeCodes(codes, labels, idx.numpy())
    cursor = LatentCursor()
    view = AttributesView(state, cursor)
    qtbot.addWidget(view)
    view.resize(480, 360)
    view.show()
    qtbot.waitExposed(view)
    state.probe_changed.emit(state.probe)
    assert view.a_combo.count() == len(set(labels)) and view.a_combo.currentData() == 0
    view.b_combo.setCurrentIndex(view.b_combo.findData(7))
    figure = view.figure()
    expected = codes[labels == 7].mean(0) - codes[labels == 0].mean(0)
    np.testing.assert_allclose(view.direction, expected, rtol=1e-5)
    assert figure is not None and len(figure.cells[0]) == 9 and figure.row_labels == ["0→7"]
    middle = state.decode(codes[labels == 0].mean(0)[None].astype(np.float32), None)[0]
    np.testing.assert_allclose(figure.cells[0][4], middle, atol=1e-5)   # the cursor (no cursor yet: A's mean)
    cursor.set_code(codes[5], "test")
    np.testing.assert_allclose(view.figure().cells[0][4], state.decode(codes[5][None], None)[0], atol=1e-5)
    view.set_groups(np.array([0, 1]), np.array([2, 3]))
    view.figure()
    np.testing.assert_allclose(view.direction, codes[[2, 3]].mean(0) - codes[[0, 1]].mean(0), rtol=1e-5)
