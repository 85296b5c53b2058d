"""The training panel: refusals inline with the reason, notes that are not errors, editors from
the parameters' metadata, presets, and the settings of the selected run (read-only)."""

import json
import logging
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox, QWidget

from engine.datasets import load_dataset
from engine.models.base import param
from explorer.resources import resources_dir
from explorer.session import RunState, Session
from explorer.training.panel import KNOWN_TRAIN_SIZES, NO_HIDDEN_NOTE, TrainingPanel
from explorer.training.params_form import CompactSpinBox, ParamsForm
from explorer.training.presets import load_presets
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture
def session():
    return Session()


@pytest.fixture
def panel(qtbot, session):
    widget = TrainingPanel(session, load_presets())
    qtbot.addWidget(widget)
    widget.resize(340, 700)
    widget.show()
    return widget


def type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)


def test_a_latent_size_of_zero_is_refused_inline_not_replaced(qtbot, panel):
    type_into(qtbot, panel.latent, "0")
    panel.latent.clearFocus()
    assert panel.latent.value() == 0 and panel.latent.text() == "0"   # it used to revert quietly to 2
    assert not panel.start.isEnabled() and "latent size" in panel.error.text().lower()
    assert panel.error.isVisible()
    type_into(qtbot, panel.latent, "600")
    assert not panel.start.isEnabled() and "512" in panel.error.text()
    type_into(qtbot, panel.latent, "8")
    assert panel.start.isEnabled() and not panel.error.isVisible()


def test_epochs_and_batch_size_of_zero_are_refused_with_the_reason(panel):
    panel.epochs.setValue(0)
    assert not panel.start.isEnabled() and "Epochs" in panel.error.text()
    panel.epochs.setValue(3)
    panel.batch.setValue(0)
    assert not panel.start.isEnabled() and "batch size" in panel.error.text()


def test_a_batch_larger_than_the_training_set_says_it_will_be_clamped(panel):
    assert KNOWN_TRAIN_SIZES["digits"] == len(load_dataset(DIGITS).train)
    panel.dataset.setCurrentIndex(panel.dataset.findData("digits"))
    panel.batch.setValue(9999)
    assert panel.start.isEnabled()   # a valid choice, said out loud
    assert "9,999" in panel.notice.text() and "1,617" in panel.notice.text() and panel.notice.isVisible()
    panel.batch.setValue(128)
    assert "1,617" not in panel.notice.text()


def test_empty_hidden_widths_say_there_is_no_hidden_layer(panel):
    panel.hidden.setText("")
    assert panel.start.isEnabled() and NO_HIDDEN_NOTE in panel.notice.text()
    assert "no hidden layer" in panel.hidden.placeholderText()


def test_the_dataset_notes_show_in_the_panel(panel):
    panel.set_dataset_notes(["3 files skipped: not images."])
    assert "3 files skipped" in panel.notice.text() and panel.notice.isVisible()


@dataclass(frozen=True)
class FakeParams:
    k: int = param(5, "Samples k", minimum=1, maximum=50, help="Importance samples.")
    prior: str = param("gaussian", "Prior", choices=("gaussian", "mixture"),
                       labels={"gaussian": "Standard normal", "mixture": "Mixture of Gaussians"})
    components: int = param(10, "Components", minimum=1, maximum=100, when={"prior": ("mixture",)})
    label_prior: bool = param(False, "Label informs the prior")
    weight: float = param(0.0, "Warm-up (epochs)", minimum=0.0, maximum=100.0, step=1.0)


