"""New session dialog: pick a preset or fill the form, see the exact command, launch.

The essentials come first (preset, queue, Docker image, packages), everything else is under
"Advanced". The queue is a list of the server's queues with free/total workers (loaded
asynchronously when the dialog opens), still editable. Problems show only once the user has
touched a field or pressed Launch. The dialog never saves anything: "Save as preset" and
"Launch" emit the Preset and the caller acts on it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import shlex
from collections.abc import Awaitable, Callable, Sequence

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractSpinBox,
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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tray_app.core.server.models import QueueInfo
from tray_app.core.settings.errors import PresetError
from tray_app.core.settings.presets import (
    MASK,
    PasswordPolicy,
    Preset,
    build_argv,
    display_command,
    validate_preset,
)
from tray_app.core.view.queue_choice import preselected_queue
from tray_app.core.wording import plural

log = logging.getLogger(__name__)

QueueLoader = Callable[[], Awaitable[list[QueueInfo]]]
NEW_PRESET = "(new preset)"
QUEUE_NAME_ROLE = Qt.ItemDataRole.UserRole + 1
_TRISTATE = (("CLI default", None), ("Yes", True), ("No", False))
# The name a launch without a preset goes by (the label in the menu and notifications, when no
# session name is given either): the name the CLI gives its task, as the menu row shows it.
ONE_OFF_NAME = "Interactive Session"
NAME_EMPTY = "the name is empty"

# What each field does, in plain words (the clearml-session option it sets).
TOOLTIPS: dict[str, str] = {
    "preset_picker": "Start from a saved preset, or fill the form for a one-off session.",
    "queue": "The ClearML queue whose workers (agents) run the session (--queue). The list "
    "shows free and total workers.",
    "docker_image": "The container image the session runs in, e.g. nvidia/cuda:12.4.1-runtime "
    "(--docker). Empty: the agent's default image.",
    "packages": "Python packages installed in the session before it starts, separated by "
    "spaces or commas (--packages).",
    "name": "Only needed to save these settings as a preset; a one-off launch needs no name.",
    "session_name": "The session's task name in ClearML (--session-name). Empty: "
    "“Interactive Session”.",
    "docker_args": "Extra arguments for docker run, e.g. --shm-size 8g (--docker-args).",
    "requirements_file": "A local requirements.txt to install in the session (--requirements).",
    "init_script": "A local bash script run in the session before it is ready (--init-script).",
    "user_folder": "The folder on the session machine VS Code opens (--user-folder).",
    "project": "The ClearML project the session task is created in (--project).",
    "tags": "Tags added to the session task, separated by spaces or commas (--tags).",
    "public_ip": "Whether the session publishes the machine's public IP for direct SSH "
    "(--public-ip).",
    "remote_ssh_port": "The SSH port on the session machine (--remote-ssh-port).",
    "jupyter_lab": "Whether JupyterLab starts in the session (--jupyter-lab).",
    "vscode_server": "Whether the browser VS Code server starts in the session (--vscode-server).",
    "vscode_version": "The code-server version to install (--vscode-version).",
    "vscode_extensions": "VS Code extensions to install, separated by commas "
    "(--vscode-extensions).",
    "username": "The SSH user on the session machine (--username).",
    "password_policy": "A new random SSH password per session, or a fixed one kept in your "
    "system keyring (--password).",
    "keepalive": "Whether the session keeps running while nobody is connected (--keepalive).",
    "store_workspace": "A folder on the session machine stored when it ends, to continue later "
    "(--store-workspace).",
    "continue_session": "The id of an earlier session whose stored workspace is restored "
    "(--continue-session).",
    "restore_workspace": "Answer yes when clearml-session offers to restore a stored workspace.",
    "disable_session_cleanup": "clearml-session deletes your older stopped sessions unless "
    "this is on (--disable-session-cleanup).",
    "verbose": "More output from clearml-session in its log (--verbose).",
    "extra_args": "Any other clearml-session options, parsed like a shell command line.",
}


class _WheelGuard(QObject):
    """Over an unfocused combo or spin box the wheel scrolls the form; it never changes a value
    (today's silent `--public-ip false`)."""

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self._scroll = scroll

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(watched, QWidget)
            and not watched.hasFocus()
        ):
            QCoreApplication.sendEvent(self._scroll.verticalScrollBar(), event)
            return True
        return False


