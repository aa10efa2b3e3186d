"""The Settings dialog: edits a copy of Settings; OK validates and emits the new value.

The caller saves (core.settings.save_settings, off the GUI thread) and applies the changes
without a restart. Invalid values keep the dialog open with the reason shown.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QKeySequenceEdit,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tray_app.core.settings.settings import IdleMode, ServerProfile, Settings, validate_settings

IDLE_MODE_LABELS = {
    IdleMode.OFF: "Off",
    IdleMode.NOTIFY: "Notify me",
    IdleMode.NOTIFY_THEN_STOP: "Notify, then stop after the grace period",
}


def _hotkey_text(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


class SettingsDialog(QDialog):
    settings_accepted = Signal(object)  # Settings

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Qt adds " — ClearML Session Tray" (the application's display name) itself.
        self.setWindowTitle("Settings")
        self._settings = copy.deepcopy(settings)
        self._profiles = [ServerProfile(p.name, p.config_file) for p in settings.profiles]
        tabs = QTabWidget()
        tabs.addTab(self._server_tab(), "Server")
        tabs.addTab(self._connect_tab(), "Connect")
        tabs.addTab(self._notifications_tab(), "Notifications")
        tabs.addTab(self._idle_tab(), "Idle sessions")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c62828")
        self.error.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.try_accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        # Its content has one right size: not resizable, so window managers draw no resize
        # handle along its bottom edge (openbox's showed as a stray line).
        layout.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        self._load_profile(self.profile.currentIndex())

    # --- tabs -----------------------------------------------------------------------------
    def _server_tab(self) -> QWidget:
        s = self._settings
        page = QWidget()
        form = QFormLayout(page)
        # What the tray shows now, the demo server included: a server the profiles do not name
        # (the demo, --config-file) is still visible here.
        self.in_use = QLabel()
        self.in_use.setWordWrap(True)
        self.in_use.setMinimumWidth(480)
        self.in_use.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.in_use.hide()
        form.addRow(self.in_use)
        self.profile = QComboBox()
        self.profile.addItems([p.name for p in self._profiles])
        self.profile.setCurrentIndex(
            max(0, [p.name for p in self._profiles].index(s.active_profile))
            if s.active_profile in [p.name for p in self._profiles]
            else 0
        )
        self._shown_profile = self.profile.currentIndex()
        self.profile.currentIndexChanged.connect(self._profile_changed)
        add = QPushButton("Add…")
        add.clicked.connect(self._add_profile)
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self._remove_profile)
        row = QHBoxLayout()
        row.addWidget(self.profile, 1)
        row.addWidget(add)
        row.addWidget(self.remove)
        form.addRow("Server profile", row)
        self.config_file = QLineEdit()
        self.config_file.setPlaceholderText("~/clearml.conf (the ClearML SDK's lookup)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_config)
        file_row = QHBoxLayout()
        file_row.addWidget(self.config_file, 1)
        file_row.addWidget(browse)
        form.addRow("ClearML config file", file_row)
        self.poll_interval = QSpinBox()
        self.poll_interval.setRange(1, 100000)  # validate_settings gives the reason for 5..3600
        self.poll_interval.setSuffix(" s")
        self.poll_interval.setValue(s.poll_interval_s)
        self.poll_interval.setToolTip(
            "While you use the tray, or a session or tunnel is coming up. After 10 minutes "
            "without a look at the menu the tray refreshes every minute, and not at all while "
            "the screen is locked: a hosted server counts API calls."
        )
        form.addRow("Refresh every", self.poll_interval)
        self.show_all_users = QCheckBox("Show other users' sessions under “All users”")
        self.show_all_users.setChecked(s.show_all_users)
        form.addRow("", self.show_all_users)
        self.start_on_login = QCheckBox("Start ClearML Session Tray when I log in")
        self.start_on_login.setChecked(s.start_on_login)
        form.addRow("", self.start_on_login)
        self.autostart_note = QLabel()
        self.autostart_note.hide()
        form.addRow("", self.autostart_note)
        return page

    def _connect_tab(self) -> QWidget:
        s = self._settings
        page = QWidget()
        form = QFormLayout(page)
        self.editor_command = QLineEdit(s.editor_command)
        self.editor_command.setPlaceholderText("detect VS Code, Cursor or VSCodium")
        form.addRow("Editor command", self.editor_command)
        self.clearml_session = QLineEdit(s.clearml_session)
        self.clearml_session.setPlaceholderText("the bundled or installed one")
        self.clearml_session.setToolTip(
            "Another clearml-session program to run for tunnels and new sessions (a path); "
            "empty: the one that comes with the tray, else the first on PATH."
        )
        form.addRow("clearml-session", self.clearml_session)
        self.open_editor = QCheckBox("Open the editor when a new session is ready")
        self.open_editor.setChecked(s.open_editor_when_ready)
        form.addRow("", self.open_editor)
        self.tunnel_on_intent = QCheckBox("Open a session's tunnel as soon as I point at it")
        self.tunnel_on_intent.setToolTip(
            "When a session's submenu or the quick pick shows it, its SSH tunnel starts in the "
            "background, so Connect opens the editor at once. Unused, it closes after 90 "
            "seconds."
        )
        self.tunnel_on_intent.setChecked(s.tunnel_on_intent)
        form.addRow("", self.tunnel_on_intent)
        self.warm_tunnels = QCheckBox("Keep tunnels open to my newest running sessions")
        self.warm_tunnels.setToolTip(
            "Connect opens the editor at once. Each open tunnel keeps a clearml-session and an "
            "ssh process running (about 95 MB of memory per session), and that clearml-session "
            "asks the server for its session every 3 seconds (about 1,200 API calls an hour, "
            "which a metered server counts)."
        )
        self.warm_tunnels.setChecked(s.warm_tunnels)
        form.addRow("", self.warm_tunnels)
        self.warm_max = QSpinBox()
        self.warm_max.setRange(0, 1000)  # validate_settings gives the reason for 1..50
        self.warm_max.setSuffix(" tunnels")
        self.warm_max.setValue(s.warm_tunnels_max)
        self.warm_max_mb = QSpinBox()
        self.warm_max_mb.setRange(0, 1_000_000)  # and for 100..65536 MB
        self.warm_max_mb.setSuffix(" MB")
        self.warm_max_mb.setSingleStep(100)
        self.warm_max_mb.setValue(s.warm_tunnels_max_mb)
        caps = QHBoxLayout()
        caps.setContentsMargins(0, 0, 0, 0)  # lined up with the check boxes above it
        caps.addWidget(QLabel("at most"))
        caps.addWidget(self.warm_max)
        caps.addWidget(QLabel("using at most"))
        caps.addWidget(self.warm_max_mb)
        caps.addStretch(1)
        caps_box = QWidget()
        caps_box.setLayout(caps)
        caps_box.setToolTip(
            "The newest sessions get a tunnel first; past the memory cap the tunnels of the "
            "oldest sessions close."
        )
        caps_box.setEnabled(s.warm_tunnels)
        self.warm_tunnels.toggled.connect(caps_box.setEnabled)
        form.addRow("", caps_box)
        self.hotkey = QKeySequenceEdit(QKeySequence.fromString(s.hotkey))
        self.hotkey.setMaximumSequenceLength(1)
        clear = QPushButton("None")
        clear.clicked.connect(self.hotkey.clear)
        hotkey_row = QHBoxLayout()
        hotkey_row.addWidget(self.hotkey, 1)
        hotkey_row.addWidget(clear)
        form.addRow("Global hotkey", hotkey_row)
        self.hotkey_status = QLabel()
        self.hotkey_status.setWordWrap(True)
        self.hotkey_status.hide()
        form.addRow("", self.hotkey_status)
        self.retry_limit = QSpinBox()
        self.retry_limit.setRange(1, 1000)
        self.retry_limit.setSuffix(" failed attempts in a row")
        self.retry_limit.setToolTip(
            "A tunnel that never came up is stopped after this many “SSH tunneling failed” "
            "retries of clearml-session; one that worked before keeps retrying."
        )
        self.retry_limit.setValue(s.tunnel_retry_limit)
        form.addRow("Give up a new tunnel after", self.retry_limit)
        self.workspace = QLineEdit(s.workspace_folder)
        self.workspace.setPlaceholderText("a folder with .vscode/clearml.json presets (optional)")
        form.addRow("Workspace folder", self.workspace)
        return page

    def _notifications_tab(self) -> QWidget:
        n = self._settings.notifications
        page = QWidget()
        box = QVBoxLayout(page)
        self.notify: dict[str, QCheckBox] = {}
        for name, label in (
            ("session_ready", "A session is ready"),
            ("session_failed", "A session failed or could not start"),
            ("tunnel_problems", "A tunnel keeps failing"),
            ("idle_warning", "A session has been idle"),
            ("server_unreachable", "The server is unreachable"),
        ):
            check = QCheckBox(label)
            check.setChecked(bool(getattr(n, name)))
            self.notify[name] = check
            box.addWidget(check)
        box.addStretch(1)
        return page

    def _idle_tab(self) -> QWidget:
        idle = self._settings.idle
        page = QWidget()
        form = QFormLayout(page)
        self.idle_mode = QComboBox()
        for mode, label in IDLE_MODE_LABELS.items():
            self.idle_mode.addItem(label, mode.value)
        self.idle_mode.setCurrentIndex(list(IDLE_MODE_LABELS).index(idle.mode))
        form.addRow("When a session is idle", self.idle_mode)
        self.cpu_threshold = QDoubleSpinBox()
        self.cpu_threshold.setRange(-1000, 100000)
        self.cpu_threshold.setDecimals(1)
        self.cpu_threshold.setSingleStep(0.1)
        self.cpu_threshold.setSuffix(" cores busy")
        self.cpu_threshold.setValue(idle.cpu_threshold_cores)
        self.cpu_threshold.setToolTip(
            "Counted on the whole machine: the agent reports the mean over all of its cores, "
            "so one busy core of 64 is 1.6 %, and 1 core here"
        )
        form.addRow("Idle below", self.cpu_threshold)
        self.gpu_threshold = QDoubleSpinBox()
        self.gpu_threshold.setRange(-1000, 1000)
        self.gpu_threshold.setSuffix(" %")
        self.gpu_threshold.setValue(idle.gpu_threshold_percent)
        self.gpu_threshold.setToolTip("Each GPU is judged on its own: one busy GPU is enough")
        form.addRow("and the busiest GPU below", self.gpu_threshold)
        self.idle_window = QSpinBox()
        self.idle_window.setRange(-1000, 100000)
        self.idle_window.setSuffix(" min")
        self.idle_window.setValue(idle.window_minutes)
        form.addRow("for at least", self.idle_window)
        self.grace = QSpinBox()
        self.grace.setRange(-1000, 100000)
        self.grace.setSuffix(" min")
        self.grace.setValue(idle.grace_minutes)
        form.addRow("Stop after a grace period of", self.grace)
        form.addRow(QLabel("Only your own sessions are ever stopped."))
        self.job_finished = QCheckBox(
            "Tell me when a session's GPUs go quiet after 10 min of work (job finished?)"
        )
        self.job_finished.setChecked(idle.job_finished_notice)
        self.job_finished.setToolTip(
            "A notice with Connect, Show log and Stop once a session's GPUs have been quiet "
            "for 5 minutes after at least 10 minutes of work"
        )
        form.addRow(self.job_finished)
        return page

    # --- profiles -------------------------------------------------------------------------
    def _load_profile(self, index: int) -> None:
        if 0 <= index < len(self._profiles):
            self.config_file.setText(self._profiles[index].config_file)
        self.remove.setEnabled(len(self._profiles) > 1)

    def _store_profile(self, index: int) -> None:
        if 0 <= index < len(self._profiles):
            self._profiles[index].config_file = self.config_file.text().strip()

    def _profile_changed(self, index: int) -> None:
        self._store_profile(self._shown_profile)
        self._shown_profile = index
        self._load_profile(index)

    def add_profile(self, name: str, config_file: str = "") -> None:
        self._store_profile(self.profile.currentIndex())
        self._profiles.append(ServerProfile(name.strip(), config_file))
        self.profile.addItem(name.strip())
        self.profile.setCurrentIndex(len(self._profiles) - 1)

    def _add_profile(self) -> None:
        name, ok = QInputDialog.getText(self, "New server profile", "Profile name:")
        if ok and name.strip():
            self.add_profile(name)

    def _remove_profile(self) -> None:
        index = self.profile.currentIndex()
        if len(self._profiles) <= 1 or index < 0:
            return
        del self._profiles[index]
        self._shown_profile = -1
        self.profile.removeItem(index)
        self._shown_profile = self.profile.currentIndex()
        self._load_profile(self._shown_profile)

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "ClearML configuration", self.config_file.text(), "ClearML config (*.conf);;*"
        )
        if path:
            self.config_file.setText(path)

    # --- status lines set by the app ------------------------------------------------------
    def set_server_in_use(self, text: str) -> None:
        self.in_use.setText(f"In use: {text}" if text else "")
        self.in_use.setVisible(bool(text))

    def set_hotkey_status(self, text: str) -> None:
        self.hotkey_status.setText(text)
        self.hotkey_status.setVisible(bool(text))

    def set_autostart_status(self, text: str) -> None:
        self.autostart_note.setText(text)
        self.autostart_note.setVisible(bool(text))
        if text:
            self.start_on_login.setEnabled(False)

    # --- result ---------------------------------------------------------------------------
    def value(self) -> Settings:
        """The settings as currently entered (not validated)."""
        self._store_profile(self.profile.currentIndex())
        s = copy.deepcopy(self._settings)
        s.profiles = [ServerProfile(p.name, p.config_file) for p in self._profiles]
        s.active_profile = self.profile.currentText()
        s.poll_interval_s = self.poll_interval.value()
        s.show_all_users = self.show_all_users.isChecked()
        s.start_on_login = self.start_on_login.isChecked()
        s.editor_command = self.editor_command.text().strip()
        s.clearml_session = self.clearml_session.text().strip()
        s.open_editor_when_ready = self.open_editor.isChecked()
        s.tunnel_on_intent = self.tunnel_on_intent.isChecked()
        s.warm_tunnels = self.warm_tunnels.isChecked()
        s.warm_tunnels_max = self.warm_max.value()
        s.warm_tunnels_max_mb = self.warm_max_mb.value()
        s.hotkey = _hotkey_text(self.hotkey.keySequence())
        s.tunnel_retry_limit = self.retry_limit.value()
        s.workspace_folder = self.workspace.text().strip()
        for name, check in self.notify.items():
            setattr(s.notifications, name, check.isChecked())
        s.idle.mode = IdleMode(self.idle_mode.currentData())
        s.idle.cpu_threshold_cores = self.cpu_threshold.value()
        s.idle.gpu_threshold_percent = self.gpu_threshold.value()
        s.idle.window_minutes = self.idle_window.value()
        s.idle.grace_minutes = self.grace.value()
        s.idle.job_finished_notice = self.job_finished.isChecked()
        return s

    def try_accept(self) -> bool:
        settings = self.value()
        problems = validate_settings(settings)
        if problems:
            self.error.setText("Not saved: " + "; ".join(problems) + ".")
            self.error.show()
            return False
        self.error.hide()
        self.settings_accepted.emit(settings)
        self.accept()
        return True
