"""PySide6 6.12.0 aborts the interpreter ("Fatal Python error: none_dealloc: deallocating None")
as soon as a QObject worker moved onto a QThread emits signals to the GUI thread; 6.11.3 runs
the same script cleanly.  This runs exactly that pattern in a child process, so that a later
bump of the PySide6 pin is proven safe before it lands."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPRO = textwrap.dedent("""
    from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal
    class Worker(QObject):
        value = Signal(float)
        done = Signal()
        def run(self):
            for i in range(300):
                self.value.emit(i * 0.5)
            self.done.emit()
    app = QCoreApplication([]); thread = QThread(); worker = Worker(); worker.moveToThread(thread)
    got = []; worker.value.connect(got.append); worker.done.connect(thread.quit); thread.finished.connect(app.quit)
    thread.started.connect(worker.run); thread.start(); app.exec(); thread.wait()
    print(len(got), sum(got))
""")


def test_worker_on_a_qthread_emitting_300_floats_does_not_abort():
    proc = subprocess.run([sys.executable, "-c", REPRO], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"PySide6 aborted (exit {proc.returncode}): {proc.stderr[-500:]}"
    assert proc.stdout.split() == ["300", str(sum(i * 0.5 for i in range(300)))]


TASK_REPRO = textwrap.dedent("""
    from PySide6.QtCore import QCoreApplication
    from explorer.tasks import BackgroundTask
    def values(_progress):
        for i in range(300):
            yield i * 0.5
        return "done"
    app = QCoreApplication([]); task = BackgroundTask(values)
    got = []; task.progressed.connect(got.append); task.finished.connect(lambda _: app.quit())
    task.start(); app.exec(); task.wait()
    print(len(got), sum(got))
""")


def test_the_apps_task_emitting_300_floats_to_the_gui_thread_does_not_abort():
    """The same pattern as the app runs it (explorer.tasks: a runner QObject on a QThread)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", TASK_REPRO], cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"PySide6 aborted (exit {proc.returncode}): {proc.stderr[-500:]}"
    assert proc.stdout.split() == ["300", str(sum(i * 0.5 for i in range(300)))]
