"""The training queue: runs waiting to train, one after another, never two at once.

``TrainQueue`` holds ``QueueItem`` values (a new run's settings, or a saved run to train for N
more epochs), saves them atomically as JSON (``engine.storage.write_json``) whenever they change, so
the queue survives a relaunch, and starts the first one whenever the session has no run training
(``Session.training_changed``), the queue is not paused and ``can_start()`` allows it (the main
window lets a run's metrics be computed first).  It starts a run through ``starter(item)``, which
the main window supplies: it loads the dataset, adds the run to the session (so the runs library
shows it as it starts) and starts its thread, or says why it could not and returns None.

``QueuePanel`` shows the waiting runs with Up / Down / Cancel / Clear and Pause queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.errors import UserError
from engine.models import VARIANTS

log = logging.getLogger(__name__)
#: what a sweep in the panel can vary: engine.sweep's axis -> the words shown
SWEEP_AXES = {"beta": "β", "latent_dim": "Latent size", "level": "Noise level", "lr": "Learning rate",
              "seed": "Seed", "variant": "Variant"}
QUEUE_FORMAT = "latent-explorer-queue"
QUEUE_VERSION = 1


@dataclass(frozen=True)
class QueueItem:
    """One waiting run: ``kind`` "new" (``data``/``model``/``train``, a run folder ``name`` for a
    sweep's run) or "resume" (the saved run at ``path``, ``more_epochs`` further)."""

    kind: str
    title: str
    data: DataConfig | None = None
    model: ModelConfig | None = None
    train: TrainConfig | None = None
    name: str | None = None
    path: str | None = None
    more_epochs: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def new(cls, data: DataConfig, model: ModelConfig, train: TrainConfig, name: str | None = None,
            title: str | None = None) -> "QueueItem":
        for cfg in (data, model, train):
            cfg.validate()
        title = title or f"{VARIANTS[model.variant].title} on {data.source}, latent {model.latent_dim}, {train.epochs} epochs"
        return cls("new", title, data, model, train, name)

    @classmethod
    def resume(cls, path, more_epochs: int, name: str) -> "QueueItem":
        return cls("resume", f"Resume {name} for {more_epochs} more epoch{'s' if more_epochs != 1 else ''}",
                   path=str(path), more_epochs=int(more_epochs))

    def to_dict(self) -> dict:
        d = {"id": self.id, "kind": self.kind, "title": self.title}
        if self.kind == "new":
            d.update(data=self.data.to_dict(), model=self.model.to_dict(), train=self.train.to_dict(), name=self.name)
        else:
            d.update(path=self.path, more_epochs=self.more_epochs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "QueueItem":
        """An item read back; ValueError/UserError/KeyError/TypeError when it does not hold one."""
        kind, title, ident = d["kind"], str(d["title"]), str(d.get("id") or uuid.uuid4().hex)
        if kind == "new":
            data, model, train = (DataConfig.from_dict(d["data"]), ModelConfig.from_dict(d["model"]),
                                  TrainConfig.from_dict(d["train"]))
            for cfg in (data, model, train):
                cfg.validate()
            name = d.get("name")
            return cls("new", title, data, model, train, str(name) if name else None, id=ident)
        if kind == "resume":
            more = d["more_epochs"]
            if not isinstance(more, int) or isinstance(more, bool) or more < 1:
                raise ValueError("more_epochs is not a positive whole number")
            return cls("resume", title, path=str(d["path"]), more_epochs=more, id=ident)
        raise ValueError(f"unknown kind {kind!r}")


def parse_sweep_values(axis: str, text: str) -> list:
    """The values of a sweep as typed ("1, 4"), parsed as the CLI parses its comma lists
    (engine.sweep.parse_values: a repeated value is refused); UserError with the reason."""
    from engine.sweep import parse_values
    return parse_values(axis, text, title=SWEEP_AXES.get(axis, axis))


def confirm_large_sweep(parent: QWidget | None, n: int) -> bool:
    """True when ``n`` runs may be queued: at once up to engine.sweep.CONFIRM_ABOVE, above it
    only when the person says yes to the question (the CLI's --yes)."""
    from PySide6.QtWidgets import QMessageBox

    from engine.sweep import CONFIRM_ABOVE
    if n <= CONFIRM_ABOVE:
        return True
    answer = QMessageBox.question(parent, "Queue a large sweep",
                                  f"This sweep plans {n} runs, more than {CONFIRM_ABOVE}; they train one after "
                                  "another. Queue them all?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def sweep_items(configs: tuple, axis: str, text: str) -> list[QueueItem]:
    """One queue item per value of ``axis`` (engine.sweep's expansion: names, validation); UserError."""
    from engine.errors import ConfigError
    from engine.sweep import describe, expand
    data, model, train = configs
    values = parse_sweep_values(axis, text)
    try:
        items = expand(data, model, train, {axis: values})
    except ConfigError as exc:
        message = str(exc)
        if message.startswith(f"{axis} is not a parameter"):   # the engine's wording: say it the panel's way
            message = (f"{SWEEP_AXES.get(axis, axis)} is not a setting of the {VARIANTS[model.variant].title}; "
                       "choose a variant that has it, or sweep over another parameter.")
        raise UserError(message) from None
    if len(items) < len(values):
        raise UserError(f"The {VARIANTS[model.variant].title} has no {SWEEP_AXES.get(axis, axis)}: "
                        "a sweep over it would train the same run again.")
    out = []
    for item in items:
        title = (f"{VARIANTS[item.model.variant].title} on {item.data.source}, {describe(item.swept) or axis}, "
                 f"latent {item.model.latent_dim}, {item.train.epochs} epochs")
        out.append(QueueItem.new(item.data, item.model, item.train, name=item.name, title=title))
    return out


class TrainQueue(QObject):
    """Waiting runs, started one at a time as the session becomes idle."""

    changed = Signal(object)         # list[QueueItem]: the waiting runs, first to train first
    started = Signal(object)         # (QueueItem, RunState): a queued run began training
    paused_changed = Signal(object)  # bool
    failed = Signal(str)             # one sentence (the queue could not be saved, a run did not start)

    def __init__(self, session, starter: Callable, path: str | Path | None = None,
                 can_start: Callable[[], bool] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.starter = starter
        self.path = Path(path) if path is not None else None
        self.can_start = can_start or (lambda: True)
        self.items: list[QueueItem] = []
        self.paused = False
        self.notes: list[str] = []   # what loading the saved queue skipped
        self._check = QTimer(self, singleShot=True, interval=0)
        self._check.timeout.connect(self._start_next)
        self._load()
        session.training_changed.connect(lambda _state: self.poke())

    # -- persistence ------------------------------------------------------------------------
    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        from engine.storage import read_json
        try:
            raw = read_json(self.path, "a run queue")
            if not isinstance(raw, dict) or raw.get("format") != QUEUE_FORMAT or not isinstance(raw.get("items"), list):
                raise ValueError("it is not a Latent Explorer queue")
        except (UserError, ValueError) as exc:
            aside = self.path.with_name(self.path.name + ".unreadable")
            try:
                self.path.replace(aside)   # kept for a person to look at; never overwritten silently
            except OSError:
                pass
            self.notes.append(f"The saved queue {self.path} could not be read ({exc}); it was moved to {aside}.")
            log.warning(self.notes[-1])
            return
        for entry in raw["items"]:
            try:
                self.items.append(QueueItem.from_dict(entry))
            except (UserError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self.notes.append(f"A queued run was skipped: {str(exc).rstrip('.')}.")
                log.warning(self.notes[-1])
        self.paused = bool(raw.get("paused", False))

    def save(self) -> None:
        """Write the queue atomically (a failure says so and keeps the previous file)."""
        if self.path is None:
            return
        from engine.storage import write_json
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"format": QUEUE_FORMAT, "version": QUEUE_VERSION, "paused": self.paused,
                                   "items": [item.to_dict() for item in self.items]})
        except (UserError, OSError) as exc:
            self.failed.emit(f"The queue could not be saved to {self.path} ({exc}).")

    def _changed(self) -> None:
        self.save()
        self.changed.emit(list(self.items))
        self.poke()

    # -- editing ----------------------------------------------------------------------------
    def add(self, items: QueueItem | Sequence[QueueItem]) -> None:
        self.items.extend([items] if isinstance(items, QueueItem) else list(items))
        self._changed()

    def remove(self, item_id: str) -> None:
        self.items = [item for item in self.items if item.id != item_id]
        self._changed()

    def move(self, item_id: str, delta: int) -> None:
        """Move an item up (delta < 0) or down the queue."""
        index = next((i for i, item in enumerate(self.items) if item.id == item_id), None)
        if index is None:
            return
        target = max(0, min(len(self.items) - 1, index + delta))
        self.items.insert(target, self.items.pop(index))
        self._changed()

    def clear(self) -> None:
        self.items = []
        self._changed()

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self.save()
            self.paused_changed.emit(paused)
            self.poke()

    # -- running ----------------------------------------------------------------------------
    def poke(self) -> None:
        """Look, in the next pass of the event loop, whether the first run can start."""
        self._check.start()

    def _start_next(self) -> None:
        while self.items and not self.paused and not self.session.is_busy() and self.can_start():
            item = self.items.pop(0)
            self.save()
            self.changed.emit(list(self.items))
            state = self.starter(item)
            if state is not None:
                self.started.emit((item, state))
                return
            # it did not start (the starter said why): the next one may


def _button(text: str) -> QToolButton:
    """A button as wide as its text: five push buttons (80 px each at least, in Fusion) made the
    runs dock 435 px wide, and the map's own controls (UMAP's Recompute, the z spin boxes) then
    pushed the window past a 1280-pixel screen."""
    button = QToolButton()
    button.setText(text)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button


class QueuePanel(QWidget):
    """The waiting runs, with Up, Down, Cancel, Clear and Pause queue."""

    def __init__(self, queue: TrainQueue, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("queuePanel")
        self.queue = queue
        self.list = QListWidget()
        self.list.setObjectName("queueList")
        self.list.setAccessibleName("queueList")
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.status = QLabel()
        self.status.setObjectName("queueStatus")
        self.status.setWordWrap(True)
        self.up = _button("Up")
        self.down = _button("Down")
        self.cancel = _button("Cancel")
        self.cancel.setToolTip("Take the selected run out of the queue.")
        self.clear = _button("Clear")
        self.clear.setToolTip("Take every waiting run out of the queue (the run that trains goes on).")
        self.pause = _button("Pause queue")
        self.pause.setCheckable(True)
        self.pause.setToolTip("Start no further queued run until unpaused (the run that trains goes on).")
        for button, name in ((self.up, "queueUpButton"), (self.down, "queueDownButton"),
                             (self.cancel, "queueCancelButton"), (self.clear, "queueClearButton"),
                             (self.pause, "queuePauseButton")):
            button.setObjectName(name)
        buttons = QHBoxLayout()
        for button in (self.up, self.down, self.cancel, self.clear, self.pause):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(1))
        self.cancel.clicked.connect(self._cancel)
        self.clear.clicked.connect(queue.clear)
        self.pause.toggled.connect(queue.set_paused)
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        queue.changed.connect(self._show)
        queue.paused_changed.connect(self._show_paused)
        queue.session.training_changed.connect(lambda _s: self._show_status())
        self._show(queue.items)
        self._show_paused(queue.paused)

    def _selected_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _move(self, delta: int) -> None:
        ident = self._selected_id()
        if ident is not None:
            self.queue.move(ident, delta)
            rows = [item.id for item in self.queue.items]
            if ident in rows:
                self.list.setCurrentRow(rows.index(ident))

    def _cancel(self) -> None:
        ident = self._selected_id()
        if ident is not None:
            self.queue.remove(ident)

    def _show(self, items: list[QueueItem]) -> None:
        selected = self._selected_id()
        self.list.clear()
        for i, item in enumerate(items):
            row = QListWidgetItem(f"{i + 1}. {item.title}")
            row.setData(Qt.ItemDataRole.UserRole, item.id)
            row.setToolTip(item.name or item.path or item.title)
            self.list.addItem(row)
            if item.id == selected:
                self.list.setCurrentItem(row)
        self._show_status()
        self._update_buttons()

    def _show_paused(self, paused: bool) -> None:
        self.pause.blockSignals(True)
        self.pause.setChecked(paused)
        self.pause.blockSignals(False)
        self.pause.setText("Unpause queue" if paused else "Pause queue")
        self._show_status()

    def _show_status(self) -> None:
        n = len(self.queue.items)
        training = self.queue.session.training_run()
        waiting = f"{n} run{'s' if n != 1 else ''} waiting" if n else "No run waiting"
        now = f"; training now: {training.name}" if training is not None else ""
        paused = " (queue paused)" if self.queue.paused else ""
        self.status.setText(f"{waiting}{paused}{now}.")

    def _update_buttons(self) -> None:
        row = self.list.currentRow()
        has = row >= 0
        self.up.setEnabled(has and row > 0)
        self.down.setEnabled(has and row < self.list.count() - 1)
        self.cancel.setEnabled(has)
        self.clear.setEnabled(self.list.count() > 0)
