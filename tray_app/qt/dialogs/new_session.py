"""New session dialog: pick a preset or fill the form, see the exact command, launch.

The queue field completes from `SessionService.queues()` (names with free workers), loaded
asynchronously when the dialog opens. The dialog never saves anything: "Save as preset" and
"Launch" emit the Preset and the caller acts on it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import shlex
from collections.abc import Awaitable, Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tray_app.core.models import QueueInfo
from tray_app.core.presets import (
    MASK,
    PasswordPolicy,
    Preset,
    PresetError,
    build_argv,
    display_command,
    validate_preset,
)
from tray_app.core.wording import plural

log = logging.getLogger(__name__)

QueueLoader = Callable[[], Awaitable[list[QueueInfo]]]
NEW_PRESET = "(new preset)"
QUEUE_NAME_ROLE = Qt.ItemDataRole.UserRole + 1
_TRISTATE = (("CLI default", None), ("Yes", True), ("No", False))


def queue_label(queue: QueueInfo) -> str:
    free = f"{queue.free_workers} free / {plural(queue.total_workers, 'worker')}"
    pending = f", {queue.pending} waiting" if queue.pending else ""
    return f"{queue.name} — {free}{pending}"


def _split(text: str) -> list[str]:
    return [item for item in text.replace(",", " ").split() if item]


class NewSessionDialog(QDialog):
    launch_requested = Signal(object)  # Preset
    save_requested = Signal(object)  # Preset

    def __init__(
        self,
        presets: Sequence[Preset] = (),
        *,
        load_queues: QueueLoader | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New ClearML session")
        self._presets = [copy.deepcopy(p) for p in presets]
        self._load_queues = load_queues
        self._queue_task: asyncio.Task[None] | None = None
        self.queues: list[QueueInfo] = []
        self._loading = False

        self.preset_picker = QComboBox()
        self.preset_picker.addItem(NEW_PRESET)
        for preset in self._presets:
            self.preset_picker.addItem(preset.name)
        self.preset_picker.currentIndexChanged.connect(self._pick)

        self.name = QLineEdit()
        self.queue = QLineEdit()
        self.queue_model = QStandardItemModel(self)
        completer = QCompleter(self.queue_model, self)
        # The popup shows "name — N free / M workers"; picking one inserts the bare name.
        completer.setCompletionRole(QUEUE_NAME_ROLE)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.queue.setCompleter(completer)
        self.queue_status = QLabel("")
        self.docker_image = QLineEdit()
        self.docker_args = QLineEdit()
        self.packages = QLineEdit()
        self.packages.setPlaceholderText("torch numpy==1.26 (spaces or commas)")
        self.requirements_file = QLineEdit()
        self.init_script = QLineEdit()
        self.user_folder = QLineEdit()
        self.project = QLineEdit()
        self.session_name = QLineEdit()
        self.tags = QLineEdit()
        self.public_ip = self._tristate()
        self.remote_ssh_port = QSpinBox()
        self.remote_ssh_port.setRange(0, 65535)
        self.remote_ssh_port.setSpecialValueText("CLI default (10022)")
        self.jupyter_lab = self._tristate()
        self.vscode_server = self._tristate()
        self.vscode_version = QLineEdit()
        self.vscode_extensions = QLineEdit()
        self.username = QLineEdit()
        self.password_policy = QComboBox()
        self.password_policy.addItem("Random per session", PasswordPolicy.RANDOM)
        self.password_policy.addItem("Fixed (from the keyring)", PasswordPolicy.FIXED)
        self.keepalive = self._tristate()
        self.store_workspace = QLineEdit()
        self.continue_session = QLineEdit()
        self.restore_workspace = QCheckBox("Restore the stored workspace when asked")
        self.disable_session_cleanup = QCheckBox("Keep my older stopped sessions")
        self.verbose = QCheckBox("Verbose output")
        self.extra_args = QLineEdit()
        self.extra_args.setPlaceholderText("--option value (parsed like a shell)")

        form = QFormLayout()
        form.addRow("Name", self.name)
        queue_row = QVBoxLayout()
        queue_row.addWidget(self.queue)
        queue_row.addWidget(self.queue_status)
        form.addRow("Queue", queue_row)
        for label, widget in (
            ("Docker image", self.docker_image),
            ("Docker arguments", self.docker_args),
            ("Packages", self.packages),
            ("Requirements file", self.requirements_file),
            ("Init script", self.init_script),
            ("User folder", self.user_folder),
            ("Project", self.project),
            ("Session name", self.session_name),
            ("Tags", self.tags),
            ("Public IP", self.public_ip),
            ("Remote SSH port", self.remote_ssh_port),
            ("JupyterLab", self.jupyter_lab),
            ("VS Code server", self.vscode_server),
            ("VS Code version", self.vscode_version),
            ("VS Code extensions", self.vscode_extensions),
            ("Username", self.username),
            ("Password", self.password_policy),
            ("Keepalive", self.keepalive),
            ("Store workspace", self.store_workspace),
            ("Continue session", self.continue_session),
        ):
            form.addRow(label, widget)
        form.addRow("", self.restore_workspace)
        form.addRow("", self.disable_session_cleanup)
        form.addRow("", self.verbose)
        form.addRow("Extra arguments", self.extra_args)
        inner = QWidget()
        inner.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)

        self.command = QPlainTextEdit()
        self.command.setReadOnly(True)
        self.command.setMaximumHeight(80)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_command)
        command_row = QHBoxLayout()
        command_row.addWidget(self.command)
        command_row.addWidget(self.copy_button)

        self.errors = QLabel()
        self.errors.setWordWrap(True)
        self.errors.setStyleSheet("color: #c62828")
        self.errors.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.addButton(
            "Save as preset", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.launch_button = self.buttons.addButton(
            "Launch", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.clicked.connect(self.save_preset)
        self.launch_button.clicked.connect(self.launch)
        self.buttons.rejected.connect(self.reject)

        picker_row = QFormLayout()
        picker_row.addRow("Preset", self.preset_picker)
        layout = QVBoxLayout(self)
        layout.addLayout(picker_row)
        layout.addWidget(scroll, 1)
        layout.addWidget(QLabel("Command"))
        layout.addLayout(command_row)
        layout.addWidget(self.errors)
        layout.addWidget(self.buttons)
        self.resize(640, 720)

        for edit in self.findChildren(QLineEdit):
            edit.textChanged.connect(self.refresh)
        for combo in self.findChildren(QComboBox):
            if combo is not self.preset_picker:
                combo.currentIndexChanged.connect(self.refresh)
        for box in self.findChildren(QCheckBox):
            box.toggled.connect(self.refresh)
        self.remote_ssh_port.valueChanged.connect(self.refresh)
        self.set_preset(self._presets[0] if self._presets else Preset(name=""))
        if self._presets:
            self.preset_picker.setCurrentIndex(1)

    # --- form <-> Preset ------------------------------------------------------------------
    def _tristate(self) -> QComboBox:
        combo = QComboBox()
        for label, value in _TRISTATE:
            combo.addItem(label, value)
        return combo

    @staticmethod
    def _set_tristate(combo: QComboBox, value: bool | None) -> None:
        combo.setCurrentIndex([v for _, v in _TRISTATE].index(value))

    def _pick(self, index: int) -> None:
        if index <= 0:
            self.set_preset(Preset(name=""))
        else:
            self.set_preset(self._presets[index - 1])

    def set_preset(self, preset: Preset) -> None:
        self._base = copy.deepcopy(preset)
        self._loading = True
        try:
            for name in (
                "name", "queue", "docker_image", "docker_args", "requirements_file",
                "init_script", "user_folder", "project", "session_name", "vscode_version",
                "username", "store_workspace", "continue_session",
            ):  # fmt: skip
                getattr(self, name).setText(getattr(preset, name))
            self.packages.setText(" ".join(preset.packages))
            self.tags.setText(" ".join(preset.tags))
            self.vscode_extensions.setText(",".join(preset.vscode_extensions))
            self.extra_args.setText(shlex.join(preset.extra_args))
            for name in ("public_ip", "jupyter_lab", "vscode_server", "keepalive"):
                self._set_tristate(getattr(self, name), getattr(preset, name))
            self.remote_ssh_port.setValue(preset.remote_ssh_port or 0)
            self.password_policy.setCurrentIndex(
                0 if preset.password_policy is PasswordPolicy.RANDOM else 1
            )
            self.restore_workspace.setChecked(preset.restore_workspace)
            self.disable_session_cleanup.setChecked(preset.disable_session_cleanup)
            self.verbose.setChecked(preset.verbose)
        finally:
            self._loading = False
        self.refresh()

    def preset(self) -> Preset:
        """The Preset the form describes (fields the form does not show come from the pick)."""
        p = copy.deepcopy(self._base)
        for name in (
            "name", "queue", "docker_image", "docker_args", "requirements_file", "init_script",
            "user_folder", "project", "session_name", "vscode_version", "username",
            "store_workspace", "continue_session",
        ):  # fmt: skip
            setattr(p, name, getattr(self, name).text().strip())
        p.packages = _split(self.packages.text())
        p.tags = _split(self.tags.text())
        p.vscode_extensions = [
            e.strip() for e in self.vscode_extensions.text().split(",") if e.strip()
        ]
        for name in ("public_ip", "jupyter_lab", "vscode_server", "keepalive"):
            setattr(p, name, getattr(self, name).currentData())
        p.remote_ssh_port = self.remote_ssh_port.value() or None
        p.password_policy = PasswordPolicy(self.password_policy.currentData())
        p.restore_workspace = self.restore_workspace.isChecked()
        p.disable_session_cleanup = self.disable_session_cleanup.isChecked()
        p.verbose = self.verbose.isChecked()
        p.extra_args = shlex.split(self.extra_args.text())
        return p

    # --- live command + validation --------------------------------------------------------
    def problems(self) -> list[str]:
        try:
            preset = self.preset()
        except ValueError as exc:  # shlex: unbalanced quotes in the extra arguments
            return [f"extra arguments: {exc}"]
        return validate_preset(preset, check_files=True)

    def command_text(self) -> str:
        try:
            preset = self.preset()
            password = MASK if preset.password_policy is PasswordPolicy.FIXED else None
            return display_command(build_argv(preset, password=password))
        except (PresetError, ValueError):
            return ""

    def refresh(self) -> None:
        if self._loading:
            return
        reasons = self.problems()
        self.command.setPlainText(self.command_text() or "(fix the problems below)")
        self.errors.setText("\n".join(f"• {r}" for r in reasons))
        self.errors.setVisible(bool(reasons))
        self.launch_button.setEnabled(not reasons)
        self.copy_button.setEnabled(not reasons)

    def copy_command(self) -> None:
        text = self.command_text()
        if text:
            QGuiApplication.clipboard().setText(text)

    def launch(self) -> None:
        if self.problems():
            self.refresh()
            return
        self.launch_requested.emit(self.preset())
        self.accept()

    def save_preset(self) -> None:
        reasons = [r for r in self.problems() if "does not exist" not in r]
        if reasons:
            self.refresh()
            return
        self.save_requested.emit(self.preset())

    # --- queues ---------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._load_queues is not None and self._queue_task is None:
            try:
                self._queue_task = asyncio.ensure_future(self.load_queues())
            except RuntimeError:
                log.debug("no asyncio loop: queue completion not loaded")

    async def load_queues(self) -> None:
        if self._load_queues is None:
            return
        self.queue_status.setText("Loading queues…")
        try:
            queues = await self._load_queues()
        except Exception as exc:
            log.warning("could not load queues: %s", exc)
            self.queue_status.setText(
                "The queue list could not be loaded (details in the log); type the queue name."
            )
            return
        self.set_queues(queues)

    def set_queues(self, queues: list[QueueInfo]) -> None:
        self.queues = list(queues)
        self.queue_model.clear()
        for queue in queues:
            item = QStandardItem(queue_label(queue))
            item.setData(queue.name, QUEUE_NAME_ROLE)
            item.setEditable(False)
            self.queue_model.appendRow(item)
        free = sum(q.free_workers for q in queues)
        self.queue_status.setText(
            f"{plural(len(queues), 'queue')}, {plural(free, 'free worker')}"
            if queues
            else "No queues found"
        )