def queue_label(queue: QueueInfo) -> str:
    pending = f", {queue.pending} waiting" if queue.pending else ""
    if not queue.total_workers:
        # Offered still (an agent may be started for it), never without saying so.
        return f"{queue.name} — ⚠ no worker serves it{pending}"
    free = f"{queue.free_workers} free / {plural(queue.total_workers, 'worker')}"
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
        last_queue: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New ClearML session")
        self._presets = [copy.deepcopy(p) for p in presets]
        self._load_queues = load_queues
        self._queue_task: asyncio.Task[None] | None = None
        self.queues: list[QueueInfo] = []
        self._loading = False
        self._last_queue = last_queue  # the queue of the last launch (settings.last_queue)
        self._suggested_queue = ""  # what _suggest_queue put in the field, not the user

        self.preset_picker = QComboBox()
        self.preset_picker.addItem(NEW_PRESET)
        for preset in self._presets:
            self.preset_picker.addItem(preset.name)
        self.preset_picker.currentIndexChanged.connect(self._pick)

        self.name = QLineEdit()
        self.name.setPlaceholderText("only to save it as a preset")
        # The queue: a list to browse (name — free / total workers) that can still be typed in.
        self.queue_box = QComboBox()
        self.queue_box.setEditable(True)
        self.queue_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.queue_model = QStandardItemModel(self)
        self.queue_box.setModel(self.queue_model)
        line = self.queue_box.lineEdit()
        assert line is not None
        self.queue: QLineEdit = line
        self.queue.setPlaceholderText("pick from the list or type a queue name")
        completer = QCompleter(self.queue_model, self)
        # The popup shows "name — N free / M workers"; picking one inserts the bare name.
        completer.setCompletionRole(QUEUE_NAME_ROLE)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.queue_box.setCompleter(completer)
        self.queue_box.activated.connect(self._queue_picked)
        self.queue_status = QLabel("")
        self.queue_status.setWordWrap(True)
        self.queue.textChanged.connect(self._queue_note)
        self.docker_image = QLineEdit()
        self.docker_args = QLineEdit()
        self.packages = QLineEdit()
        self.packages.setPlaceholderText("torch numpy==1.26 (spaces or commas)")
        self.requirements_file = QLineEdit()
        self.init_script = QLineEdit()
        self.user_folder = QLineEdit()
        self.project = QLineEdit()
        self.session_name = QLineEdit()
        self.session_name.setPlaceholderText("Interactive Session")
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

        essentials = QFormLayout()
        essentials.addRow("Preset", self.preset_picker)
        queue_row = QVBoxLayout()
        queue_row.addWidget(self.queue_box)
        queue_row.addWidget(self.queue_status)
        essentials.addRow("Queue", queue_row)
        essentials.addRow("Docker image", self.docker_image)
        essentials.addRow("Packages", self.packages)
        essentials.addRow("Preset name", self.name)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._show_advanced)
        form = QFormLayout()
        for label, widget in (
            ("Session name", self.session_name),
            ("Docker arguments", self.docker_args),
            ("Requirements file", self.requirements_file),
            ("Init script", self.init_script),
            ("User folder", self.user_folder),
            ("Project", self.project),
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
        self.advanced = QWidget()
        self.advanced.setLayout(form)
        self.advanced.hide()
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.addLayout(essentials)
        inner_layout.addWidget(self.advanced_toggle)
        inner_layout.addWidget(self.advanced)
        inner_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        self.form_scroll = scroll
        self._wheel_guard = _WheelGuard(scroll)
        for child in inner.findChildren(QWidget):
            if isinstance(child, QComboBox | QAbstractSpinBox):
                # The wheel gives no focus: a scrolling form never lands in a field.
                child.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
                child.installEventFilter(self._wheel_guard)
        for name, text in TOOLTIPS.items():
            getattr(self, name).setToolTip(text)

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
        self.saved_note = QLabel()  # "Saved as the preset …": said here, where the user looks
        self.saved_note.setWordWrap(True)
        self.saved_note.setStyleSheet("color: #2e7d32")
        self.saved_note.hide()

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

        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(QLabel("Command"))
        layout.addLayout(command_row)
        layout.addWidget(self.errors)
        layout.addWidget(self.saved_note)
        layout.addWidget(self.buttons)
        self.resize(600, 480)

        # Problems show once the user changed something or pressed Launch, not before.
        self.touched = False
        for edit in self.findChildren(QLineEdit):
            edit.textChanged.connect(self.refresh)
            edit.textEdited.connect(self._touch)
        for combo in self.findChildren(QComboBox):
            if combo is not self.preset_picker and combo is not self.queue_box:
                combo.currentIndexChanged.connect(self.refresh)
                combo.activated.connect(self._touch)
        for box in self.findChildren(QCheckBox):
            box.toggled.connect(self.refresh)
            box.clicked.connect(self._touch)
        self.remote_ssh_port.valueChanged.connect(self.refresh)
        self.remote_ssh_port.editingFinished.connect(self._touch)
        self.set_preset(self._presets[0] if self._presets else Preset(name=""))
        if self._presets:
            self.preset_picker.setCurrentIndex(1)
        else:
            self._suggest_queue()

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
            self._suggest_queue()
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
    def problems(self, saving: bool = False) -> list[str]:
        """What stops a launch (or, `saving`, a save: then the preset needs its name)."""
        try:
            preset = self.preset()
        except ValueError as exc:  # shlex: unbalanced quotes in the extra arguments
            return [f"extra arguments: {exc}"]
        reasons = validate_preset(preset, check_files=True)
        if NAME_EMPTY in reasons:
            reasons.remove(NAME_EMPTY)
            if saving:
                reasons.insert(0, "give the preset a name to save it")
        queue = preset.queue.strip()
        names = {q.name for q in self.queues}
        if self.queues and queue and queue not in names:
            # Caught here, before the CLI creates a task that waits on a queue nobody serves.
            reasons.append(f"the server has no queue named “{queue}”: pick one from the list")
        return reasons

    def command_text(self) -> str:
        try:
            preset = self._launchable()
            fixed = preset.password_policy is PasswordPolicy.FIXED
            argv = build_argv(preset, password=MASK if fixed else None)
            # The launch hands the password over in the CLI's state file; a command copied
            # from here to run by hand needs it on the command line, so it is shown (masked).
            return display_command(argv + (["--password", MASK] if fixed else []))
        except (PresetError, ValueError):
            return ""

    def refresh(self, *_signal_args: object) -> None:
        self._refresh()

    def _refresh(self, saving: bool = False) -> None:
        if self._loading:
            return
        reasons = self.problems(saving)
        shown = bool(reasons) and self.touched
        waiting = "(fix the problems below)" if shown else "(shown once the form is complete)"
        self.command.setPlainText(self.command_text() or waiting)
        self.errors.setText("\n".join(f"• {r}" for r in reasons) if shown else "")
        self.errors.setVisible(shown)
        self.launch_button.setEnabled(not shown)
        self.copy_button.setEnabled(not reasons)
        focused = self.focusWidget()
        form = self.form_scroll.widget()
        if shown and focused is not None and form is not None and form.isAncestorOf(focused):
            # The error list takes room from the form: keep the field being edited in view.
            # The dialog's layout is settled first (it would otherwise shrink the form only
            # later, on its next layout pass, and push the field out after it was scrolled to).
            layout = self.layout()
            if layout is not None:
                layout.activate()
            self.form_scroll.ensureWidgetVisible(focused)

    def _launchable(self) -> Preset:
        """The form's preset; a one-off launch (no preset name) goes by the session name."""
        preset = self.preset()
        if not preset.name:
            preset.name = preset.session_name or ONE_OFF_NAME
        return preset

    def _touch(self, *_args: object) -> None:
        if not self.touched:
            self.touched = True
            self.refresh()

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )

    def _suggest_queue(self) -> None:
        """A one-off form's Queue starts on the last used queue, else one with a free worker.

        Only an empty field, or one holding our own earlier guess (made before the list came),
        is filled: a preset's queue or a typed one stays.
        """
        text = self.queue.text().strip()
        if text and text != self._suggested_queue:
            return
        self._suggested_queue = preselected_queue(self.queues, self._last_queue)
        self.queue.setText(self._suggested_queue)

    def _queue_note(self, *_args: object) -> None:
        """Under the queue: the server's queues in short, or why the chosen one will wait."""
        name = self.queue.text().strip()
        chosen = next((q for q in self.queues if q.name == name), None)
        if chosen is not None and not chosen.total_workers:
            self.queue_status.setText(
                f"⚠ No worker serves “{name}”: a session there waits until an agent serves it."
            )
            return
        free = sum(q.free_workers for q in self.queues)
        self.queue_status.setText(
            f"{plural(len(self.queues), 'queue')}, {plural(free, 'free worker')}"
            if self.queues
            else "No queues found"
        )

    def _queue_picked(self, index: int) -> None:
        name = self.queue_box.itemData(index, QUEUE_NAME_ROLE)
        if isinstance(name, str):
            self.queue.setText(name)  # the bare name, not the "— 2 free / 3 workers" label
        self._touch()

    def copy_command(self) -> None:
        text = self.command_text()
        if text:
            QGuiApplication.clipboard().setText(text)

    def launch(self) -> None:
        self.touched = True
        if self.problems():
            self.refresh()
            return
        self.launch_requested.emit(self._launchable())
        self.accept()

    def save_preset(self) -> None:
        self.touched = True
        reasons = [r for r in self.problems(saving=True) if "does not exist" not in r]
        if reasons:
            self._refresh(saving=True)
            if not self.name.text().strip():
                self.name.setFocus()
            return
        self.saved_note.hide()
        self.save_requested.emit(self.preset())

    def preset_saved(self, preset: Preset) -> None:
        """The save went through: the preset is in the picker and chosen (no more "(new
        preset)"), and the dialog says so."""
        names = [p.name for p in self._presets]
        if preset.name in names:
            self._presets[names.index(preset.name)] = copy.deepcopy(preset)
        else:
            self._presets.append(copy.deepcopy(preset))
            self.preset_picker.addItem(preset.name)
        self.preset_picker.blockSignals(True)  # the form already shows it: no reload
        self.preset_picker.setCurrentIndex([p.name for p in self._presets].index(preset.name) + 1)
        self.preset_picker.blockSignals(False)
        self._base = copy.deepcopy(preset)
        self.saved_note.setText(
            f"✓ Saved as the preset “{preset.name}”: also in the tray's Presets menu."
        )
        self.saved_note.show()

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
        typed = self.queue.text()
        self.queue_box.blockSignals(True)
        try:
            self.queue_model.clear()
            for queue in queues:
                item = QStandardItem(queue_label(queue))
                item.setData(queue.name, QUEUE_NAME_ROLE)
                item.setToolTip(queue_label(queue))
                item.setEditable(False)
                self.queue_model.appendRow(item)
            self.queue_box.setCurrentIndex(-1)
        finally:
            self.queue_box.blockSignals(False)
        # Filling the list must not replace what the preset or the user put there.
        self.queue.setText(typed)
        self._suggest_queue()
        self.refresh()
        self._queue_note()
