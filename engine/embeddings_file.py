"""Codes without a run: an embeddings file read for the map (File → Open embeddings…).

Two forms, the ones ``export embeddings`` writes (and any tool can):

* ``.npz`` — an N×D float array ``codes`` (or, when the file holds one two-dimensional array, that
  one), optional ``labels`` (N whole numbers ≥ 0) and ``class_names``; nothing is unpickled.
* ``.csv`` — a header row naming columns ``z0`` … ``z{D-1}`` and optionally ``label`` (other
  columns, such as ``index``, ``class`` or ``x, y``, are ignored), then one row per point.

``load_embeddings`` returns an ``EmbeddingsFile``; a file it cannot use is a ``UserError`` with one
sentence that names the file.  Up to ``MAX_POINTS`` points of at most ``MAX_DIM`` dimensions.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import UserError

MAX_POINTS = 5_000_000
MAX_DIM = 512
SUFFIXES = (".npz", ".csv")


@dataclass
class EmbeddingsFile:
    """Codes read from a file: N×D float32, per point a label (-1 where the file has none)."""

    path: Path
    codes: np.ndarray
    labels: np.ndarray
    class_names: list[str] = field(default_factory=list)

    @property
    def has_labels(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def label_name(self, label: int) -> str:
        if label < 0:
            return "no label"
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)


def load_embeddings(path: str | Path) -> EmbeddingsFile:
    """The codes (and labels) of an .npz or .csv file; UserError with one sentence otherwise."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path.name} is not an embeddings file: open an .npz or a .csv file.")
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    try:
        if path.suffix.lower() == ".npz":
            codes, labels, names = _read_npz(path)
        else:
            codes, labels, names = _read_csv(path)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path.name} cannot be read: {_reason(exc)}.") from None
    return _checked(path, codes, labels, names)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1].rstrip(".") if text else type(exc).__name__


def _read_npz(path: Path):
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:   # NumPy took it for a pickle, which is never loaded
        raise UserError(f"{path.name} is not a NumPy .npz file of arrays.") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path.name} holds one array, not an .npz archive of codes.")
    with archive:
        try:
            names = list(archive.files)
            if "codes" in names:
                codes = archive["codes"]
            else:
                flat = [n for n in names if archive[n].ndim == 2]
                if len(flat) != 1:
                    raise UserError(f"{path.name} has no array named codes (it holds {', '.join(names) or 'nothing'}).")
                codes = archive[flat[0]]
            labels = archive["labels"] if "labels" in names else None
            classes = [str(c) for c in archive["class_names"].tolist()] if "class_names" in names else []
        except ValueError as exc:   # an object array: it would need unpickling
            raise UserError(f"{path.name} holds arrays that only unpickling could read ({_reason(exc)}).") from None
    return codes, labels, classes


def _read_csv(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    first = text.split("\n", 1)[0]
    header = [h.strip() for h in next(csv.reader([first]))] if first.strip() else []
    z_cols = {}
    for i, name in enumerate(header):
        if len(name) > 1 and name[0] in "zZ" and name[1:].isdigit():
            z_cols[int(name[1:])] = i
    if not z_cols:
        raise UserError(f"{path.name} has no columns named z0, z1, … in its first row.")
    dims = len(z_cols)
    if sorted(z_cols) != list(range(dims)):
        raise UserError(f"{path.name} names its code columns with gaps: z0 … z{dims - 1} are needed.")
    label_col = next((i for i, h in enumerate(header) if h.lower() == "label"), None)
    columns = [z_cols[d] for d in range(dims)] + ([label_col] if label_col is not None else [])
    if not text.partition("\n")[2].strip():
        raise UserError(f"{path.name} holds no points.")
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, usecols=columns, dtype=np.float64,
                           ndmin=2, comments=None)
    except ValueError as exc:
        raise UserError(f"{path.name} has a row that is not numbers in its z or label columns ({_reason(exc)}).") from None
    codes = table[:, :dims]
    labels = None
    if label_col is not None:
        labels = table[:, dims]
        if not np.array_equal(labels, np.round(labels)):
            raise UserError(f"{path.name} has labels that are not whole numbers.")
    return codes, labels, []


def _checked(path: Path, codes, labels, class_names: list[str]) -> EmbeddingsFile:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise UserError(f"{path.name} holds codes of shape {codes.shape}, not a table of points × dimensions.")
    n, d = codes.shape
    if not np.issubdtype(codes.dtype, np.number) or np.issubdtype(codes.dtype, np.complexfloating):
        raise UserError(f"{path.name} holds codes that are not real numbers ({codes.dtype}).")
    if n == 0:
        raise UserError(f"{path.name} holds no points.")
    if n > MAX_POINTS or d > MAX_DIM:
        raise UserError(f"{path.name} holds {n:,} codes of {d} dimensions; the map takes at most "
                        f"{MAX_POINTS:,} of at most {MAX_DIM}.")
    codes = codes.astype(np.float32, copy=False)
    if not np.isfinite(codes).all():
        raise UserError(f"{path.name} holds NaN or infinite codes.")
    if labels is None:
        labels = np.full(n, -1, np.int64)
    else:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != n:
            raise UserError(f"{path.name} holds {len(labels):,} labels for {n:,} codes.")
        if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)) \
                or not np.isfinite(labels).all() or (labels < 0).any():
            raise UserError(f"{path.name} holds labels that are not whole numbers of 0 or more.")
        labels = labels.astype(np.int64)
    return EmbeddingsFile(path, np.ascontiguousarray(codes), labels, class_names)
