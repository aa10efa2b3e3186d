"""The tray's windows: all non-modal, kept alive while shown, one of each kind where it matters.

Nothing here decides anything: the composition root says what to show and what a window's
answer leads to (callbacks); the windows only show and report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from tray_app.core.server.credentials import Credentials, Saved
from tray_app.core.server.errors import ConfigError
from tray_app.core.server.models import LogLine
from tray_app.core.settings.presets import Preset
from tray_app.core.settings.settings import Settings


class Windows:
    def __init__(self) -> None:
        self._open: list[QWidget] = []
        # clearml-session output goes to these: a launch's own log window, and the launcher tab
        # of a session's Show log (keyed by the child's log key, which never changes).
        self.log_windows: dict[str, Any] = {}
        self.session_logs: dict[str, list[Any]] = {}
        self.onboarding: Any = None
        self.new_session_dialog: Any = None
        self.credentials_dialog: Any = None

    def keep(self, window: Any) -> None:
        """Show `window` and hold it until it is closed."""
        self._open.append(window)
        window.finished.connect(lambda *_: self._open.remove(window))
        window.show()
        window.raise_()
        window.activateWindow()

    def close_all(self) -> None:
        """Quit: every window of ours goes (a log window, settings, the onboarding…)."""
        for window in [*self._open, *self.log_windows.values()]:
            window.close()
        self.log_windows.clear()
        self.session_logs.clear()
        self.close_onboarding()

    def console_log(
        self,
        title: str,
        lines: list[LogLine],
        reload: Callable[[], Awaitable[list[LogLine]]] | None = None,
        launcher: tuple[str, str] | None = None,
    ) -> None:
        """A session's server log, oldest first, following new lines while it is open; with
        `launcher` (log key, text so far), its clearml-session log too, in a second tab."""
        from tray_app.qt.console_log import format_lines
        from tray_app.qt.dialogs.log_window import LogWindow

        async def text() -> str:
            assert reload is not None
            return format_lines(await reload())

        window = LogWindow(
            title,
            format_lines(lines),
            reload=text if reload else None,
            launcher=launcher[1] if launcher else None,
        )
        if launcher is not None:
            views = self.session_logs.setdefault(launcher[0], [])
            views.append(window)
            window.finished.connect(lambda *_: views.remove(window))
        self.keep(window)

    def about(self, html: str) -> None:
        from tray_app import APP_DISPLAY_NAME

        self.message(f"About {APP_DISPLAY_NAME}", html)

    def message(self, title: str, html: str) -> None:
        self.keep(QMessageBox(QMessageBox.Icon.Information, title, html))

    def settings(
        self,
        current: Settings,
        hotkey_status: str,
        accepted: Callable[[Settings], None],
        in_use: str = "",
    ) -> None:
        from tray_app.platform.autostart import choose_autostart
        from tray_app.qt.dialogs.settings_dialog import SettingsDialog

        dialog = SettingsDialog(current)
        dialog.set_server_in_use(in_use)
        autostart = choose_autostart()
        if not autostart.available:
            dialog.set_autostart_status(autostart.reason)
        dialog.set_hotkey_status(hotkey_status)
        dialog.settings_accepted.connect(accepted)
        self.keep(dialog)

    def show_onboarding(
        self,
        error: ConfigError | None,
        *,
        config_file: Callable[[str], None],
        demo: Callable[[], None],
        retry: Callable[[], None],
        keys: Callable[[], None] = lambda: None,
    ) -> None:
        from tray_app.qt.dialogs.onboarding import OnboardingDialog

        if self.onboarding is None:
            dialog = OnboardingDialog(error)
            dialog.config_file_chosen.connect(config_file)
            dialog.demo_requested.connect(demo)
            dialog.retry_requested.connect(retry)
            dialog.keys_requested.connect(keys)
            dialog.finished.connect(lambda *_: setattr(self, "onboarding", None))
            self.onboarding = dialog
        self.onboarding.set_error(error)
        self.onboarding.show()
        self.onboarding.raise_()

    def credentials(
        self,
        submit: Callable[[Credentials], Awaitable[Saved]],
        *,
        server: str,
        web: str,
        problem: str,
        saved: Callable[[Saved], None],
    ) -> None:
        """The ClearML keys dialog (one at a time: asked again, the open one comes forward)."""
        from tray_app.qt.dialogs.credentials import CredentialsDialog

        dialog = self.credentials_dialog
        if dialog is None or not dialog.isVisible():
            dialog = CredentialsDialog(submit, server=server, web=web, problem=problem)
            dialog.accepted.connect(lambda: saved(dialog.saved) if dialog.saved else None)
            self.credentials_dialog = dialog
            self.keep(dialog)
        else:
            dialog.raise_()
            dialog.activateWindow()

    def close_onboarding(self) -> None:
        if self.onboarding is not None:
            self.onboarding.close()

    def new_session(
        self,
        presets: Sequence[Preset],
        load_queues: Any,
        *,
        launch: Callable[[Preset], None],
        save: Callable[[Preset], None],
        last_queue: str = "",
    ) -> None:
        from tray_app.qt.dialogs.new_session import NewSessionDialog

        dialog = NewSessionDialog(list(presets), load_queues=load_queues, last_queue=last_queue)
        dialog.launch_requested.connect(launch)
        dialog.save_requested.connect(save)
        self.keep(dialog)
        self.new_session_dialog = dialog

    def preset_saved(self, preset: Preset) -> None:
        dialog = self.new_session_dialog
        if dialog is not None and dialog.isVisible():
            dialog.preset_saved(preset)

    def pick_presets_file(self, save: bool, chosen: Callable[[Path], None]) -> None:
        title = "Export presets" if save else "Import presets"
        start = Path.home() / "clearml-presets.json" if save else Path.home()
        dialog = QFileDialog(None, title, str(start), "Presets (*.json)")
        if save:
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setDefaultSuffix("json")
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(lambda path: chosen(Path(path)))
        self.keep(dialog)

    def follow_log(self, key: str, text: str, label: str = "") -> None:
        """The live log of one clearml-session child (appended to by `child_output`), titled
        with the session's name and short id (or the preset's name before the CLI names it)."""
        from tray_app.qt.dialogs.log_window import LogWindow

        window = self.log_windows.get(key)
        if window is None:
            window = LogWindow(f"clearml-session log — {label or 'new session'}", text, live=True)
            window.finished.connect(lambda *_: self.log_windows.pop(key, None))
            self.log_windows[key] = window
        elif label:
            window.setWindowTitle(f"clearml-session log — {label}")
        window.show()
        window.raise_()

    def retitle_logs(self, labels: Mapping[str, str]) -> None:
        """A launch's log window takes the session's name and short id once the CLI names it."""
        for key, window in self.log_windows.items():
            if labels.get(key):
                window.setWindowTitle(f"clearml-session log — {labels[key]}")

    def child_output(self, key: str, text: str) -> None:
        window = self.log_windows.get(key)
        if window is not None:
            window.append(text)
        for session_window in self.session_logs.get(key, ()):
            session_window.append_launcher(text)
