"""The runs library: every run in the runs folder, and every folder a person opened from elsewhere
(File → Open run on a CLI ``--out`` folder, a path on the command line), remembered across launches
in the settings (``library/folders``, a JSON list) until "Forget this run" takes it off the list.
Forgetting never deletes files.  A remembered folder that has disappeared is dropped from the list
with a status note.  No widget here: the window shows what ``reported`` says.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from engine.errors import UserError

FOLDERS_KEY = "library/folders"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False


class RunsLibrary(QObject):
    """Reads the library into the session (in the background at launch) and keeps the remembered folders."""

    reported = Signal(str, str)   # (a status line, its tooltip or "")
    read_ended = Signal()         # every run of the library has joined the session (or was skipped)

    def __init__(self, session, runs_dir: Path, settings: QSettings | None, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.runs_dir, self.settings = session, Path(runs_dir), settings
        self.task = None   # the background read (kept after it ends: closing waits for its thread)
        self.cancelled = False
        self._busy = False
        self._skipped: list[str] = []
        self._gone: list[Path] = []   # remembered folders found missing at the last read

    # -- the remembered folders ------------------------------------------------------------------
    def folders(self) -> list[Path]:
        """The folders remembered outside the runs folder (run folders, or folders of runs)."""
        raw = self.settings.value(FOLDERS_KEY) if self.settings is not None else None
        try:
            names = json.loads(raw) if isinstance(raw, str) else []
        except (ValueError, RecursionError):   # damaged settings: no remembered folders
            names = []
        return [Path(n) for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def _save(self, folders: list[Path]) -> None:
        if self.settings is not None:
            self.settings.setValue(FOLDERS_KEY, json.dumps([str(f) for f in folders]))
            self.settings.sync()

    def is_remembered(self, path) -> bool:
        return any(_same(Path(path), folder) for folder in self.folders())

    def remember(self, path) -> None:
        """Keep ``path`` (a run folder opened by hand) for the next launches, unless the runs folder holds it."""
        path = Path(path).expanduser().resolve()
        if _same(path.parent, self.runs_dir) or self.is_remembered(path):
            return
        self._save([*self.folders(), path])

    def forget(self, state) -> bool:
        """Take a remembered run off the list and out of the session; its folder stays on disk."""
        if state is None or state.run is None or not self.is_remembered(state.run.path):
            return False
        path = Path(state.run.path)
        self._save([f for f in self.folders() if not _same(f, path)])
        self.session.remove(state)
        self.reported.emit(f"Forgot {path.name}: it is no longer listed; its folder {path} stays on disk.", "")
        return True

    def _paths(self) -> list[Path]:
        """The run folders to read, oldest first: the runs folder's, then the remembered ones (a
        remembered folder that has gone is dropped from the list, with a note)."""
        from engine.runs import CONFIG, list_runs
        paths = list(reversed(list_runs(self.runs_dir)))
        kept, gone = [], []
        for folder in self.folders():
            if not folder.is_dir():
                gone.append(folder)
                continue
            kept.append(folder)
            paths += [folder] if (folder / CONFIG).is_file() else list(reversed(list_runs(folder)))
        if gone:
            self._save(kept)
            self._gone = gone
        unique: list[Path] = []
        for path in paths:
            if self.session.find(path) is None and not any(_same(path, p) for p in unique):
                unique.append(path)
        return unique

    # -- reading ----------------------------------------------------------------------------------
    def load(self, background: bool = False) -> None:
        """Every run of the library, newest first (saved runs from earlier launches included).
        In the background (the app at launch: ~40 ms a run for MNIST-sized ones, seconds for a
        big library), each run joins the library as soon as it has been read."""
        from explorer.session import RunState
        from explorer.tasks import BackgroundTask

        def read(path):   # the run as read, or why it cannot be
            try:
                return RunState.read(path)
            except UserError as exc:
                return exc

        if self.loading():
            return
        self._skipped, self._gone = [], []
        paths = self._paths()
        if not background or not paths:
            for path in paths:
                self._add(path, read(path))
            self._ended()
            return

        def read_all(progress) -> None:
            for path in paths:
                if self.cancelled:
                    return
                progress((path, read(path)), len(paths))

        self.reported.emit(f"Reading {len(paths)} saved run(s) from {self.runs_dir}…", "")
        self._busy = True
        self.task = BackgroundTask(read_all, self)
        self.task.progressed.connect(lambda pair: self._add(*pair[0]))   # ((path, read), total)
        self.task.finished.connect(lambda _: self._ended())
        self.task.failed.connect(lambda message: (self._skipped.append(message), self._ended()))
        self.task.start()

    def loading(self) -> bool:
        """True while the library is still being read in the background."""
        return self._busy

    def _add(self, path, saved) -> None:
        """One run as read (a ``SavedRun``), or the UserError that says why not."""
        from explorer.session import RunState
        if isinstance(saved, UserError):
            self._skipped.append(f"{Path(path).name}: {saved}")
        elif self.session.find(path) is None:   # not opened meanwhile (a path on the command line)
            self.session.add(RunState.from_saved(saved), activate=False)

    def _ended(self) -> None:
        self._busy = False
        notes = []
        if self._skipped:
            notes.append(f"{len(self._skipped)} folder(s) in {self.runs_dir} or the opened folders could not be read "
                         "as runs.")
        if self._gone:
            notes.append(f"{len(self._gone)} run folder(s) opened earlier no longer exist: they left the runs list.")
        if notes:
            self.reported.emit(" ".join(notes), "\n".join([*self._skipped, *(str(g) for g in self._gone)]))
        self.read_ended.emit()
