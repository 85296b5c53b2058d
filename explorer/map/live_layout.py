"""The slow layouts (UMAP, t-SNE) of the active run's probe codes, kept live in the background.

The latent map asks ``LiveLayout`` for the layout of the projection it shows.  While none has
arrived (a new run, a first fit, another run opened) the map shows a PCA layout and the note
says so; when the codes change (a probe update while training), the last layout stays on show
and a warm-started refit (``init`` = the last layout: fewer epochs, aligned to it) runs on the
shared ``ProjectionWorker`` (each map is its own client there, so the comparison's maps take
turns).  One fit per map is in flight at a time: the worker drops results of any request but the
map's newest, so a fit per probe update would never let one arrive; instead the next refit starts
when the last one has arrived, after a rest as long as that fit took (so a live map keeps at most
about half a core busy beside training).
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.history import ProbeCodes
from explorer.map.projection_worker import ProjectionWorker

#: the slow projections, with their titles in the map's menu and notes
SLOW_PROJECTIONS = {"umap": "UMAP", "tsne": "t-SNE"}
LAYOUT_PARAMS = {"umap": {"n_neighbors": 15, "min_dist": 0.1, "random_state": 0},
                 "tsne": {"perplexity": 30.0, "random_state": 0}}
#: a live refit waits this many times the last fit's duration after it arrived
LIVE_REST = 1.0


class LiveLayout(QObject):
    """The UMAP and t-SNE layouts of one run's probe codes (``reset()`` for another run)."""

    arrived = Signal(object)  # (name, projection, xy N×2): a newer layout of the current codes' points
    changed = Signal()        # what ``note()`` and ``busy()`` say may have changed

    def __init__(self, worker: ProjectionWorker, parent: QObject | None = None):
        super().__init__(parent)
        self.worker = worker
        self.name: str | None = None           # the slow projection on show (None for raw/PCA)
        self.probe: ProbeCodes | None = None   # the latest codes
        self.error = ""
        self._layouts: dict[str, tuple[object, np.ndarray]] = {}
        self._stale: set[str] = set()          # layouts of codes older than the latest
        self._in_flight: tuple[int, str, ProbeCodes] | None = None
        self._arrived_at = 0.0
        self._next = QTimer(self, singleShot=True)
        self._next.timeout.connect(self._refresh)
        worker.computed.connect(self._on_computed)
        worker.failed.connect(self._on_failed)
        worker.busy_changed.connect(self._on_worker_changed)   # methods, not lambdas: Qt disconnects
        worker.warmed.connect(self._on_worker_changed)         # them when this object goes

    # -- what the map asks ------------------------------------------------------------------------
    def layout(self, name: str) -> tuple[object, np.ndarray] | None:
        """The last layout for ``name`` when it lays out the latest codes' points, else None."""
        found = self._layouts.get(name)
        if found is None or self.probe is None or len(found[1]) != len(self.probe.codes):
            return None
        return found

    def is_stale(self, name: str) -> bool:
        return name in self._stale

    def in_flight(self) -> bool:
        return self._in_flight is not None and self._in_flight[0] == self.worker.latest_id_for(self)

    def busy(self) -> bool:
        """A layout of the shown projection is being computed."""
        return self.name is not None and (self.in_flight() or self._next.isActive())

    def note(self) -> str:
        """One line for the map: what is being computed, and what is shown meanwhile."""
        if self.name is None:
            return ""
        title = SLOW_PROJECTIONS[self.name]
        if self.error:
            return self.error
        if self.layout(self.name) is None:
            if self.probe is None or len(self.probe.codes) < 3:
                return ""
            compiling = self.name == "umap" and not self.worker.is_warm()
            return f"{title} is being computed… PCA shown until it arrives" + \
                (" (the first UMAP map compiles for up to a minute)" if compiling else "")
        if self.name in self._stale:
            return f"{title} of earlier codes; updating…" if self.busy() else f"{title} of earlier codes"
        return ""

    # -- what the map tells -----------------------------------------------------------------------
    def reset(self) -> None:
        """Another run: forget every layout and what is being computed."""
        self._layouts.clear()
        self._stale.clear()
        self.probe, self.error = None, ""
        self._forget_in_flight()
        self.changed.emit()

    def show(self, name: str | None, probe: ProbeCodes | None) -> None:
        """The map now shows ``name`` (None: a fast projection) of ``probe``'s codes; compute what
        it lacks."""
        self.name, self.probe = (name if name in SLOW_PROJECTIONS else None), probe
        if self.name is None:
            self._forget_in_flight()
        elif self.layout(self.name) is None or self.name in self._stale:
            if not self.in_flight() or self._in_flight[1] != self.name:
                self.request()
        self.changed.emit()

    def codes_changed(self, probe: ProbeCodes) -> None:
        """New probe codes: every layout is now of earlier codes; refit the shown one when the
        one in flight has arrived."""
        self.probe = probe
        self._stale.update(self._layouts)
        if self.name is not None and not self.in_flight():
            if self.layout(self.name) is None:
                self.request()          # nothing to show but PCA: now
            elif not self._next.isActive():
                self._schedule()
        self.changed.emit()

    def request(self) -> None:
        """Fit the shown projection to the latest codes now, warm-started from its last layout."""
        if self.name is None or self.probe is None or len(self.probe.codes) < 3:
            return
        self._next.stop()
        params = dict(LAYOUT_PARAMS[self.name])
        previous = self._layouts.get(self.name)
        if previous is not None and len(previous[1]) == len(self.probe.codes):
            params["init"] = previous[1]
        self.error = ""
        request_id = self.worker.request(self.name, self.probe.codes, client=self, **params)
        self._in_flight = (request_id, self.name, self.probe) if request_id else None
        self.changed.emit()

    # -- results ----------------------------------------------------------------------------------
    def _on_computed(self, result) -> None:
        request_id, projection, xy = result
        if self._in_flight is None or request_id != self._in_flight[0]:
            return
        _, name, probe = self._in_flight
        self._in_flight = None
        self._arrived_at = time.monotonic()
        self._layouts[name] = (projection, xy)
        if probe is self.probe:
            self._stale.discard(name)
        else:
            self._stale.add(name)
        self.arrived.emit((name, projection, xy))
        if name == self.name and name in self._stale:
            self._schedule()
        self.changed.emit()

    def _on_failed(self, result) -> None:
        if self._in_flight is not None and result[0] == self._in_flight[0]:
            self._in_flight = None
            self.error = result[1]
            self.changed.emit()

    def _on_worker_changed(self, _=None) -> None:
        self.changed.emit()

    def _schedule(self) -> None:
        """The next live refit, after a rest as long as the last fit took."""
        rest = (self.worker.last_fit_seconds or 0.0) * LIVE_REST - (time.monotonic() - self._arrived_at)
        self._next.start(max(0, round(rest * 1000)))

    def _refresh(self) -> None:
        if self.name is not None and not self.in_flight() and self.name in self._stale:
            self.request()

    def _forget_in_flight(self) -> None:
        self._next.stop()
        if self._in_flight is not None:
            self._in_flight = None
            self.worker.cancel(self)
