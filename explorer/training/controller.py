"""What the window's training buttons do, without a widget: start a run (its dataset read in the
background through explorer/dataset_cache.py), queue runs and sweeps while one trains, resume a
saved run, open a run folder, download a dataset, and evaluate a run once it completes.

The window connects the signals to its dialogs, status bar and training panel: ``failed`` (one
sentence and a dialog title), ``reported`` (a status line), ``load_progress_changed`` (the panel's
loading row, None to hide it), ``download_progress_changed`` ((done, total) or None) and
``dataset_notes_changed`` (what the panel says about the dataset as loaded).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.errors import UserError
from explorer.dataset_cache import datasets, loads_quickly
from explorer.run_metrics import MetricsRunner
from explorer.session import RunState
from explorer.training.queue import QueueItem, TrainQueue, sweep_items


def dataset_notes(dataset, batch_size: int) -> list[str]:
    """What the panel says about a dataset as loaded: files it skipped, a batch it clamps."""
    notes = list(getattr(dataset, "notes", None) or [])
    for split in (dataset.train, dataset.val):
        notes += [n for n in getattr(split, "notes", None) or [] if n not in notes]
    n_train = len(dataset.train)
    if batch_size > n_train:
        notes.append(f"The batch size {batch_size:,} is larger than the {n_train:,} training images: "
                     f"each epoch is one batch of {n_train:,}.")
    return notes


class TrainingController(QObject):
    """Starts, queues, resumes and evaluates the session's runs (one training at a time)."""

    failed = Signal(str, str)                  # (one sentence, the dialog's title)
    reported = Signal(str, str)                # (a status line, its tooltip or "")
    load_progress_changed = Signal(object)     # the panel's "Loading …" text, None when no load shows
    download_progress_changed = Signal(object)  # (done, total) bytes, None when the download ended
    dataset_notes_changed = Signal(object)     # list[str]
    configs_started = Signal(object)           # (DataConfig, ModelConfig, TrainConfig) a new run starts with
    run_opened = Signal(object)                # the Path of a run folder opened by hand

    def __init__(self, session, runs_dir: Path, queue_path: Path | None, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.runs_dir = Path(runs_dir)
        self.metrics_runner = MetricsRunner(parent=self)
        self.train_queue = TrainQueue(session, self.start_queued, queue_path,
                                      can_start=lambda: not self.metrics_runner.is_busy() and not self.is_loading_dataset(),
                                      parent=self)
        self._last_training = None   # the run that trained last (evaluated once it completes)
        self.queued_state = None     # the run the queue started last
        self._download = None
        #: asked before a sweep of more than engine.sweep.CONFIRM_ABOVE runs is queued (the window sets a
        #: dialog: explorer.training.queue.confirm_large_sweep); without a window, yes
        self.confirm_sweep = lambda n: True
        self.metrics_runner.became_idle.connect(self.train_queue.poke)
        datasets().load_ended.connect(self._on_load_ended)   # a slot of ours: let go when this window goes
        session.training_changed.connect(self._on_training_changed)

    # -- new runs -------------------------------------------------------------------------------
    def start_training(self, configs):
        """Start a new run with these settings, or queue it while another run trains or a dataset
        loads (one training at a time).  The dataset loads in the background, with progress in the
        panel, unless it is the bundled digits (milliseconds)."""
        if self.session.is_busy() or self.is_loading_dataset():
            self.queue_configs(configs)
            return None
        self.configs_started.emit(configs)
        data = configs[0]
        if loads_quickly(data):
            return self.start_new(*configs)
        self.load_progress_changed.emit(f"Loading {data.source}…")
        self.reported.emit(f"Loading {data.source} in the background…", "")

        def loaded(dataset) -> None:
            self.load_progress_changed.emit(None)
            self._start_with(configs, dataset)

        def failed(message: str) -> None:
            self.load_progress_changed.emit(None)
            self.failed.emit(message, "The dataset could not be loaded")

        datasets().load_in_background(data, loaded, failed, owner=self)
        return None

    def _on_load_ended(self, _config) -> None:
        self.train_queue.poke()   # the queue waits while a dataset loads

    def is_loading_dataset(self) -> bool:
        """Whether a dataset is being read in the background (the queue waits for it)."""
        return datasets().is_loading()

    def start_new(self, data, model, train, run_name: str | None = None, activate: bool = True):
        """Start a run whose dataset is here or reads in milliseconds (the bundled digits), or, for
        the queue's runs, read it in the background first; None, with the reason said, when it cannot."""
        if not loads_quickly(data) and datasets().get(data) is None:
            state = RunState(data, model, train)
            state.run_name = run_name
            if not activate:   # the shown run's failures come as the window's "Training stopped"
                state.failed.connect(lambda message: self.failed.emit(message, "Training could not start"))

            def loaded(dataset) -> None:
                self.load_progress_changed.emit(None)
                if dataset is None:   # said by state.failed; a run that never started leaves the list
                    self.session.remove(state)

            self.session.add(state, activate=activate)
            self.load_progress_changed.emit(f"Loading {data.source}…")
            state.dataset_loaded.connect(loaded)
            state.start(self.runs_dir)   # reads the dataset in the background, then trains
            return state
        try:
            dataset = datasets().load(data)
        except UserError as exc:
            self.failed.emit(str(exc), "The dataset could not be loaded")
            return None
        return self._start_with((data, model, train), dataset, run_name, activate)

    def _start_with(self, configs, dataset, run_name: str | None = None, activate: bool = True):
        data, model, train = configs
        if activate:
            self.dataset_notes_changed.emit(dataset_notes(dataset, train.batch_size))
        state = RunState(data, model, train, dataset=dataset)
        state.run_name = run_name
        self.session.add(state, activate=activate)
        try:
            state.start(self.runs_dir)
        except UserError as exc:
            self.failed.emit(str(exc), "Training could not start")
            return None
        return state

    # -- the queue --------------------------------------------------------------------------------
    def queue_configs(self, configs) -> None:
        try:
            item = QueueItem.new(*configs)
        except UserError as exc:
            self.failed.emit(str(exc), "The run could not be queued")
            return
        self.train_queue.add(item)
        self.say_queued([item])

    def queue_sweep(self, request) -> None:
        configs, axis, text = request
        try:
            items = sweep_items(configs, axis, text)
        except UserError as exc:
            self.failed.emit(str(exc), "The sweep could not be queued")
            return
        if not self.confirm_sweep(len(items)):
            return
        self.train_queue.add(items)
        self.say_queued(items)

    def queue_preset(self, preset) -> None:
        """A preset of several runs (IWAE beside a VAE) queues them all: they train one after another."""
        try:
            items = [QueueItem.new(data, model, train, title=title) for title, data, model, train in preset.runs]
        except UserError as exc:
            self.failed.emit(str(exc), "The preset could not be queued")
            return
        self.train_queue.add(items)
        self.say_queued(items)

    def say_queued(self, items) -> None:
        training = self.session.training_run()
        what = items[0].title if len(items) == 1 else f"{len(items)} runs"
        when = (f"they train after {training.name}" if len(items) > 1 else f"it trains after {training.name}") \
            if training is not None else "they train one after another" if len(items) > 1 else "it starts now"
        ahead = len(self.train_queue.items) - len(items)
        more = f" and {ahead} queued before" if ahead > 0 and training is not None else ""
        self.reported.emit(f"Queued {what}: {when}{more}.", "\n".join(item.title for item in items))

    def start_queued(self, item):
        """The queue's starter: begin the item's training (None, with the reason said, when it cannot)."""
        follow = self.session.active is None or self.session.active is self.queued_state
        if item.kind == "resume":
            state = self.session.find(item.path) or self.open_run(item.path, activate=follow)
            if state is None or not self.resume_now(state, item.more_epochs):
                return None
        else:
            state = self.start_new(item.data, item.model, item.train, run_name=item.name, activate=follow)
            if state is None:
                return None
        self.queued_state = state
        n = len(self.train_queue.items)
        self.reported.emit(f"Training {item.title} from the queue" + (f"; {n} more waiting." if n else "."), "")
        return state

    # -- saved runs -------------------------------------------------------------------------------
    def resume(self, state, more_epochs: int) -> None:
        """Train a saved run further now, or queue it while another run trains."""
        if self.session.is_busy():
            item = QueueItem.resume(state.run.path, more_epochs, state.name)
            self.train_queue.add(item)
            self.say_queued([item])
            return
        self.resume_now(state, more_epochs)

    def resume_now(self, state, more_epochs: int) -> bool:
        try:
            state.start(self.runs_dir, epochs=state.epoch + int(more_epochs))
        except UserError as exc:
            self.failed.emit(str(exc), "The run could not be resumed")
            return False
        return True

    def open_run(self, path: str | Path, activate: bool = True):
        """The run in ``path`` in the session (shown when ``activate``); None, with the reason said."""
        known = self.session.find(path)
        if known is not None:   # already in the library: show it
            if activate:
                self.session.set_active(known)
            return known
        try:
            state = RunState.open(path)
        except UserError as exc:
            self.failed.emit(str(exc), "The run could not be opened")
            return None
        # the bundled digits load at once (the views see them as they bind); other sources in the background
        if state.ensure_dataset_in_background(lambda _dataset: self.load_progress_changed.emit(None)):
            self.load_progress_changed.emit(f"Loading the images of {state.dataset_name}…")
        self.session.add(state, activate=activate)
        self.run_opened.emit(Path(state.run.path))
        self.reported.emit(f"Opened {state.name}.", "")
        return state

    def evaluate_run(self, state) -> None:
        """Compute a run's metrics on request (the runs menu's Evaluate)."""
        if state is None or state.run is None:
            return
        if state.is_training:
            self.failed.emit(f"{state.name} is training: evaluate it once it has stopped.", "Not evaluated")
            return
        self.metrics_runner.evaluate(state)
        self.reported.emit(f"Evaluating {state.name} (NLL with K = {self.metrics_runner.nll_samples} "
                           "importance samples per image) in the background…", "")

    def _on_training_changed(self, state) -> None:
        """A run that has just completed gets its metrics, in the background (before the queue goes on)."""
        previous, self._last_training = self._last_training, state
        if previous is not None and previous is not state and previous.status == "completed" \
                and previous.run is not None and previous in self.session.runs:
            self.metrics_runner.evaluate(previous)

    # -- the run that trains ------------------------------------------------------------------------
    def pause_training(self) -> None:
        """Pause, Resume and Stop act on the run that trains, whichever run is shown."""
        training = self.session.training_run()
        if training is not None:
            training.pause()

    def resume_training(self) -> None:
        training = self.session.training_run()
        if training is not None:
            training.resume()

    def stop_training(self) -> None:
        training = self.session.training_run()
        if training is not None:
            training.stop()

    # -- downloads --------------------------------------------------------------------------------
    def download(self, data) -> None:
        from engine.datasets import download_dataset
        from explorer.tasks import BackgroundTask
        if self._download is not None and self._download.is_running():
            return
        self._download = BackgroundTask(lambda progress: download_dataset(data, progress), self)
        self._download.progressed.connect(self.download_progress_changed)
        self._download.finished.connect(lambda _: (self.download_progress_changed.emit(None),
                                                   self.reported.emit(f"{data.source} is downloaded.", "")))
        self._download.failed.connect(lambda m: (self.download_progress_changed.emit(None),
                                                 self.failed.emit(m, "Download failed")))
        self.download_progress_changed.emit((0, 0))
        self._download.start()

    def wait(self, timeout_ms: int) -> None:
        """Closing: wait for the download and the dataset loads (a thread must never be destroyed while it runs)."""
        if self._download is not None:
            self._download.wait(timeout_ms)
        datasets().wait(60_000)
