"""File → Open embeddings… (explorer/map/embeddings_window.py): a map of codes without a run,
coloured by label, hovering names the point's index and label; a bad file is one sentence."""

import numpy as np
from PySide6.QtWidgets import QMessageBox

from explorer.map.embeddings_window import EmbeddingsWindow, load_for_map


def test_a_map_of_codes_without_a_run_colours_by_label_and_hover_names_the_point(qtbot, tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(3000, 5)).astype(np.float32)
    labels = rng.integers(0, 3, 3000)
    np.savez(tmp_path / "codes.npz", codes=codes, labels=labels, class_names=np.array(["cat", "dog", "eel"]))
    loaded = load_for_map(tmp_path / "codes.npz")
    assert loaded.xy.shape == (3000, 2) and "PCA" in loaded.layout
    window = EmbeddingsWindow(loaded)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.points.n_points == 3000 and len(set(window.points._argb.tolist())) == 3
    x, y = loaded.xy[1234]
    assert window.hover_at(x, y) == 1234
    assert window.hover_note.text() == f"point 1,234: {['cat', 'dog', 'eel'][labels[1234]]} (label {labels[1234]})"
    far = loaded.xy.max(axis=0) + 100
    assert window.hover_at(*far) is None and "3,000 codes" in window.hover_note.text()


def test_open_embeddings_from_the_file_menu_and_a_bad_file_is_one_sentence(window, qtbot, tmp_path):
    (tmp_path / "two.csv").write_text("index,label,z0,z1\n0,1,0.5,0.25\n1,0,-1,2\n")
    with qtbot.waitSignal(window.menu_actions.open_embeddings(str(tmp_path / "two.csv")).finished, timeout=20_000):
        pass
    shown = window.embeddings_windows[-1]
    assert shown.loaded.xy.tolist() == [[0.5, 0.25], [-1.0, 2.0]] and shown.isVisible()
    assert shown.hover_at(-1.0, 2.0) == 1 and shown.hover_note.text() == "point 1: 0"
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with qtbot.waitSignal(window.menu_actions.open_embeddings(str(tmp_path / "bad.csv")).failed, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: isinstance(window.message_box, QMessageBox) and window.message_box.isVisible())
    text = window.message_box.text()
    assert text == "bad.csv has no columns named z0, z1, … in its first row." and len(window.embeddings_windows) == 1
    window.message_box.close()
    shown.close()


def test_an_embeddings_file_on_the_command_line_opens_its_map(window, qtbot, tmp_path, run_paths):
    from explorer.window.start_up import open_paths
    np.savez(tmp_path / "codes.npz", codes=np.zeros((10, 2)), labels=np.arange(10) % 3)
    (task,) = open_paths(window, [str(tmp_path / "codes.npz"), str(run_paths[1])])
    qtbot.waitUntil(lambda: bool(getattr(window, "embeddings_windows", [])), timeout=20_000)   # the run opened meanwhile
    assert len(window.embeddings_windows[-1].loaded.xy) == 10 and len(window.session.runs) == 1
    window.embeddings_windows[-1].close()
