"""The main map's uncertainty: the posterior ellipses of the hovered and the selected point, and
the density contours of the aggregate posterior against the prior (the "Density" toggle).

For a probabilistic encoder the posterior q(z|x) = N(μ, diag σ²) of a map point's validation image
is computed with the GUI's model copy (``model.posterior``, on the image scaled to [0, 1] as the
probe codes are) and drawn at ±1 and ±2 σ through the map's linear view
(``engine.latent_geometry.linear_map``: exact for a raw map, the projection's components for
PCA).  The contours are those of q(z) = the mean of the posteriors of ``DENSITY_CODES`` probe
images (a seeded subsample) and of the prior N(0, I) (drawn for models whose prior it is), each at
the levels holding 50% and 90% of its mass; they are recomputed at each probe update while on, in
a background thread (the 400 posteriors and the grid took 50-250 ms on a shared CPU: the GUI thread
only draws the finished lines, ~1-3 ms; the latest request wins).

No ellipse or contour is possible on UMAP and t-SNE maps (their positions are not a linear view
of the codes: the Density toggle is off and disabled there), for deterministic encoders (no
posterior), without the validation images, or while a training-movie frame is shown (its codes
are older than the model); ``reason()`` says which, and the map's note says it once.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from engine.latent_geometry import linear_map
from engine.models import has_standard_normal_prior
from engine.probe_sets import point_images
from explorer.map.live_layout import SLOW_PROJECTIONS
from explorer.map.overlays import DENSITY_CODES, ContourSet, DensityContours, PosteriorEllipses, density_contours
from explorer.tasks import BackgroundTask

DENSITY_TIP = ("Density: contours of the aggregate posterior q(z) (solid, the mean of {n} probe images' "
               "posteriors) and of the prior N(0, I) (dashed), each enclosing 50% and 90% of its mass: "
               "where q leaves the prior, decoding leaves the data")
#: the contours' grid reaches this many standard deviations past the outermost posterior
DENSITY_REACH_SIGMA = 4.0


class MapPosteriors(QObject):
    """The ellipses and contours of one map (``view``: a LatentView with a ``density_toggle``)."""

    density_drawn = Signal()   # new contours are on the map

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.hovered = PosteriorEllipses(view.plot)
        self.selected = PosteriorEllipses(view.plot)
        self.contours = DensityContours(view.plot)
        #: the last contours' milliseconds: {"background": encoder + grid + lines, "gui": drawing them}
        self.last_density_ms: dict[str, float] | None = None
        self._task: BackgroundTask | None = None
        self._pending = False
        self._generation = 0   # bumped by every request: a result of an older one is dropped
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        view.point_hovered.connect(self.refresh_ellipses)
        view.cursor.moved.connect(self._on_cursor_moved)
        view.density_toggle.toggled.connect(self.refresh_density)

    # -- what is possible ------------------------------------------------------------------------
    def reason(self) -> str:
        """Why the map can show no posterior ("" when it can), in one sentence."""
        return self._why()[0]

    def _why(self) -> tuple[str, bool]:
        """(why no posterior can be drawn or "", whether that lasts while this map and run stay)."""
        view, state = self.view, self.view.state
        model = state.model if state is not None else None
        if model is None or view._shown_probe() is None:
            return "", False
        if view.projection in SLOW_PROJECTIONS:
            return (f"No posterior ellipses or density on {SLOW_PROJECTIONS[view.projection]}: its positions "
                    "are not a linear view of the codes (choose Raw or PCA)."), True
        if not getattr(model, "probabilistic", False) or not hasattr(model, "posterior"):
            return "No posterior ellipses or density: this encoder is deterministic (one code per image, no σ).", True
        if view._frame is not None:
            return "No posterior ellipses on a movie frame: its codes are older than the model.", False
        if state.dataset is None:
            return "No posterior ellipses: the validation images are not loaded.", False
        return "", False

    def linear(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(W, mean) of the map's linear view when a posterior can be drawn on it, else None."""
        state = self.view.state
        if self.reason() or state is None or state.model is None:
            return None
        return linear_map(self.view.fitted_projection, state.model.latent_dim)

    def posteriors(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(μ, log σ²) of the probe images at ``positions`` (each len×D), by the GUI's model copy."""
        state = self.view.state
        probe = self.view._shown_probe()
        positions = np.asarray(positions, np.int64)
        images, labels = point_images(state.dataset, probe.splits[positions], probe.indices[positions])
        x = images.float().div_(255.0)
        y = labels if state.model.is_conditional else None
        with torch.no_grad():
            mu, logvar = state.model.posterior(x, y)
        return mu.double().numpy(), logvar.double().numpy()

    # -- drawing ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """The map changed (new codes, another projection or run): draw everything again."""
        self._cache.clear()
        self.update_toggle()
        self.refresh_ellipses()
        self.refresh_density()

    def refresh_ellipses(self, *_) -> None:
        view = self.view
        for ellipses, index in ((self.hovered, view._hovered), (self.selected, view.points.selected())):
            self._draw_ellipse(ellipses, index)

    def _draw_ellipse(self, ellipses: PosteriorEllipses, index: int | None) -> None:
        linear = self.linear() if index is not None else None
        probe = self.view._shown_probe()
        if linear is None or probe is None or not 0 <= index < len(probe.indices):
            ellipses.clear()
            return
        key = (id(probe), index)
        if key not in self._cache:
            mu, logvar = self.posteriors(np.array([index]))
            self._cache[key] = (mu[0], logvar[0])
        mu, logvar = self._cache[key]
        ellipses.show(mu, logvar, *linear)

    def _on_cursor_moved(self, _code, origin: str) -> None:
        if origin in ("map", "select"):   # a press clears the selection, a click selects a point
            self._draw_ellipse(self.selected, self.view.points.selected())

    def update_toggle(self) -> None:
        """The Density toggle: disabled where no contour is possible, with the reason as its tip, and
        off where that lasts (UMAP, t-SNE, a deterministic encoder); a movie frame or images still
        loading keep a person's choice for when they are gone."""
        toggle, (why, lasting) = self.view.density_toggle, self._why()
        state = self.view.state
        if state is None or state.model is None:
            why, lasting = "Density: no model", True
        toggle.setEnabled(not why)
        if lasting:
            toggle.setChecked(False)
        toggle.setToolTip(why or DENSITY_TIP.format(n=DENSITY_CODES))

    def refresh_density(self, *_) -> None:
        """Recompute the contours in the background (the latest request wins) or clear them."""
        self._generation += 1
        linear = self.linear() if self.view.density_toggle.isChecked() else None
        probe = self.view._shown_probe()
        if linear is None or probe is None or len(probe.indices) == 0:
            self.contours.clear()
            return
        if self._task is not None:
            self._pending = True   # started again when the one under way has ended
            return
        state, n = self.view.state, len(probe.indices)
        positions = np.arange(n) if n <= DENSITY_CODES else \
            np.sort(np.random.default_rng(0).choice(n, DENSITY_CODES, replace=False))
        images, labels = point_images(state.dataset, probe.splits[positions], probe.indices[positions])
        labels = labels if state.model.is_conditional else None
        model, (W, mean), generation = state.model, linear, self._generation
        prior = has_standard_normal_prior(model)

        def compute(_progress) -> tuple[int, ContourSet, float]:
            started = time.perf_counter()
            with torch.no_grad():   # the GUI's model copy, read beside the GUI thread's decoding
                mu, logvar = model.posterior(images.float().div_(255.0), labels)
            mus, logvars = mu.double().numpy(), logvar.double().numpy()
            contours = density_contours(mus, logvars, W, mean, density_bounds(mus, logvars, W, mean), prior)
            return generation, contours, 1000 * (time.perf_counter() - started)

        self._task = BackgroundTask(compute, self)
        self._task.finished.connect(self._on_computed)
        self._task.failed.connect(self._on_failed)
        self._task.thread.finished.connect(self._on_task_ended)
        self._task.start()

    def _on_computed(self, result: tuple[int, ContourSet, float]) -> None:
        generation, contours, compute_ms = result
        if generation != self._generation:
            return   # the map or the codes changed meanwhile: the next result draws
        started = time.perf_counter()
        self.contours.draw(contours)
        self.last_density_ms = {"background": compute_ms, "gui": 1000 * (time.perf_counter() - started)}
        self.density_drawn.emit()

    def _on_failed(self, message: str) -> None:
        self.contours.clear()
        self.view.density_toggle.setToolTip(f"Density: could not be computed ({message})")

    def _on_task_ended(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.wait(1000)   # finished is sent just before the thread ends: let it end before it goes
            task.deleteLater()
        if self._pending:
            self._pending = False
            self.refresh_density()

    def shutdown(self) -> None:
        """Drop any result to come and wait for a computation under way (the map is closing)."""
        self._generation += 1
        self._pending = False
        if self._task is not None:
            self._task.wait(10_000)


def density_bounds(mus: np.ndarray, logvars: np.ndarray, W: np.ndarray, mean: np.ndarray) -> tuple[float, ...]:
    """(xmin, xmax, ymin, ymax) on the map holding every posterior and the prior to
    ``DENSITY_REACH_SIGMA`` standard deviations, so the grid holds (almost) all of their mass."""
    centres = (mus - mean) @ W.T
    sd = np.sqrt(np.exp(logvars) @ (W.T ** 2))              # each posterior's σ along the map's axes
    prior_centre, prior_sd = -W @ mean, np.sqrt((W ** 2).sum(axis=1))
    low = np.minimum((centres - DENSITY_REACH_SIGMA * sd).min(0), prior_centre - DENSITY_REACH_SIGMA * prior_sd)
    high = np.maximum((centres + DENSITY_REACH_SIGMA * sd).max(0), prior_centre + DENSITY_REACH_SIGMA * prior_sd)
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])
