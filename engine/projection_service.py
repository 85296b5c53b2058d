"""Slow projection fits (UMAP, t-SNE) in a child process of their own.

A fit cannot be interrupted once numba or openTSNE is inside it, and on its first use in a
process umap-learn compiles for seconds (a minute without numba's on-disk cache).  In a child
process, a fit never holds the GUI's interpreter lock, numba never runs in two threads of one
process, and closing the window never waits for a fit: ``close()`` kills the child at once.

```python
service = ProjectionProcess()
service.warm_up()                                   # compiles umap on a tiny fit (in the child)
xy = service.fit("umap", codes, random_state=0)     # blocks this thread; N×2 float64
service.close()                                     # kills the child; a blocked fit raises ProjectionClosed
```

The pipe carries one JSON line per message and then the raw bytes of its arrays (numeric dtypes
only): nothing is pickled.  The child runs ``serve()`` with one thread for BLAS, OpenMP and
numba, at a lower priority (``child_nice()``) than training and the GUI, and dies with its parent (Linux ``PR_SET_PDEATHSIG``; elsewhere it ends when its input
closes).  No Qt here: ``explorer/map/projection_worker.py`` drives it from a QThread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["ProjectionClosed", "ProjectionFailed", "ProjectionProcess", "serve"]

ROOT = Path(__file__).resolve().parents[1]   # the folder that holds the ``engine`` package
_DTYPES = {"<f4", "<f8", "<i4", "<i8"}       # what may cross the pipe
#: the child yields the CPU to training and the GUI when they want it (a map is a view of them):
#: its nice value is this much above the training threads' (``child_nice()``).  At a fixed 2
#: it outranked the app's training threads at nice 10, and a warm-up or a live refit cut the
#: in-app training to 0.06-0.16x the CLI's.
CHILD_NICE_ABOVE_TRAINING = 2
CHILD_NICE = 2   # the least it is, beside training at nice 0 (the CLI's)


def child_nice() -> int:
    """The child's nice value: above the training threads' (engine.training.TRAIN_NICENESS, where
    this process trains at all: torch is not imported for it), at most 19."""
    training = sys.modules.get("engine.training")
    train_nice = getattr(training, "TRAIN_NICENESS", 0) if training is not None else 0
    return min(19, max(CHILD_NICE, train_nice + CHILD_NICE_ABOVE_TRAINING))


_NICE_ENV = "LATENT_EXPLORER_PROJECTION_NICE"   # how the parent tells the child its nice value
_CHILD_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "NUMBA_NUM_THREADS": "1"}


class ProjectionClosed(RuntimeError):
    """The projection process was closed (or died) before the answer came."""


class ProjectionFailed(ValueError):
    """The fit itself failed in the child; the message says why in one sentence."""


# -- messages -------------------------------------------------------------------------------------
def _write(stream, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
    arrays = {name: np.ascontiguousarray(a) for name, a in (arrays or {}).items()}
    meta = {name: [a.dtype.str, list(a.shape)] for name, a in arrays.items()}
    stream.write(json.dumps({**header, "arrays": meta}).encode() + b"\n")
    for a in arrays.values():
        stream.write(a.tobytes())
    stream.flush()


def _read_exact(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read(stream) -> tuple[dict, dict[str, np.ndarray]]:
    line = stream.readline()
    if not line:
        raise EOFError
    header = json.loads(line)
    arrays = {}
    for name, (dtype, shape) in header.pop("arrays", {}).items():
        if dtype not in _DTYPES or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ValueError(f"Unexpected array {name!r} ({dtype}, {shape}) on the projection pipe.")
        count = int(np.prod(shape, dtype=np.int64))
        data = _read_exact(stream, count * np.dtype(dtype).itemsize)
        arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return header, arrays


# -- the child ------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def serve() -> None:
    """The child's loop: answer requests from stdin on the original stdout until stdin closes.
    Anything else the libraries print goes to stderr."""
    _die_with_parent()
    if hasattr(os, "nice"):
        try:
            os.nice(int(os.environ.get(_NICE_ENV, CHILD_NICE)))
        except OSError:
            pass
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    from engine.projection import make_projection, warm_up

    while True:
        try:
            header, arrays = _read(inp)
        except EOFError:
            return
        start = time.perf_counter()
        reply: dict = {"id": header.get("id")}
        result: dict[str, np.ndarray] = {}
        try:
            if header["kind"] == "warm_up":
                warm_up(tuple(header.get("stages", ("tsne", "umap"))))
            elif header["kind"] == "fit":
                params = dict(header.get("params", {}))
                if "init" in arrays:
                    params["init"] = arrays["init"]
                projection = make_projection(header["name"], **params)
                result["xy"] = np.asarray(projection.fit_transform(arrays["codes"]), dtype=np.float64)
            elif header["kind"] != "ping":
                raise ValueError(f"unknown request {header['kind']!r}")
        except Exception as exc:  # noqa: BLE001 — the parent shows it as one sentence
            reply |= {"ok": False, "message": f"{exc}" or type(exc).__name__}
        else:
            reply |= {"ok": True}
        reply["seconds"] = time.perf_counter() - start
        _write(out, reply, result)


# -- the parent's side ----------------------------------------------------------------------------
class ProjectionProcess:
    """A child process that fits projections, one request at a time, for one thread of the parent
    (``close()`` may come from any thread)."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._ids = 0
        self._closed = False
        self._lock = threading.Lock()   # start/close against each other

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the child (a no-op when it runs); raises ProjectionClosed after ``close()``,
        OSError when no child can be started."""
        with self._lock:
            if self._closed:
                raise ProjectionClosed("The projection process is closed.")
            if self.is_alive():
                return
            env = {**os.environ, **_CHILD_THREADS, _NICE_ENV: str(child_nice()),
                   "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
            self._log = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from engine.projection_service import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=str(ROOT), env=env,
                close_fds=True)

    def _call(self, header: dict, arrays: dict | None = None) -> tuple[dict, dict]:
        self.start()
        proc = self._proc
        self._ids += 1
        try:
            _write(proc.stdin, {"id": self._ids, **header}, arrays)
            reply, result = _read(proc.stdout)
        except (EOFError, OSError, ValueError) as exc:
            if self._closed:
                raise ProjectionClosed("The projection process was closed.") from None
            raise ProjectionClosed(f"The projection process ended unexpectedly ({self._last_words()}).") from exc
        if not reply.get("ok"):
            raise ProjectionFailed(reply.get("message", "unknown error"))
        return reply, result

    def warm_up(self, stages: tuple[str, ...] = ("tsne", "umap")) -> float:
        """``engine.projection.warm_up(stages)`` in the child (by default: openTSNE's import, then
        umap's import and compilation on tiny fits); the seconds the child spent."""
        return float(self._call({"kind": "warm_up", "stages": list(stages)})[0]["seconds"])

    def fit(self, name: str, codes: np.ndarray, **params) -> np.ndarray:
        """``make_projection(name, **params).fit_transform(codes)`` in the child (N×2 float64).
        ``params`` are plain JSON values, except ``init``, an N×2 array."""
        arrays = {"codes": np.asarray(codes, dtype=np.float32)}
        if params.get("init") is not None:
            arrays["init"] = np.asarray(params["init"], dtype=np.float64)
        params = {k: v for k, v in params.items() if k != "init"}
        reply, result = self._call({"kind": "fit", "name": name, "params": params}, arrays)
        self.last_seconds = float(reply["seconds"])
        return result["xy"]

    def close(self, timeout_s: float = 1.0) -> None:
        """Kill the child now (a fit in progress is abandoned) and reap it."""
        with self._lock:
            self._closed = True
            proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout, self._log):  # a blocked reader has had its end of file
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def _last_words(self) -> str:
        code = self._proc.poll() if self._proc is not None else None
        tail = ""
        if self._log is not None:
            try:
                self._log.seek(0, os.SEEK_END)
                size = self._log.tell()
                self._log.seek(max(0, size - 400))
                lines = self._log.read().decode(errors="replace").strip().splitlines()
                tail = lines[-1] if lines else ""
            except OSError:
                pass
        return f"exit status {code}" + (f": {tail}" if tail else "")
