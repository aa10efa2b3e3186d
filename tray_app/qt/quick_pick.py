"""The hotkey's quick-pick: type to filter your running sessions, Enter connects."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from tray_app.core.server.models import STATE_GLYPHS, Session, Snapshot
from tray_app.core.server.session_ref import connectable

ID_ROLE = Qt.ItemDataRole.UserRole + 1


def matches(session: Session, text: str) -> bool:
    needle = text.strip().lower()
    return not needle or any(
        needle in value.lower() for value in (session.name, session.id, session.project_name)
    )


class QuickPick(QDialog):
    chosen = Signal(str)  # session id
    pointed = Signal(str)  # session id selected, not yet chosen: Connect may follow

    def __init__(self) -> None:
        super().__init__(None, Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowTitle("Connect to a ClearML session")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Type to filter, Enter to connect")
        self.list = QListWidget()
        self.empty = QLabel("No running sessions of yours.")
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        self.filter.textChanged.connect(self._refill)
        self.list.itemActivated.connect(lambda item: self._choose(item))
        self.list.currentItemChanged.connect(self._pointed)
        self.filter.returnPressed.connect(lambda: self._choose(self.list.currentItem()))
        self._sessions: list[Session] = []
        self.resize(460, 300)

    def open_or_choose(self, snapshot: Snapshot | None) -> None:
        """One session: connect at once; several: show the list; none: say so."""
        self._sessions = connectable(snapshot)
        if len(self._sessions) == 1:
            self.chosen.emit(self._sessions[0].id)
            return
        self.filter.clear()
        self._refill()
        self.show()
        self.raise_()
        self.activateWindow()
        self.filter.setFocus()
        current = self.list.currentItem()
        if current is not None:
            self.pointed.emit(str(current.data(ID_ROLE)))

    def _refill(self) -> None:
        self.list.clear()
        for session in self._sessions:
            if matches(session, self.filter.text()):
                label = f"{STATE_GLYPHS[session.state]} {session.name}  ·  {session.short_id}"
                if session.project_name:
                    label += f"  ·  {session.project_name}"
                item = QListWidgetItem(label)
                item.setData(ID_ROLE, session.id)
                self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        self.empty.setVisible(not self._sessions)

    def _pointed(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None and self.isVisible():
            self.pointed.emit(str(item.data(ID_ROLE)))

    def _choose(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self.hide()
        self.chosen.emit(str(item.data(ID_ROLE)))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return  # handled by the filter's returnPressed / the list's itemActivated
        if key == Qt.Key.Key_Escape:
            self.hide()
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            step = 1 if key == Qt.Key.Key_Down else -1
            row = max(0, min(self.list.count() - 1, self.list.currentRow() + step))
            self.list.setCurrentRow(row)
        else:
            super().keyPressEvent(event)