def test_editors_follow_the_metadata(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    form = QFormLayout(host)
    anchor = QLabel("anchor")
    form.addRow("Anchor", anchor)
    params = ParamsForm(form, anchor)
    params.set_params_class(FakeParams)
    host.show()
    e = params.editors
    assert isinstance(e["k"], QSpinBox) and not isinstance(e["k"], CompactSpinBox) and e["k"].value() == 5
    assert isinstance(e["prior"], QComboBox) and e["prior"].currentText() == "Standard normal"
    assert isinstance(e["label_prior"], QCheckBox)
    assert e["weight"].text() == "0"                                     # not 0.0000
    assert "components" not in params.visible_names() and not e["components"].isVisibleTo(host)
    e["prior"].setCurrentIndex(e["prior"].findData("mixture"))
    assert e["components"].isVisibleTo(host)
    e["k"].setValue(7)
    e["label_prior"].setChecked(True)
    values = params.values()
    assert values == FakeParams(k=7, prior="mixture", components=10, label_prior=True, weight=0.0)
    assert type(values.k) is int
    assert form.getWidgetPosition(e["k"])[0] == 1   # rows of the host form, after the anchor
    params.set_values(FakeParams(k=9, prior="gaussian"))
    assert e["k"].value() == 9 and not e["components"].isVisibleTo(host)


def test_compact_numbers_accept_scientific_input(qtbot):
    spin = CompactSpinBox()
    qtbot.addWidget(spin)
    spin.setRange(0, 1)
    spin.setValue(1e-4)
    assert spin.text() == "0.0001"
    assert spin.validate("1e-5", 4)[0].name == "Acceptable" and spin.valueFromText("1e-5") == 1e-5
    assert spin.validate("nan", 3)[0].name == "Invalid"


def test_the_bundled_presets_load_and_unknown_variants_are_skipped(tmp_path, caplog):
    keys = {p.key for p in load_presets()}
    caplog.clear()
    assert {"01-vae-manifold-mnist", "02-denoising-salt-pepper", "03-linear-ae-pca", "05-beta-vae-4"} <= keys
    names = sorted(p.name for p in (resources_dir() / "presets").glob("*.json"))
    assert len(names) >= 6
    good = json.loads((resources_dir() / "presets" / "05-beta-vae-4.json").read_text())
    (tmp_path / "a-good.json").write_text(json.dumps(good))
    (tmp_path / "b-broken.json").write_text("{ nope")
    (tmp_path / "c-unknown.json").write_text(json.dumps({**good, "model": {"variant": "no_such_model"}}))
    (tmp_path / "d-bad-value.json").write_text(json.dumps({**good, "model": {**good["model"], "latent_dim": 0}}))
    (tmp_path / "e-bad-param.json").write_text(json.dumps({**good, "model": {**good["model"], "params": {"k": 5}}}))
    with caplog.at_level(logging.WARNING):
        presets = load_presets([tmp_path])
    assert [p.key for p in presets] == ["a-good"]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 4 and all("was skipped" in m for m in skipped)


def test_a_preset_sets_up_its_experiment(qtbot, panel):
    preset = next(p for p in panel.presets if p.key == "02-denoising-salt-pepper")
    seen = []
    panel.preset_applied.connect(seen.append)
    index = panel.preset.findData(preset.key)
    panel.preset.setCurrentIndex(index)
    panel.preset.activated.emit(index)
    assert seen == [preset]
    data, model, train = panel.configs()
    assert model.variant == "denoising_ae" and model.params.noise == "salt_pepper" and model.params.level == 0.25
    assert panel.params.editors["noise"].currentText() == "Salt and pepper"
    assert panel.preset.currentIndex() == index
    panel.epochs.setValue(7)   # edited: no longer the preset as written
    assert panel.preset.currentIndex() == 0


def test_the_panel_shows_the_selected_runs_settings_read_only(qtbot, panel, session, run_paths):
    panel.latent.setValue(7)    # typed, then another run is selected
    vae = session.add(RunState.open(run_paths[0]))
    assert panel.latent.value() == vae.model_cfg.latent_dim == 2
    assert panel.model.currentData() == "vae" and panel.epochs.value() == vae.train_cfg.epochs
    assert not panel.latent.isEnabled() and not panel.model.isEnabled() and panel.read_only_note.isVisible()
    assert not panel.epochs.isEnabled()    # Resume asks how many more epochs
    assert panel.new_run.isEnabled()
    seen = []
    panel.new_run_requested.connect(lambda: (seen.append(1), session.set_active(None)))
    panel.new_run.click()
    assert seen and panel.latent.isEnabled() and panel.latent.value() == 2 and not panel.read_only_note.isVisible()
    session.add(RunState(DIGITS, small_model("ae", latent_dim=3), quick_train()))
    assert panel.latent.isEnabled() and panel.latent.value() == 3   # a new run's settings are editable


def test_focus_stays_near_start_when_training_starts(qtbot, panel, session):
    panel.start.setFocus()
    qtbot.waitUntil(panel.start.hasFocus)
    state = session.add(RunState(DIGITS, small_model("ae"), quick_train()))
    state.job = SimpleNamespace(is_running=lambda: True)   # as if its thread had started
    try:
        state._set_status("running")   # as start() does: Start disables itself
        assert not panel.start.isEnabled()
        assert QApplication.focusWidget() in (panel.pause, panel.stop), QApplication.focusWidget()
    finally:
        state.job = None


def test_every_refused_field_is_outlined_with_its_reason_at_once(qtbot, panel):
    panel.latent.setValue(0)
    panel.lr.setText("fast")
    assert set(panel.form.refused_widgets()) == {panel.latent, panel.lr}
    reasons = panel.error.text().splitlines()
    assert len(reasons) == 2 and "latent size" in reasons[0].lower() and "learning rate" in reasons[1].lower()
    for widget in (panel.latent, panel.lr):
        assert widget.property("refused") is True
        assert widget.accessibleDescription() in reasons
        assert _has_red_frame(widget)
    assert not _has_red_frame(panel.epochs) and not panel.start.isEnabled()
    panel.latent.setValue(8)   # fixing one removes its outline, the other stays
    assert panel.form.refused_widgets() == [panel.lr] and panel.latent.property("refused") is False
    assert not _has_red_frame(panel.latent) and _has_red_frame(panel.lr)
    assert panel.latent.accessibleDescription() == "" and "latent" not in panel.error.text().lower()
    panel.lr.setText("1e-3")
    assert panel.start.isEnabled() and not panel.error.isVisible() and panel.form.refused_widgets() == []


def _has_red_frame(widget) -> bool:
    """The widget's left edge, half-way down, is drawn in the refusal red (#d32f2f)."""
    image = widget.grab().toImage()
    column = [image.pixelColor(x, image.height() // 2) for x in range(3)]
    return any(c.red() > 180 and c.green() < 90 and c.blue() < 90 for c in column)


def _line_breaks(formula: str, width: int) -> list[str]:
    """The lines a word-wrapping QLabel (wrap at word boundaries, else anywhere) makes of the formula."""
    from PySide6.QtGui import QTextDocument, QTextOption

    from explorer.training.form import formula_html
    doc = QTextDocument()
    option = doc.defaultTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    doc.setDefaultTextOption(option)
    doc.setHtml(formula_html(formula))
    doc.setTextWidth(width)
    doc.documentLayout().documentSize()
    layout, text = doc.begin().layout(), doc.begin().text()
    lines = [text[layout.lineAt(i).textStart():][:layout.lineAt(i).textLength()] for i in range(layout.lineCount())]
    return [line.replace("\u2060", "").replace("\xa0", " ").strip() for line in lines]


def _short_groups(text: str) -> list[tuple[int, int]]:
    """(start, end) of every bracket group of at most PROSE_BRACKETS characters."""
    from explorer.training.form import PROSE_BRACKETS
    groups, opened = [], []
    for i, ch in enumerate(text):
        if ch in "([{":
            opened.append(i)
        elif ch in ")]}" and opened:
            start = opened.pop()
            if i - start + 1 <= PROSE_BRACKETS:
                groups.append((start, i + 1))
    return groups


def test_a_formula_wraps_only_between_its_terms_never_inside_their_brackets(qapp):
    from engine.models import VARIANTS
    assert _line_breaks(VARIANTS["vae"].formula, 290) == ["−ELBO = −E_q(z|x)[log p(x|z)] +", "KL(q(z|x) ‖ N(0, I))"]
    for key, spec in VARIANTS.items():
        text = " ".join(spec.formula.split())
        groups = _short_groups(text)
        for width in range(230, 480, 10):   # wide enough for the widest term and short group of every formula
            lines = _line_breaks(spec.formula, width)
            assert " ".join(lines) == text, (key, width, lines)   # breaks only at spaces
            offset = 0
            for line in lines[:-1]:
                offset += len(line) + 1
                assert not any(start < offset < end for start, end in groups), (key, width, lines)


def test_the_progress_text_is_dark_over_the_fill_as_over_the_rest(qtbot, panel):
    bar = panel.progress
    bar.setValue(500)
    bar.setFormat("epoch 12/30 · step 123456 · 1,234/s · ETA 0:42")
    bar.resize(320, bar.sizeHint().height())
    image = bar.grab().toImage()
    fill_end = bar.width() // 2

    def dark_pixels(x0, x1):
        return sum(image.pixelColor(x, y).lightness() < 60
                   for x in range(x0, x1) for y in range(3, image.height() - 3))

    assert dark_pixels(6, fill_end - 4) > 20 and dark_pixels(fill_end + 4, bar.width() - 6) > 20


def test_the_panel_starts_from_the_measured_first_run(qtbot):
    """At first launch the panel showed an autoencoder for 30 epochs of batch 128 at lr 1e-3; a VAE with
    those settings collapsed (KL 0.06 nats after 8 epochs). It offers engine.defaults.default_run()."""
    from engine.defaults import default_run
    from explorer.session import Session
    from explorer.training.panel import TrainingPanel
    panel = TrainingPanel(Session(), presets=[])
    qtbot.addWidget(panel)
    data, model, train = panel.configs()
    want = default_run()
    assert (data.source, model.variant, model.latent_dim, model.hidden, model.likelihood) == \
        (want[0].source, want[1].variant, want[1].latent_dim, want[1].hidden, want[1].likelihood) == \
        ("digits", "vae", 2, (512, 256), "bernoulli")
    assert (train.epochs, train.batch_size, train.lr) == (want[2].epochs, want[2].batch_size, want[2].lr) == (60, 64, 2e-3)


def test_the_missing_data_note_follows_the_data_folder(qtbot, tmp_path):
    """'MNIST is not in …' stayed after the folder changed: the note is about the folder typed now."""
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    empty, full = tmp_path / "empty", tmp_path / "full"
    raw = full / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (raw / name).write_bytes(b"x")
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"x")   # a gzipped copy counts: it is unpacked on loading
    panel.dataset.setCurrentIndex(panel.dataset.findData("mnist"))
    panel.root.setText(str(empty))
    assert f"MNIST is not in {empty / 'MNIST' / 'raw'}" in panel.notice.text()
    panel.set_dataset_notes(["3 files skipped: not images"])
    assert "3 files skipped" in panel.notice.text()
    panel.root.setText(str(full))
    assert "is not in" not in panel.notice.text() and "skipped" not in panel.notice.text(), panel.notice.text()
    panel.dataset.setCurrentIndex(panel.dataset.findData("digits"))
    assert "is not in" not in panel.notice.text()


def test_the_status_line_forgets_a_missing_data_error_when_the_folder_changes(window, tmp_path):
    message = (f"MNIST is not in {tmp_path}/MNIST/raw: place train-images-idx3-ubyte there "
               "(gzipped .gz files work too) or press Download.")
    window.show_error(message, "The dataset could not be loaded")
    assert window.state_label.full_text().startswith("MNIST is not in")
    window.training_panel.root.setText(str(tmp_path / "elsewhere"))
    assert "is not in" not in window.state_label.full_text()
    window.show_error("Training stopped: the loss became NaN at step 10.", "Training stopped")
    window.training_panel.root.setText(str(tmp_path / "again"))
    assert window.state_label.full_text().startswith("Training stopped"), "only the stale data error goes"
