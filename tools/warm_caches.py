"""Fill numba's on-disk cache with umap-learn's compiled code once, when the project is installed.

umap-learn compiles its numba functions on its first fit and keeps the machine code in numba's
cache (``umap/__pycache__`` inside the virtual environment, or the user's cache folder where that
is read-only).  Without that cache the app's first UMAP map of a new install takes ~23 s on two
cores; with it, ~7 s (``benchmarks/bench_projection.py --maps [--cold-cache]``).  The Makefile
runs this after each install, through the same child process the app uses (one thread, the
same numba settings), so the compiled code is the code the app asks for.  A failure is printed
and does not fail the install: the app then compiles on its first map, as before.

    .venv/bin/python tools/warm_caches.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from engine.projection_service import ProjectionClosed, ProjectionFailed, ProjectionProcess
    print("Compiling umap-learn's numba code into its on-disk cache (once per install; up to a minute)...",
          flush=True)
    start = time.perf_counter()
    process = ProjectionProcess()
    try:
        process.warm_up(("tsne", "umap"))
    except (ProjectionClosed, ProjectionFailed, OSError) as exc:
        print(f"warning: the numba cache could not be filled ({exc}); the first UMAP map will compile instead.",
              file=sys.stderr)
        return 0
    finally:
        process.close()
    print(f"Done in {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
