"""File → Export of the latent map (fault issue item 1): the SVG of a map coloured by a value
(KL, reconstruction error, distance) killed the app (a segfault inside the scene's render: the
point layer's vector paint raised on an empty colour bin) and left an empty hidden
``.NAME.tmp.svg``.  Every format in every colour mode is written in a child process, so that a
crash fails the test instead of the test run; a failed write says one sentence and leaves no
temporary file and the file that was there before."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[3]
SVG = "{http://www.w3.org/2000/svg}"

CHILD = textwrap.dedent("""
    import sys, time, faulthandler
    faulthandler.enable()
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from explorer.window.main_window import MainWindow
    run, out = Path(sys.argv[1]), Path(sys.argv[2])

    def spin(condition, seconds=60):
        end = time.monotonic() + seconds
        while not condition() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)
        assert condition(), "timed out"

    window = MainWindow(runs_dir=out / "runs")
    window.resize(1400, 900)
    window.show()
    state = window.open_run(run)
    spin(lambda: window.latent_view.points.n_points == len(state.probe.codes))
    colouring = window.latent_view.colouring
    print("KINDS:", " ".join(colouring.kinds()), flush=True)
    for kind in colouring.kinds():
        colouring.set_kind(kind)
        spin(lambda: kind == "class" or colouring.values is not None)
        print("POINTS:", window.latent_view.points.n_points, flush=True)
        for suffix in (".png", ".svg", ".csv"):
            target = out / f"map-{kind}{suffix}"
            write = window.exports.export_map_csv if suffix == ".csv" else window.exports.export_map
            written = write(str(target))
            print("WROTE:" if written == target else "FAILED:", kind, suffix, window.state_label.text(), flush=True)
    # a chosen point (ringed) on an earlier frame of the training movie, in the last value's colours
    view = window.latent_view
    view.points.set_selected(3)
    view.show_frame(state.movie.frame(0))
    print("FRAME:", view._shown_probe().step, "of", state.probe.step, flush=True)
    for suffix in (".png", ".svg"):
        target = out / f"map-frame{suffix}"
        print("WROTE:" if window.exports.export_map(str(target)) == target else "FAILED:", "frame", suffix, flush=True)
    window.close()

    # the comparison's maps are latent maps too: its figure, each map coloured by a value
    from explorer.compare.view import CompareView
    from explorer.session import RunState, Session
    session = Session()
    states = [session.add(RunState.open(p)) for p in (run, Path(sys.argv[3]))]
    view = CompareView(session, states)
    view.resize(1200, 760)
    view.show()
    for column, kind in zip(view.columns, ("kl", "nearest_distance")):
        column.map.colouring.set_kind(kind)
        spin(lambda: column.map.colouring.values is not None)
    for suffix in (".png", ".svg"):
        target = out / f"compare{suffix}"
        print("WROTE:" if view.export_figure(target) == target else "FAILED:", "compare", suffix, flush=True)
    view.close()
