"""The GUI process's thread and memory settings for a responsive window beside a training thread:
torch and BLAS thread counts on the GUI thread, the training threads' nice value, the launch
preload of what a first run imports, and the garbage collector's schedule."""

from __future__ import annotations

import sys
import threading


def tune_for_gui() -> None:
    """Set the GUI thread up to live beside a training thread; call it before the GUI thread runs
    any torch op.

    - The GUI thread runs torch ops on one thread (its decodes are a few images at a time), so it
      never starts an OpenMP team of its own.  OpenMP (libgomp) spins briefly instead of for a
      while once it manages more threads than there are cores; with a GUI team beside the
      training team on 2 cores, the training team fell asleep and woke at every parallel region
      (110,000 context switches where there had been 400) and trained 12–20% slower.  The
      training thread keeps torch's default count (``engine.training.use_threads``).
    - The GIL switches every millisecond, so the GUI thread gets its turn quickly.
    - NumPy's and SciPy's BLAS run on the calling thread only (``limit_blas_threads``): a threaded
      GEMM on the GUI thread (the decoder canvas's nearest-code spacing at each probe update)
      woke an OpenBLAS team beside the training team and spun for 20–40 ms under the cursor.
    - OpenMP keeps its default wait policy: OMP_WAIT_POLICY=PASSIVE cost a quarter of the in-app
      throughput and made drag latency and timer lateness slightly worse
      (benchmarks/bench_drag_latency.py --sweep).
    - Training threads run at nice 10 (Linux): on 2 loaded cores the GUI thread spent 88% of its
      slow drags runnable but waiting for a core that the training team held; a niced team
      yields the core at once, and takes it all whenever the GUI is idle.
    - Training on a GPU runs its steps eagerly, not as CUDA graphs (``engine.cuda_graphs``): on an
      H200 the graphed loop trained 3.8x faster (141,000 images/s behind the drag) but the drag's
      p95 went from 3.4 ms to 31 ms (benchmarks/device_check.sh, drag row): the graphed loop never
      waits for the GPU, so it holds the interpreter lock nearly all the time.  The CLI keeps them."""
    import engine.cuda_graphs
    import engine.training
    engine.cuda_graphs.ENABLED = False
    from engine.training import use_threads  # importing it records torch's default count first
    use_threads(1)
    engine.training.TRAIN_NICENESS = TRAINING_NICENESS
    sys.setswitchinterval(0.001)
    limit_blas_threads()


def limit_blas_threads() -> None:
    """One BLAS thread for every BLAS library loaded so far (OpenBLAS keeps one count per library;
    call it again once SciPy's own is loaded).  The projection child process keeps its own."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1, user_api="blas")


#: the nice value of the app's training threads (engine.training.TRAIN_NICENESS)
TRAINING_NICENESS = 10


#: set once ``preload_in_background`` has imported everything a first run needs
PRELOADED = threading.Event()


def preload_in_background():
    """Import, behind the shown window, the modules that the first run needs but start-up does not
    (about two seconds on 2 cores: SciPy's, and torch's optimizer machinery through
    ``engine.training.rehearse``), so that neither the first redraw or drag nor the first
    collection after a run starts pays for them; sets ``PRELOADED`` when done.  Returns the
    started ``BackgroundTask`` (named "preload"): closing waits for it, as for every task (its
    rehearsal step inside torch must not meet the interpreter's exit: an abort)."""
    from explorer.tasks import BackgroundTask

    def preload(_progress) -> None:
        try:
            import scipy.linalg  # noqa: F401
            import scipy.signal  # noqa: F401
            import scipy.spatial  # noqa: F401
            limit_blas_threads()   # SciPy's own OpenBLAS, loaded just now
            from engine.training import rehearse
            rehearse()
        except Exception:  # noqa: BLE001 — an optimisation only: the first run imports them itself
            pass
        finally:
            PRELOADED.set()
    task = BackgroundTask(preload, name="preload")
    task.start()
    return task


def collect_garbage_on_gui_thread():
    """Set the garbage collector up for the app once its views are built; keep what it returns
    alive as long as the app (benchmarks call it too, to measure what the app does).

    - Everything imported so far (torch, Qt, the engine: ~270k objects) lives as long as the app.
      Moved out of the collector's sight (``gc.freeze``), a full collection no longer walks it:
      such a collection held the interpreter lock for 275–506 ms early in the first training, a
      stall under the cursor.
    - Qt objects must die on the GUI thread: a collection that a training thread happens to run
      would free widgets there (a deadlock or a crash).  pyqtgraph's collector turns automatic
      collection off and collects on a 1 s timer of this thread instead."""
    import gc

    from pyqtgraph.util.garbage_collector import GarbageCollector

    class GuiThreadCollector(GarbageCollector):
        """pyqtgraph's collector; once the preload is done, it freezes what the preload imported
        too (~150,000 objects: left young, the first collections after a run starts walked them
        for ~80 ms with the interpreter lock held)."""
        refrozen = False

        def check(self) -> None:
            if not self.refrozen and PRELOADED.is_set():
                self.refrozen = True
                gc.freeze()
            super().check()

    gc.collect()
    gc.freeze()
    return GuiThreadCollector(interval=1.0)
