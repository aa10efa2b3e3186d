"""Tray icons per state, from resources/icons (source checkout, wheel or PyInstaller bundle)."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPen, QPixmap

STATES = ("ok", "busy", "error", "offline")
# The badges that carry the number of running sessions (resources/icons/make_svgs.py draws the
# same circle): its colour, and the colour of the digits on it.
COUNT_BADGES = {"ok": ("#2fbf71", "#ffffff"), "busy": ("#f2a900", "#1d2a44")}
COUNT_SIZES = (16, 22, 24, 32, 48, 64, 128)


def icons_dir() -> Path | None:
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "resources" / "icons", here.parents[1] / "resources" / "icons"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "resources" / "icons")
    candidates.append(Path(sys.prefix) / "share" / "clearml-tray" / "icons")
    return next((c for c in candidates if (c / "clearml-tray-ok.svg").is_file()), None)


@cache
def state_icon(state: str) -> QIcon:
    """The icon for a state ("ok", "busy", "error", "offline"): every PNG size plus the SVG."""
    icon = QIcon()
    root = icons_dir()
    if root is None:
        return QIcon.fromTheme("applications-system")
    for png in sorted((root / "png").glob(f"*/clearml-tray-{state}.png")):
        icon.addFile(str(png))
    svg = root / f"clearml-tray-{state}.svg"
    if svg.is_file():
        icon.addFile(str(svg))
    if sys.platform == "darwin":
        icon.setIsMask(True)  # a template image: the menu bar tints it for light and dark
    return icon


@cache
def tray_icon(state: str, count: int = 0) -> QIcon:
    """The tray icon: the state's, with the number of running sessions in its badge (ok and
    busy; "9+" past nine). Errors keep their mark: what is wrong matters more than a count."""
    base = state_icon(state)
    if count <= 0 or state not in COUNT_BADGES:
        return base
    fill, ink = COUNT_BADGES[state]
    text = str(count) if count < 10 else "9+"
    icon = QIcon()
    for size in COUNT_SIZES:
        pixmap = base.pixmap(size, size)
        if pixmap.isNull():
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
        scale = pixmap.width() / 64
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        badge = QRectF((46 - 15) * scale, (46 - 15) * scale, 30 * scale, 30 * scale)
        painter.setPen(QPen(QColor("#e8ecf4"), max(1.0, 3 * scale)))
        painter.setBrush(QColor(fill))
        painter.drawEllipse(badge)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(7, round((22 if len(text) == 1 else 17) * scale)))
        painter.setFont(font)
        painter.setPen(QColor(ink))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def notification_icon(state: str = "ok") -> Path | None:
    """A PNG for desktop notifications (they take a file, not a QIcon): "ok" for a ready
    session, "error" for failures, "busy" for progress and plain information."""
    root = icons_dir()
    if state not in STATES:
        state = "ok"
    png = root / "png" / "64" / f"clearml-tray-{state}.png" if root else None
    return png if png and png.is_file() else None
