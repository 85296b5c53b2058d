"""Draw the app's icon, resources/icon.png (256×256): a latent map's clusters and the handle.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_icon.py
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPen

OUT = Path(__file__).resolve().parents[1] / "resources" / "icon.png"


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 — QPainter on a QImage needs the font system
    size = 256
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#212529"))
    p.drawRoundedRect(QRectF(8, 8, size - 16, size - 16), 44, 44)
    rng = random.Random(3)
    clusters = [((86, 92), "#e03131"), ((170, 96), "#1c7ed6"), ((96, 172), "#2f9e44"), ((168, 170), "#f08c00")]
    for (cx, cy), colour in clusters:
        p.setBrush(QColor(colour))
        for _ in range(34):
            r, a = abs(rng.gauss(0, 17)), rng.uniform(0, 2 * math.pi)
            p.drawEllipse(QPointF(cx + r * math.cos(a), cy + r * math.sin(a)), 5.5, 5.5)
    centre, radius = QPointF(134, 132), 26
    for colour, width in (("#212529", 14), ("#f8f9fa", 7)):
        pen = QPen(QColor(colour), width)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(centre, radius, radius)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            p.drawLine(centre + QPointF(dx, dy) * (radius - 10), centre + QPointF(dx, dy) * (radius + 18))
    p.end()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(OUT))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
