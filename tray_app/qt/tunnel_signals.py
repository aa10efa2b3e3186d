"""`TunnelEvents` (core.tunnels.ports) as Qt signals: what the tunnels tell the views.

The registry calls plain methods; the views (menu, icon, poller, log windows) connect to
signals. The signals carry strings only, never Python objects (PySide6 has lost references
across `Signal.emit` of those).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class TunnelSignals(QObject):
    tunnels_changed = Signal()
    output_received = Signal(str, str)  # key, redacted output text (live log windows)
    follow_log_requested = Signal(str)  # key

    def changed(self) -> None:
        self.tunnels_changed.emit()

    def output(self, key: str, text: str) -> None:
        self.output_received.emit(key, text)

    def follow_log(self, key: str) -> None:
        self.follow_log_requested.emit(key)
