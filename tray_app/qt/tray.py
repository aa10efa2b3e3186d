"""The system-tray icon and its menu, rebuilt from the latest state every time it opens."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QRect, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from tray_app.core.atomic import atomic_write_text
from tray_app.core.ports import Ask, Question, confirm
from tray_app.core.view.actions import MenuAction
from tray_app.core.view.menu import (
    GAP,
    MenuItem,
    TrayView,
    build_menu,
    flatten_text,
    icon_state,
    row_text,
    running_count,
    tooltip,
)
from tray_app.qt.icons import state_icon, tray_icon

log = logging.getLogger(__name__)

TRAY_WATCH_MS = 2000  # how often the tray host's presence is checked
OPEN_MENU_CHECK_MS = 2000  # an open menu's data is checked this often
# Desktop tests read what the menu showed from this file (written when the menu opens).
MENU_DUMP_ENV = "CLEARML_TRAY_TEST_MENU_DUMP"


def populate(
    menu: QMenu,
    items: tuple[MenuItem, ...],
    on_action: Callable[[MenuItem], None],
    *,
    open_: bool = False,
) -> None:
    """Fill `menu` with `items`. `open_`: the menu is on screen: the new rows are added before
    the old ones go (a QMenu emptied while shown closes itself under the user's pointer)."""
    old = list(menu.actions())
    before = menu.geometry()
    if not open_:
        for action in old:
            if action.menu() is not None:  # clear() keeps submenus alive: free them
                action.menu().deleteLater()
        menu.clear()
    _add_rows(menu, items, on_action)
    if open_:
        for action in old:
            menu.removeAction(action)
            sub = action.menu()
            (sub if sub is not None else action).deleteLater()
        keep_anchored(menu, before)
    menu.setToolTipsVisible(True)


def keep_anchored(menu: QMenu, before: QRect) -> None:
    """An open menu whose rows changed width resizes from its left edge; one that opened
    leftwards from a tray on the right would move away from the icon: keep its right edge."""
    menu.adjustSize()
    now = menu.geometry()
    screen = menu.screen().availableGeometry()
    if now.width() != before.width() and (
        screen.right() - before.right() < before.left() - screen.left()
    ):
        menu.move(before.right() - now.width() + 1, before.top())


def _add_rows(
    menu: QMenu, items: tuple[MenuItem, ...], on_action: Callable[[MenuItem], None]
) -> None:
    for item in items:
        if item.separator:
            menu.addSeparator()
            continue
        if item.children:
            # Submenus are filled when they open: a menu of hundreds of sessions opens at once.
            # The right-hand column (after a tab) is drawn where shortcuts go: aligned. Qt
            # leaves no room between it and the submenu arrow: an en space keeps them apart.
            sub = menu.addMenu(row_text(item) + (GAP if item.detail else ""))
            if item.tooltip:
                sub.menuAction().setToolTip(item.tooltip)
            sub.aboutToShow.connect(
                lambda s=sub, c=item.children: populate(s, c, on_action) if s.isEmpty() else None
            )
            if item.session_id:
                # A session's submenu opening is a hint that Connect may follow: the tunnel
                # can start now (see core.flows.prewarm).
                sub.aboutToShow.connect(
                    lambda sid=item.session_id: on_action(MenuItem("", MenuAction.INTENT, sid))
                )
            continue
        action = QAction(row_text(item), menu)
        # Information rows that copy a value are enabled: readable, not grey-on-grey.
        action.setEnabled(item.action is not None or bool(item.copy))
        if item.tooltip:
            action.setToolTip(item.tooltip)
        if item.action is not None or item.copy:
            action.triggered.connect(lambda _checked=False, it=item: on_action(it))
        menu.addAction(action)


class FallbackWindow(QWidget):
    """Shown when the desktop has no system tray: the same menu behind a button."""

    def __init__(self, menu: QMenu) -> None:
        super().__init__()
        self.setWindowTitle("ClearML Session Tray")
        self.status = QLabel("No system tray was found on this desktop; sessions are here.")
        self.status.setWordWrap(True)
        button = QPushButton("Sessions")
        button.setMenu(menu)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(button)
        self.resize(360, 120)


class Tray(QObject):
    def __init__(
        self,
        view: Callable[[], TrayView],
        on_action: Callable[[str, str | None], None],
        on_open: Callable[[], object] = lambda: None,
        ask: Ask | None = None,
    ) -> None:
        super().__init__()
        self.ask = ask  # confirmations (Stop, Delete) as non-modal questions
        self._questions: set[asyncio.Future[None]] = set()
        self._view = view
        self._on_action = on_action
        self._on_open = on_open
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self._rebuild)
        # While the menu stays open it is kept current: the server is asked again every few
        # seconds (answers under a second old count as current), and the rows follow.
        self._open_check = QTimer(self)
        self._open_check.setInterval(OPEN_MENU_CHECK_MS)
        self._open_check.timeout.connect(self._on_open)
        self.menu.aboutToShow.connect(self._open_check.start)
        self.menu.aboutToHide.connect(self._open_check.stop)
        self.icon = QSystemTrayIcon()
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.window: FallbackWindow | None = None
        # The tray host can come and go (a panel restart): watch it for as long as we run.
        self._retry = QTimer(self)
        self._retry.setInterval(TRAY_WATCH_MS)
        self._retry.timeout.connect(self._try_tray)
        self.last_items: tuple[MenuItem, ...] = ()
        self._icon_name = ""
        self._icon_key: tuple[str, int] = ("", -1)
        self.update_state()

    def show(self) -> None:
        self._retry.start()
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()
            log.info("tray icon shown")
            return
        log.warning("no system tray available: showing a window instead and retrying the tray")
        self._show_window()

    def _show_window(self) -> None:
        if self.window is None:
            self.window = FallbackWindow(self.menu)
            self.window.setWindowIcon(state_icon(self._icon_name or "ok"))
            self.window.status.setText(tooltip(self._view()))
        self.window.show()

    def close(self) -> None:
        """Quit: no icon, no fallback window, no retry left behind."""
        self._retry.stop()
        self.icon.hide()
        if self.window is not None:
            self.window.close()

    def _try_tray(self) -> None:
        available = QSystemTrayIcon.isSystemTrayAvailable()
        shown = self.window is not None and self.window.isVisible()
        if available and (shown or not self.icon.isVisible()):
            self.icon.show()
            if self.window is not None:
                self.window.hide()
            log.info("a system tray appeared: tray icon shown")
        elif not available and not shown:
            log.warning("the system tray went away: showing a window instead")
            self._show_window()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # Left click opens the same menu as right click: the menu is the whole UI. A quick second
        # click arrives as DoubleClick and must open it too, not be lost.
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.popup()

    def popup(self) -> None:
        geometry = self.icon.geometry()
        if geometry.isValid() and not geometry.isEmpty():
            self.menu.popup(geometry.bottomLeft())
        elif self.window is not None and self.window.isVisible():
            self.window.raise_()
            self.window.activateWindow()
        else:
            from PySide6.QtGui import QCursor

            self.menu.popup(QCursor.pos())

    def update_state(self) -> None:
        view = self._view()
        name = icon_state(view)
        key = (name, running_count(view) if name in ("ok", "busy") else 0)
        if key != self._icon_key:
            icon: QIcon = tray_icon(*key)
            self.icon.setIcon(icon)
            if self.window is not None:
                self.window.setWindowIcon(icon)
            self._icon_name, self._icon_key = name, key
        text = tooltip(view)
        self.icon.setToolTip(text)
        if self.window is not None:
            self.window.status.setText(text)
        self._refresh_open_menu(view)

    def _refresh_open_menu(self, view: TrayView) -> None:
        """An open menu follows the state (the server went down while the user looks at it),
        unless a submenu is open: rebuilding would close it under the mouse."""
        if not self.menu.isVisible():
            return
        active = self.menu.activeAction()
        submenu = active.menu() if active is not None else None
        if isinstance(submenu, QMenu) and submenu.isVisible():
            return
        items = build_menu(view)
        if items == self.last_items:
            return
        self._show(items, open_=True)
        self._keep_on_screen()

    def _keep_on_screen(self) -> None:
        """An open menu that grew (an error row is wider than the sessions) stays on the
        screen: the tray sits at an edge, and Qt keeps a shown menu where it was."""
        screen = self.menu.screen()
        if screen is None:
            return
        area = screen.availableGeometry()
        size = self.menu.sizeHint()
        x = min(self.menu.x(), area.right() + 1 - size.width())
        y = min(self.menu.y(), area.bottom() + 1 - size.height())
        if (x, y) != (self.menu.x(), self.menu.y()):
            self.menu.move(max(area.left(), x), max(area.top(), y))

    def _rebuild(self) -> None:
        self._on_open()
        self._show(build_menu(self._view()))

    def _show(self, items: tuple[MenuItem, ...], open_: bool = False) -> None:
        self.last_items = items
        populate(self.menu, items, self._trigger, open_=open_)
        dump = os.environ.get(MENU_DUMP_ENV)
        if dump:
            text = "\n".join(flatten_text(items)) + "\n"
            self._dump_task = asyncio.ensure_future(
                asyncio.to_thread(_write_dump, Path(dump), text)
            )

    def _trigger(self, item: MenuItem) -> None:
        if item.copy and item.action is None:
            QGuiApplication.clipboard().setText(item.copy)
            log.info("copied a menu row's value (%d characters)", len(item.copy))
            return
        if item.action is None:
            return
        if item.confirm and self.ask is not None:
            task = asyncio.ensure_future(self._confirm_then_run(item, self.ask))
            self._questions.add(task)
            task.add_done_callback(self._questions.discard)
            return
        self._on_action(item.action, item.session_id)

    async def _confirm_then_run(self, item: MenuItem, ask: Ask) -> None:
        # The button says what it does ("Stop session"), never a bare "Yes"; Enter takes the
        # safe one, Cancel, when the other ends or deletes something.
        button = item.confirm_button or "Continue"
        question = Question(
            button if item.confirm_button else "ClearML Session Tray",
            item.confirm,
            (button, "Cancel"),
            destructive=0 if item.confirm_button else None,
            default=1 if item.confirm_button else 0,
        )
        if await confirm(ask, question) and item.action is not None:
            self._on_action(item.action, item.session_id)

    def notify(self, title: str, text: str, error: bool = False) -> None:
        icon = (
            QSystemTrayIcon.MessageIcon.Warning
            if error
            else QSystemTrayIcon.MessageIcon.Information
        )
        if self.icon.isVisible():
            self.icon.showMessage(title, text, icon, 8000)
        elif error:
            box = QMessageBox(QMessageBox.Icon.Warning, title, text)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()  # never a nested event loop


def _write_dump(path: Path, text: str) -> None:
    # Two dumps may be written at once (a rebuild while the menu opens): each its own file.
    atomic_write_text(path, text, durable=False)
