"""Tray icons per state, from resources/icons (source checkout, wheel or PyInstaller bundle)."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

STATES = ("ok", "busy", "error", "offline")


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


def notification_icon(state: str = "ok") -> Path | None:
    """A PNG for desktop notifications (they take a file, not a QIcon): "ok" for a ready
    session, "error" for failures, "busy" for progress and plain information."""
    root = icons_dir()
    if state not in STATES:
        state = "ok"
    png = root / "png" / "64" / f"clearml-tray-{state}.png" if root else None
    return png if png and png.is_file() else None
