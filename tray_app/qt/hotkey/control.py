"""The global hotkey as the app uses it: a backend chosen once, the quick-pick it opens."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tray_app.core.server.models import Snapshot
from tray_app.qt.hotkey import HotkeyBackend, HotkeyResult, choose_backend

log = logging.getLogger(__name__)


class GlobalHotkey:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot | None],
        chosen: Callable[[str], None],
        pointed: Callable[[str], None] = lambda session_id: None,
    ) -> None:
        self._snapshot = snapshot
        self._chosen = chosen  # session id picked (or the only one): connect it
        self._pointed = pointed  # selected in the pick: its tunnel may start ahead
        self._backend: HotkeyBackend | None = None
        self._combo = ""
        self._pick: object | None = None
        self.status = ""  # why the hotkey is unavailable, for Settings ("" = fine)

    def apply(self, combo: str) -> None:
        if self._backend is None:
            from PySide6.QtGui import QGuiApplication

            self._backend = choose_backend(QGuiApplication.platformName())
            if hasattr(self._backend, "on_status"):  # the portal answers later
                self._backend.on_status = self._result
        self._combo = combo
        self._result(self._backend.register(combo, self._pressed))

    def unregister(self) -> None:
        if self._backend is not None:
            self._backend.unregister()

    def _result(self, result: HotkeyResult) -> None:
        self.status = "" if result.ok else result.reason
        if not result.ok and self._combo:
            log.warning("global hotkey %s: %s", self._combo, result.reason)

    def open_pick(self) -> None:
        """The quick-pick of live sessions (the hotkey, or the menu's "N more…" row)."""
        self._pressed()

    def _pressed(self) -> None:
        from tray_app.qt.quick_pick import QuickPick

        if self._pick is None:
            pick = QuickPick()
            pick.chosen.connect(self._chosen)
            pick.pointed.connect(self._pointed)
            self._pick = pick
        assert isinstance(self._pick, QuickPick)
        self._pick.open_or_choose(self._snapshot())
