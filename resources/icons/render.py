"""Render the SVG sources to PNG sizes with Qt. Run: python resources/icons/render.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication(sys.argv[:1])
    here = Path(__file__).resolve().parent
    for svg in sorted(here.glob("clearml-tray-*.svg")):
        renderer = QSvgRenderer(str(svg))
        if not renderer.isValid():
            print(f"invalid SVG: {svg}", file=sys.stderr)
            return 1
        for size in SIZES:
            image = QImage(size, size, QImage.Format.Format_ARGB32)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter)
            painter.end()
            out = here / "png" / str(size) / f"{svg.stem}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            image.save(str(out))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