""")


def test_every_map_format_in_every_colour_mode_is_written_without_a_crash(run_paths, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(run_paths[0]), str(out), str(run_paths[1])], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode not in (-11, 139), "the export crashed:\n" + proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    kinds = next(line for line in proc.stdout.splitlines() if line.startswith("KINDS:")).split()[1:]
    assert kinds == ["class", "reconstruction_error", "kl", "nearest_distance"], "the VAE offers every colour"
    n_points = int(next(line for line in proc.stdout.splitlines() if line.startswith("POINTS:")).split()[1])
    assert n_points > 100
    wrote = [line for line in proc.stdout.splitlines() if line.startswith("WROTE:")]
    assert len(wrote) == 3 * len(kinds) + 4, proc.stdout
    assert sorted(p.name for p in out.iterdir() if p.name != "runs") == sorted(
        [f"map-{kind}{suffix}" for kind in kinds for suffix in (".png", ".svg", ".csv")]
        + ["map-frame.png", "map-frame.svg", "compare.png", "compare.svg"])
    frame_step, _, last_step = next(line for line in proc.stdout.splitlines() if line.startswith("FRAME:")).split()[1:]
    assert int(frame_step) < int(last_step), "the frame exported is an earlier one"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "no temporary file is left"
    for kind in kinds:
        svg = (out / f"map-{kind}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and svg.rstrip().endswith("</svg>")
        groups = [g for g in ElementTree.fromstring(svg).iter(f"{SVG}g") if g.findall(f"{SVG}circle")]
        assert sum(len(g.findall(f"{SVG}circle")) for g in groups) >= n_points, f"the {kind} SVG draws every point"
        assert len({g.get("fill") for g in groups}) >= 5, f"the {kind} SVG draws its points in their colours"
        assert (out / f"map-{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        header = (out / f"map-{kind}.csv").read_text().splitlines()[0].split(",")
        assert header == ["index", "label", "class", "x", "y", *([kind] if kind != "class" else [])]
    frame = ElementTree.fromstring((out / "map-frame.svg").read_text())
    assert len(list(frame.iter(f"{SVG}circle"))) >= n_points and (out / "map-frame.png").stat().st_size > 1000
    compare = ElementTree.fromstring((out / "compare.svg").read_text())
    assert len(list(compare.iter(f"{SVG}circle"))) >= 2 * n_points, "both comparison maps draw their points"


def test_a_failed_map_write_says_one_sentence_and_leaves_no_temporary_file(window, run_paths, tmp_path, qtbot,
                                                                             monkeypatch):
    state = window.open_run(run_paths[0])
    qtbot.waitUntil(lambda: window.latent_view.points.n_points == len(state.probe.codes), timeout=10_000)
    # class colours: a regression of the value-colour crash must fail the child-process test above,
    # not kill this test run
    folder = tmp_path / "read-only"
    folder.mkdir()
    for name in ("map.svg", "map.png", "map.csv"):
        (folder / name).write_text("the earlier export")
    real_write_bytes, real_write_text = Path.write_bytes, Path.write_text

    def read_only(write):   # the tests run as root, for whom chmod does not stop a write: the file
        def refuse(self, data, *args, **kw):   # system's refusal, after part of the file is written
            if self.parent == folder:
                write(self, data[: len(data) // 2], *args, **kw)
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            return write(self, data, *args, **kw)
        return refuse

    monkeypatch.setattr(Path, "write_bytes", read_only(real_write_bytes))
    monkeypatch.setattr(Path, "write_text", read_only(real_write_text))
    for name, export in (("map.svg", window.exports.export_map), ("map.png", window.exports.export_map),
                         ("map.csv", window.exports.export_map_csv)):
        assert export(str(folder / name)) is None
        message = window.message_box.text()
        assert message == f"{folder} is on a read-only file system, so {name} could not be written.", message
        assert "Traceback" not in message and message.count(". ") == 0
        window.message_box.close()
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["map.csv", "map.png", "map.svg"], "no temporary file"
    assert all((folder / name).read_text() == "the earlier export" for name in ("map.svg", "map.png", "map.csv"))


LAYER_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from PySide6.QtCore import QBuffer, QIODevice, QRectF
    from PySide6.QtGui import QColor, QPainter, QPicture
    from PySide6.QtSvg import QSvgGenerator
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    import pyqtgraph as pg
    from explorer.map.point_layer import PointLayer
    plot = pg.PlotWidget()
    layer = PointLayer()
    plot.addItem(layer)
    plot.resize(300, 200)
    # labels 0 and 2 only: label 1 has a colour and no point (a class absent from the probe)
    layer.set_points(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]), np.array([0, 2, 2]),
                     [QColor("red"), QColor("green"), QColor("blue")])
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    svg = QSvgGenerator()
    svg.setOutputDevice(buffer)
    for device in (svg, QPicture()):
        painter = QPainter(device)
        plot.scene().render(painter, QRectF(0, 0, 300, 200), plot.sceneRect())
        painter.end()
    print("CIRCLES:", bytes(buffer.data()).count(b"<circle"), flush=True)
""")


def test_a_colour_without_points_paints_on_vector_devices():
    """A colour that no point has (a class absent from the probe, an empty value bin) raised inside
    the point layer's vector paint, which killed the process; every point is still drawn."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", LAYER_CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CIRCLES: 3" in proc.stdout, proc.stdout
