"""The training movie: the probe codes of every probe update, kept compactly so the latent map
can be replayed through training (a time slider in the app, a GIF or MP4 from ``export movie``).

```
<run>/movie.safetensors   codes  F×N×D float16   the probe codes of each kept frame
                          steps  F int64         the optimizer step of each frame
                          ordinals F int64       which probe update (0, 1, 2, ...) each frame was
                          labels N, indices N    the probe's labels and indices (into each point's split), once
                          splits N int8          each point's split: 0 validation, 1 training (absent: all 0)
                          metadata: format, version, stride, seen, max_frames
```

Frames are thinned so a long run stays small: when the movie holds ``max_frames`` frames, every
other frame is dropped and from then on only every other probe update is kept (the stride
doubles), so the kept frames stay evenly spaced in probe updates.  The newest update is always
the last frame, even between two kept ones.  ``max_frames`` is at most 400 and at most what fits
in 64 MiB of float16 codes (5,000 probe points × 16 dimensions: 400 frames; × 64: 104).

Hooks: the trainer's ``ProbeHook`` (and the app) call ``movie.add(probe)`` with each
``engine.history.ProbeCodes``, and its ``MovieHook`` calls ``movie.save(run_path)`` where the run saves a
checkpoint (``engine/training_hooks.py``); ``ProbeMovie.load(run_path)``
reads it back (None when the run has none; ``RunError`` in one sentence when the file is
damaged or does not fit the run's latent size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.config import ModelConfig
from engine.errors import ConfigError, RunError
from engine.history import ProbeCodes
from engine.storage import read_json_object, read_tensor_metadata, read_tensors, write_tensors

MOVIE = "movie.safetensors"
MOVIE_FORMAT = "latent-explorer-movie"
MOVIE_VERSION = 1
MAX_FRAMES = 400
MAX_BYTES = 64 * 2**20
MIN_FRAMES = 16
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def frame_budget(n_points: int, latent_dim: int, max_frames: int = MAX_FRAMES, max_bytes: int = MAX_BYTES) -> int:
    """How many frames of N×D float16 codes a movie keeps: ``max_frames``, fewer when they would
    pass ``max_bytes`` (never fewer than 16)."""
    per_frame = max(1, n_points * latent_dim * 2)
    return max(MIN_FRAMES, min(int(max_frames), max_bytes // per_frame))


class ProbeMovie:
    """The probe codes of a run's probe updates, oldest first, as float16 frames."""

    def __init__(self, max_frames: int | None = None):
        """``max_frames``: the most frames kept; by default ``frame_budget`` of the first probe's size."""
        if max_frames is not None and max_frames < 2:
            raise ValueError("A movie keeps at least two frames.")
        self._fixed_max = max_frames
        self.max_frames = MAX_FRAMES if max_frames is None else int(max_frames)
        self.labels: np.ndarray | None = None
        self.indices: np.ndarray | None = None
        self.splits: np.ndarray | None = None   # per point: 0 validation, 1 training (engine.probe_sets)
        self._codes: list[np.ndarray] = []   # each N×D float16
        self._steps: list[int] = []
        self._ordinals: list[int] = []
        self.stride = 1   # keep every stride-th probe update (it doubles at each thinning)
        self.seen = 0     # probe updates added so far

    # -- what it holds ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._codes)

    @property
    def steps(self) -> np.ndarray:
        return np.array(self._steps, dtype=np.int64)

    @property
    def latent_dim(self) -> int | None:
        return self._codes[0].shape[1] if self._codes else None

    @property
    def n_points(self) -> int:
        return 0 if self.labels is None else len(self.labels)

    def codes(self) -> np.ndarray:
        """Every frame's codes, F×N×D float16 (a copy)."""
        if not self._codes:
            return np.zeros((0, self.n_points, 0), np.float16)
        return np.stack(self._codes)

    def frame(self, i: int) -> ProbeCodes:
        """Frame ``i`` (negative counts from the end) as float32 probe codes."""
        codes = self._codes[i].astype(np.float32)
        return ProbeCodes(codes, self.labels.copy(), self.indices.copy(), int(self._steps[i]), self.splits.copy())

    def frame_at(self, step: int) -> int:
        """The index of the last frame at or before ``step`` (0 when ``step`` precedes them all)."""
        return max(0, int(np.searchsorted(self.steps, step, side="right")) - 1)

    # -- the hook ------------------------------------------------------------------------------
    def add(self, probe: ProbeCodes) -> None:
        """Keep one probe update.  A probe of other points (another probe set) starts the movie
        afresh; one at or before the last frame's step replaces the frames from that step on
        (a run resumed from an earlier checkpoint rewinds its movie)."""
        codes = np.asarray(probe.codes)
        if codes.ndim != 2:
            raise ValueError("Probe codes must be an N×D array.")
        labels = np.asarray(probe.labels, dtype=np.int64).reshape(-1)
        indices = np.asarray(probe.indices, dtype=np.int64).reshape(-1)
        splits = np.asarray(probe.splits, dtype=np.int8).reshape(-1)
        same_points = (self.indices is not None and np.array_equal(indices, self.indices)
                       and np.array_equal(splits, self.splits) and codes.shape[1] == self.latent_dim)
        if not same_points:
            self._reset(labels, indices, splits, codes.shape[1])
        step = int(probe.step)
        while self._steps and self._steps[-1] >= step:
            self._pop()
            self.seen = self._ordinals[-1] + 1 if self._ordinals else 0
            if not self._ordinals:
                self.stride = 1
        if self._ordinals and self._ordinals[-1] % self.stride:
            self._pop()  # the newest frame was only kept for being the newest
        ordinal = self.seen
        self.seen += 1
        self._codes.append(np.clip(codes, -_FLOAT16_MAX, _FLOAT16_MAX).astype(np.float16))
        self._steps.append(step)
        self._ordinals.append(ordinal)
        if len(self._codes) > self.max_frames:
            self._thin()

    def _reset(self, labels: np.ndarray, indices: np.ndarray, splits: np.ndarray, codes_dim: int) -> None:
        self.labels, self.indices, self.splits = labels.copy(), indices.copy(), splits.copy()
        if self._fixed_max is None:
            self.max_frames = frame_budget(len(labels), codes_dim, MAX_FRAMES)
        self._codes, self._steps, self._ordinals = [], [], []
        self.stride, self.seen = 1, 0

    def _pop(self) -> None:
        self._codes.pop()
        self._steps.pop()
        self._ordinals.pop()

    def _thin(self) -> None:
        """Drop every other frame (the newest stays) and keep every other probe update from now on."""
        while len(self._codes) > self.max_frames:
            self.stride *= 2
            last = len(self._codes) - 1
            keep = [i for i, o in enumerate(self._ordinals) if o % self.stride == 0 or i == last]
            self._codes = [self._codes[i] for i in keep]
            self._steps = [self._steps[i] for i in keep]
            self._ordinals = [self._ordinals[i] for i in keep]

    # -- the file -----------------------------------------------------------------------------
    def save(self, run_path: str | Path) -> Path | None:
        """Write ``movie.safetensors`` into the run folder atomically; nothing when it is empty."""
        if not self._codes:
            return None
        path = Path(run_path) / MOVIE
        write_tensors(path, {"codes": torch.from_numpy(self.codes()), "steps": torch.from_numpy(self.steps),
                             "ordinals": torch.tensor(self._ordinals, dtype=torch.int64),
                             "labels": torch.from_numpy(self.labels), "indices": torch.from_numpy(self.indices),
                             "splits": torch.from_numpy(self.splits)},
                      {"format": MOVIE_FORMAT, "version": str(MOVIE_VERSION), "stride": str(self.stride),
                       "seen": str(self.seen), "max_frames": str(self.max_frames),
                       "max_frames_fixed": "1" if self._fixed_max is not None else "0"})
        return path

    @classmethod
    def load(cls, run_path: str | Path, latent_dim: int | None = None) -> ProbeMovie | None:
        """The movie of a run folder, or None when it has none.  ``latent_dim`` defaults to the
        run's (read from its config.json); a file that is damaged or holds codes of another size
        is a ``RunError`` with one sentence."""
        run_path = Path(run_path)
        path = run_path / MOVIE
        if not path.exists():
            return None
        if latent_dim is None:
            latent_dim = _run_latent_dim(run_path)
        tensors = read_tensors(path)
        meta = read_tensor_metadata(path)
        try:
            codes, steps, ordinals = tensors["codes"], tensors["steps"], tensors["ordinals"]
            labels, indices = tensors["labels"], tensors["indices"]
        except KeyError as exc:
            raise RunError(f"{path} lacks the {exc} array, so it is not a training movie.") from None
        if meta.get("format") != MOVIE_FORMAT:
            raise RunError(f"{path} is not a Latent Explorer training movie.")
        if int(meta.get("version", "0") or 0) > MOVIE_VERSION:
            raise RunError(f"{path} was written by a newer Latent Explorer (movie format {meta['version']}).")
        if codes.dim() != 3 or codes.shape[0] == 0 or not codes.dtype.is_floating_point:
            raise RunError(f"{path} does not hold frames of codes (its codes are {tuple(codes.shape)}).")
        if codes.shape[2] != latent_dim:
            raise RunError(f"{path} holds {codes.shape[2]}-D codes, which do not fit the run's latent size {latent_dim}.")
        frames, n = codes.shape[0], codes.shape[1]
        if (tuple(steps.shape) != (frames,) or tuple(ordinals.shape) != (frames,) or tuple(labels.shape) != (n,)
                or tuple(indices.shape) != (n,) or any(t.dtype.is_floating_point for t in (steps, ordinals, labels, indices))):
            raise RunError(f"{path} is damaged: its steps, labels and indices do not match its {frames} frames of {n} codes.")
        splits = tensors.get("splits", torch.zeros(n, dtype=torch.int8))   # older movies: validation points
        if tuple(splits.shape) != (n,) or not bool(((splits == 0) | (splits == 1)).all()):
            raise RunError(f"{path} is damaged: its splits are not 0 (validation) or 1 (training) per point.")
        if frames > 1 and not bool((steps[1:] > steps[:-1]).all() and (ordinals[1:] > ordinals[:-1]).all()):
            raise RunError(f"{path} is damaged: its frames are not in the order of training.")
        try:
            stride, seen = int(meta.get("stride", "1")), int(meta.get("seen", str(int(ordinals[-1]) + 1)))
            max_frames = max(int(meta.get("max_frames", str(MAX_FRAMES))), frames, 2)
        except ValueError:
            raise RunError(f"{path} is damaged: its metadata are not numbers.") from None
        if stride < 1 or seen <= int(ordinals[-1]):
            raise RunError(f"{path} is damaged: its metadata do not match its frames.")
        movie = cls(max_frames)
        movie._fixed_max = None if meta.get("max_frames_fixed") != "1" else max_frames
        movie.labels, movie.indices = labels.numpy().astype(np.int64), indices.numpy().astype(np.int64)
        movie.splits = splits.numpy().astype(np.int8)
        movie._codes = [frame.copy() for frame in codes.to(torch.float16).numpy()]
        movie._steps = [int(s) for s in steps.tolist()]
        movie._ordinals = [int(o) for o in ordinals.tolist()]
        movie.stride, movie.seen = stride, seen
        return movie


def _run_latent_dim(run_path: Path) -> int:
    """The latent size in the run's config.json, read without ``engine.runs`` (which imports the
    metrics, which import the trainer, which imports this module)."""
    where = run_path / "config.json"
    cfg = read_json_object(where, "a run configuration", RunError)
    try:
        model = ModelConfig.from_dict(cfg.get("model"))
        model.validate()
    except ConfigError as exc:
        raise RunError(f"{where} holds invalid settings: {exc}") from None
    return model.latent_dim
