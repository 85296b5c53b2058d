"""Dimensions: what each latent dimension carries, live while the run trains, and collapse named.

A bar per latent dimension, most informative first: its KL(q(z_d|x) ‖ N(0, 1)) in nats per image
(mean over up to ``KL_IMAGES`` probe images) for variants with an encoder distribution, the variance
of its codes over the probe images otherwise.  A bar is drawn strong when its dimension is *active*
(Burda et al.'s criterion: the variance of its posterior mean over the images exceeds 0.01) and pale
when not.  Above the bars, one line says how many dimensions are active and the KL summed over them;
when the run has collapsed (``engine.diagnostics``) the line says so in plain words, with what
commonly helps in its tooltip, and ``diagnosed`` carries the finding to the window's status area.
Hovering a bar shows that dimension's traversal strip under the chart (the cursor's code with that
dimension swept over ±3 prior sd, or ±3 marginal sd where the prior is not N(0, I)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine import diagnostics
from engine.probe_sets import fits, point_images
from explorer.insights.common import ChunkedDecoder, FigurePane, FrameThrottle, prior_kind, run_file_stem
from explorer.insights.figure import GridFigure
from explorer.session import LatentCursor, RunState, rebind

KL_IMAGES = 512       # probe images the KL is measured on (a few ms on the GUI thread)
STRIP_STEPS = 9
STRIP_SPAN = 3.0


@dataclass(frozen=True)
class DimensionStats:
    """Per-dimension numbers of a model on its probe images."""

    kl: np.ndarray | None       # D, nats per image (mean over the images), None without a posterior
    variance: np.ndarray        # D, variance of the posterior means (the codes) over the images
    n_images: int

    @property
    def active(self) -> np.ndarray:
        return self.variance > diagnostics.ACTIVE_UNIT_THRESHOLD

    @property
    def score(self) -> np.ndarray:
        """What the bars show: KL where there is one, the code variance otherwise."""
        return self.kl if self.kl is not None else self.variance

    @property
    def words(self) -> str:
        if self.kl is not None:
            return f"KL per dimension (nats per image, mean over {self.n_images} probe images)"
        return f"variance of the {self.n_images} probe codes"


@torch.no_grad()
def dimension_stats(state: RunState | None, max_images: int = KL_IMAGES) -> DimensionStats | None:
    """The per-dimension KL and code variance of ``state``'s model on its probe images (None
    before the first probe)."""
    model = state.model if state is not None else None
    if model is None:
        return None
    probe = state.probe
    if probe is None or len(probe.codes) < 2 or probe.codes.shape[1] != model.latent_dim:
        return None
    posterior = getattr(model, "posterior", None)
    dataset = state.dataset
    if posterior is not None and dataset is not None:
        idx, splits = probe.indices[:max_images], probe.splits[:max_images]
        if len(idx) > 1 and fits(dataset, splits, idx):   # each image from its own split (engine/probe_sets.py)
            images, labels = point_images(dataset, splits, idx)
            x = images.float().div_(255.0)
            y = labels if model.is_conditional else None
            mu, logvar = posterior(x, y)
            kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0).double().numpy()
            variance = mu.double().var(dim=0, unbiased=False).numpy()
            if np.isfinite(kl).all() and np.isfinite(variance).all():
                return DimensionStats(kl, variance, len(idx))
    codes = probe.codes.astype(np.float64)
    return DimensionStats(None, codes.var(axis=0), len(codes))


class DimensionsView(QWidget):
    """Bars of what each latent dimension carries, a one-line verdict, a traversal strip on hover."""

    diagnosed = Signal(object)   # engine.diagnostics.Diagnosis, or None when all is well
    rendered = Signal(object)    # the strip's GridFigure

    def __init__(self, state: RunState | None, cursor: LatentCursor, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dimensionsView")
        self.setAccessibleName("dimensionsView")
        self.state: RunState | None = None
        self.cursor = cursor
        self.stats: DimensionStats | None = None
        self._asking = False   # inside ensure_dataset_in_background (_ask_for_images)
        self.order: list[int] = []
        self.finding: diagnostics.Diagnosis | None = None
        self.hovered: int | None = None

        self.summary = QLabel(self)
        self.summary.setObjectName("dimensionsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.plot = pg.PlotWidget(self)
        self.plot.setObjectName("dimensionsPlot")
        self.plot.setMinimumHeight(110)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setBackground(self.palette().color(QPalette.ColorRole.Base))
        self.plot.getAxis("left").enableAutoSIPrefix(False)   # "KL (nats) (x0.001)" was cut off beside ~100 px of bars
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.plot.addItem(self.bars)
        self.plot.getAxis("bottom").setLabel("dimension")
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.strip_note = QLabel("Hover a bar: that dimension's traversal.", self)
        self.strip_note.setWordWrap(True)
        self.decoder = ChunkedDecoder(self)
        self.throttle = FrameThrottle(self, self._draw_strip)
        self.pane = FigurePane(self, lambda: run_file_stem(self.state, f"dimension-{self.hovered or 0}"),
                               (self.throttle.flush, self.decoder.finish_now), note=self.strip_note)
        self.pane.rendered.connect(self.rendered)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.pane, 1)
        cursor.moved.connect(self.throttle.request)
        self.bind(state)

    # -- public -------------------------------------------------------------------------------------
    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"probe_changed": self._on_probe,
                                                "decoder_changed": self.throttle.request,
                                                "dataset_loaded": self._on_dataset_loaded})
        self.hovered = None
        self._on_probe(None)

    def figure(self) -> GridFigure | None:
        return self.pane.figure()

    def refresh(self) -> None:
        """Measure again and redraw the bars and the verdict."""
        self._ask_for_images()
        self.stats = dimension_stats(self.state)
        stats = self.stats
        if stats is None:
            self.order = []
            self.bars.setOpts(x=[], height=[])
            self.summary.setText("No model yet." if self.state is None or self.state.model is None
                                 else "The dimensions are measured at the first probe update.")
            self.summary.setToolTip("")
            self._set_finding(None)
            return
        score = stats.score
        self.order = [int(i) for i in np.argsort(-score, kind="stable")]
        active = stats.active
        strong = self.palette().color(QPalette.ColorRole.Highlight)
        pale = self.palette().color(QPalette.ColorRole.Mid)
        brushes = [pg.mkBrush(strong if active[d] else pale) for d in self.order]
        self.bars.setOpts(x=np.arange(len(self.order)), height=score[self.order], brushes=brushes,
                          pens=[pg.mkPen(None)] * len(self.order))
        axis = self.plot.getAxis("bottom")
        step = max(1, len(self.order) // 16)
        axis.setTicks([[(i, f"z{d}") for i, d in enumerate(self.order) if i % step == 0]])
        self.plot.getAxis("left").setLabel("KL (nats)" if stats.kl is not None else "code variance")
        self.plot.setXRange(-0.6, len(self.order) - 0.4, padding=0)
        self.plot.setYRange(0, max(float(score.max()), 1e-3) * 1.1, padding=0)
        n_active, d = int(active.sum()), len(active)
        kl_words = f"; KL {stats.kl.sum():.3g} nats per image in all" if stats.kl is not None else ""
        finding = diagnostics.collapse(float(stats.kl.sum()) if stats.kl is not None else None, n_active, d) \
            if stats.kl is not None else None
        line = f"{n_active} of {d} dimensions active (code variance > {diagnostics.ACTIVE_UNIT_THRESHOLD}){kl_words}."
        if finding is not None and self._early_in_training():
            finding = None   # a VAE's KL often starts near 0 and rises: not named before a few epochs
            line += (f" Too early to call it collapse: the KL often rises after the first epochs "
                     f"(named after {diagnostics.COLLAPSE_PATIENCE_EPOCHS} validation epochs of low KL).")
        if finding is not None:
            line = f"{finding.message[0].upper()}{finding.message[1:]}. {line}"
        self.summary.setText(line)
        self.summary.setToolTip(f"Bars: {stats.words}, most first; pale: inactive."
                                + (f"\n{finding.help}" if finding is not None else ""))
        self._set_finding(finding)

    # -- internals ------------------------------------------------------------------------------------
    def _early_in_training(self) -> bool:
        state = self.state
        return state is not None and state.status in ("running", "paused") and diagnostics.too_early(state.history.val)

    def _set_finding(self, finding: diagnostics.Diagnosis | None) -> None:
        changed = finding != self.finding
        self.finding = finding
        self.summary.setProperty("warning", finding is not None and finding.kind == "collapse")
        self.summary.setStyleSheet("QLabel { color: #b03020; font-weight: bold; }"
                                   if finding is not None and finding.kind == "collapse" else "")
        if changed:
            self.diagnosed.emit(finding)

    def _ask_for_images(self) -> None:
        """A run opened from disk has no images in memory: its KL needs the probe images, so they
        are loaded (in the background; the bars show the code variance meanwhile, then the KL)."""
        state = self.state
        if state is None or state.dataset is not None or state.is_loading_dataset() \
                or getattr(state.model, "posterior", None) is None or self._asking:
            return
        self._asking = True   # a quick load answers at once: dataset_loaded comes inside this call
        try:
            state.ensure_dataset_in_background()
        finally:
            self._asking = False

    def _on_dataset_loaded(self, _dataset) -> None:
        if self._asking:
            return   # refresh() measures next, with the images
        if self.isVisible():
            self.refresh()
        else:
            self.stats = None

    def _on_probe(self, probe) -> None:
        if self.isVisible() or probe is None:
            self.refresh()
        else:
            self.stats = None   # a hidden tab does no work: measured again when shown
        self.throttle.request()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.stats is None:
            self.refresh()

    def _mouse_moved(self, pos) -> None:
        if not self.order:
            return
        x = self.plot.getPlotItem().vb.mapSceneToView(pos).x()
        i = int(round(x))
        hovered = self.order[i] if 0 <= i < len(self.order) and abs(x - i) <= 0.45 else None
        if hovered is not None and hovered != self.hovered:
            self.hover(hovered)

    def hover(self, dim: int) -> None:
        """Show dimension ``dim``'s traversal strip (what hovering its bar does)."""
        self.hovered = dim
        self.throttle.request()

    def _draw_strip(self) -> None:
        self.throttle.pending = False
        model = self.state.model if self.state is not None else None
        if model is None or self.hovered is None or self.hovered >= model.latent_dim:
            self.pane.show_figure(None, "Hover a bar to see its dimension swept." if model is not None else "No model")
            return
        d, k = model.latent_dim, self.hovered
        if prior_kind(self.state) == "standard_normal":
            centre, sd, words = np.zeros(d), np.ones(d), "prior sd"
        else:
            probe = self.state.probe
            codes = probe.codes.astype(np.float64) if probe is not None and len(probe.codes) > 1 else np.zeros((2, d))
            centre, sd, words = codes.mean(0), np.maximum(codes.std(0), 1e-6), "marginal sd"
        code = self.cursor.code
        if code is None or np.shape(code) != (d,):
            code = centre
        t = np.linspace(-STRIP_SPAN, STRIP_SPAN, STRIP_STEPS)
        codes = np.repeat(np.asarray(code, np.float64)[None], STRIP_STEPS, axis=0)
        codes[:, k] = centre[k] + t * sd[k]
        label = self.cursor.label if model.is_conditional else None
        value = ""
        if self.stats is not None and k < len(self.stats.score):
            value = f" ({'KL' if self.stats.kl is not None else 'variance'} {self.stats.score[k]:.3g})"
        title = f"{self.state.name}: z{k}{value} swept over ±{STRIP_SPAN:g} {words} from the cursor's code"

        def show(images: np.ndarray) -> None:
            self.pane.show_figure(GridFigure([list(images)], title=title, row_labels=[f"z{k}"],
                                             col_labels=[f"{v:+.3g}" for v in t]))

        self.decoder.start(model, codes, label, show)
