"""A minimal app for the hotkey desktop test: registers a global hotkey with the real backend,
shows the quick-pick with two sessions when it fires, and prints what happens on stdout:
"REGISTER <status> <reason>", "SHOWN", "CHOSEN <session id>".
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from PySide6.QtWidgets import QApplication

from tray_app.core.server.models import Session, SessionState, Snapshot
from tray_app.qt.hotkey import choose_backend
from tray_app.qt.quick_pick import QuickPick


def main() -> int:
    app = QApplication(sys.argv[:1])
    now = datetime.now(UTC)
    sessions = tuple(
        Session(id=sid, name=name, status="in_progress", state=SessionState.RUNNING, started=now)
        for sid, name in (("a" * 32, "gpu-training-box"), ("b" * 32, "cpu-notebook"))
    )
    snapshot = Snapshot(sessions=sessions, fetched_at=now)
    pick = QuickPick()
    pick.chosen.connect(lambda sid: print(f"CHOSEN {sid}", flush=True))

    def activated() -> None:
        pick.open_or_choose(snapshot)
        print("SHOWN", flush=True)

    backend = choose_backend(app.platformName())
    result = backend.register(sys.argv[1], activated)
    print(f"REGISTER {result.status.value} {result.reason}", flush=True)
    if not result.ok:
        return 0
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
