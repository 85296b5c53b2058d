"""The training movie's time slider: scrub the latent map through training.

A ``MovieSlider`` is bound to a run (``bind(state)``) and reads its ``RunState.movie`` (a
``ProbeMovie``: the probe codes of every probe update, loaded with a saved run and kept live
while it trains).  Its right end is "live" (the latest codes, following training); anywhere else
it shows that frame.  ``frame_chosen`` carries the frame's ``ProbeCodes`` (None: live), and
``step_chosen`` its optimizer step (None: live) for the loss plot's mark.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

from explorer.session import RunState, rebind


class MovieSlider(QWidget):
    """A slider over the frames of the bound run's training movie."""

    frame_chosen = Signal(object)   # ProbeCodes of the chosen frame, or None for the live codes
    step_chosen = Signal(object)    # int (the frame's optimizer step) or None

    def __init__(self, state: RunState | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("movieSlider")
        self.setAccessibleName("movieSlider")
        self.state: RunState | None = None
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("movieSliderBar")
        self.slider.setAccessibleName("movieSliderBar")
        self.slider.setToolTip("Scrub the map through training; the right end follows the latest codes")
        self.slider.setPageStep(1)
        self.live_button = QToolButton(self)
        self.live_button.setText("Live")
        self.live_button.setToolTip("Back to the latest codes")
        self.live_button.clicked.connect(self.go_live)
        self.caption = QLabel(self)
        self.caption.setObjectName("movieCaption")
        self.caption.setMinimumWidth(150)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 2)
        layout.addWidget(QLabel("Training", self))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.caption)
        layout.addWidget(self.live_button)
        self.slider.valueChanged.connect(self._on_value)
        self.bind(state)

    # -- public -----------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return len(self.state.movie) if self.state is not None else 0

    @property
    def is_live(self) -> bool:
        return self.slider.value() >= self.frames - 1

    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"probe_changed": self._on_probe})
        self._update_range(live=True)
        self.frame_chosen.emit(None)
        self.step_chosen.emit(None)

    def show_frame(self, index: int) -> None:
        self.slider.setValue(index)

    def go_live(self) -> None:
        self.slider.setValue(self.slider.maximum())

    # -- internals ----------------------------------------------------------------------------------
    def _update_range(self, live: bool) -> None:
        n = self.frames
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        if live:
            self.slider.setValue(max(0, n - 1))
        self.slider.blockSignals(False)
        self.setEnabled(n > 1)
        self._caption()

    def _on_probe(self, _probe) -> None:
        live = self.is_live or self.slider.value() >= self.slider.maximum()
        self._update_range(live=live)

    def _caption(self) -> None:
        n = self.frames
        if n == 0:
            self.caption.setText("no movie")
            self.setToolTip("This run has no training movie: it is recorded while a run trains")
        elif self.is_live:
            self.caption.setText(f"live ({n} frames)")
        else:
            i = self.slider.value()
            self.caption.setText(f"step {int(self.state.movie.steps[i]):,} ({i + 1}/{n})")

    def _on_value(self, index: int) -> None:
        self._caption()
        if self.state is None or self.frames == 0 or self.is_live:
            self.frame_chosen.emit(None)
            self.step_chosen.emit(None)
            return
        frame = self.state.movie.frame(index)
        self.frame_chosen.emit(frame)
        self.step_chosen.emit(int(frame.step))
