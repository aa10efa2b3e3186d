"""Find the user's editor (VS Code, Cursor, VSCodium or a command of theirs) and build its argv.

Discovery takes injectable `which` / `exists` so that it is tested on every platform; argv
building is pure. The app runs the result with QProcess.startDetached.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The Remote-SSH extension each editor family uses (Cursor ships its own fork).
REMOTE_SSH = {
    "code": "ms-vscode-remote.remote-ssh",
    "cursor": "anysphere.remote-ssh",
    "codium": "jeanp413.open-remote-ssh",
}


@dataclass(frozen=True, slots=True)
class Editor:
    name: str  # "VS Code", "Cursor", ...
    argv: tuple[str, ...]  # the command, e.g. ("/usr/bin/code",)
    kind: str = "code"  # "code", "cursor", "codium" (a key of REMOTE_SSH) or "custom"
    template: bool = False  # argv holds {folder_uri} / {host} / {folder} placeholders


_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ("VS Code", "code", "code"),
    ("VS Code Insiders", "code-insiders", "code"),
    ("Cursor", "cursor", "cursor"),
    ("VSCodium", "codium", "codium"),
)


def _platform_paths(home: Path) -> list[tuple[str, Path, str]]:
    if sys.platform == "darwin":
        apps = [Path("/Applications"), home / "Applications"]
        return [
            (name, base / app / "Contents/Resources/app/bin" / binary, kind)
            for base in apps
            for name, app, binary, kind in (
                ("VS Code", "Visual Studio Code.app", "code", "code"),
                ("Cursor", "Cursor.app", "cursor", "cursor"),
                ("VSCodium", "VSCodium.app", "codium", "codium"),
            )
        ]
    if sys.platform == "win32":
        local = Path(os.environ.get("LOCALAPPDATA", home / "AppData/Local"))
        program_files = Path(os.environ.get("PROGRAMFILES", "C:/Program Files"))
        return [
            ("VS Code", local / "Programs/Microsoft VS Code/bin/code.cmd", "code"),
            ("VS Code", program_files / "Microsoft VS Code/bin/code.cmd", "code"),
            ("Cursor", local / "Programs/cursor/resources/app/bin/cursor.cmd", "cursor"),
            ("VSCodium", program_files / "VSCodium/bin/codium.cmd", "codium"),
        ]
    return []


def find_editor(
    command: str = "",
    *,
    which: Callable[[str], str | None] = shutil.which,
    exists: Callable[[Path], bool] = Path.is_file,
    home: Path | None = None,
) -> Editor | None:
    """The user's editor command if set, else the first VS Code-family editor found."""
    if command.strip():
        argv = tuple(shlex.split(command))
        template = any("{" in part for part in argv)
        return Editor("custom editor", argv, "custom", template)
    for name, binary, kind in _CANDIDATES:
        found = which(binary)
        if found:
            return Editor(name, (found,), kind)
    for name, path, kind in _platform_paths(home or Path.home()):
        if exists(path):
            return Editor(name, (str(path),), kind)
    return None


def remote_folder(user: str, folder: str = "") -> str:
    """The absolute remote folder to open: the preset's `--user-folder`, else the user's home.

    `~` and relative folders are taken from the remote home, as clearml-session does.
    """
    home = "/root" if user in ("", "root") else f"/home/{user}"
    folder = folder.strip()
    if folder in ("", "~", "~/"):
        return home
    if folder.startswith("~/"):
        folder = folder[2:]
    if folder.startswith("/"):
        return folder.rstrip("/") or "/"
    return f"{home}/{folder.rstrip('/')}"


def folder_uri(host_alias: str, folder: str) -> str:
    return f"vscode-remote://ssh-remote+{host_alias}{folder}"


def open_argv(editor: Editor, host_alias: str, folder: str) -> list[str]:
    uri = folder_uri(host_alias, folder)
    if editor.template:
        return [p.format(folder_uri=uri, host=host_alias, folder=folder) for p in editor.argv]
    if editor.kind == "custom":
        return [*editor.argv, uri]
    return [*editor.argv, "--new-window", f"--folder-uri={uri}"]


def fallback_url(host_alias: str, folder: str) -> str:
    """For the desktop opener when no editor command is found."""
    return f"vscode://vscode-remote/ssh-remote+{host_alias}{folder}"


def list_extensions_argv(editor: Editor) -> list[str]:
    return [*editor.argv, "--list-extensions"]


def needs_extension_check(editor: Editor) -> bool:
    return editor.kind in REMOTE_SSH  # a custom command: we cannot tell


def has_remote_ssh(editor: Editor, extensions_output: str) -> bool:
    """Whether `--list-extensions` output names a Remote-SSH extension the editor can use."""
    if not needs_extension_check(editor):
        return True
    # `--list-extensions --show-versions` prints "id@1.2.3"; ids are case-insensitive.
    installed = {line.strip().split("@")[0].lower() for line in extensions_output.splitlines()}
    return REMOTE_SSH[editor.kind] in installed or REMOTE_SSH["code"] in installed


def install_extension_argv(editor: Editor) -> list[str]:
    return [*editor.argv, "--install-extension", REMOTE_SSH.get(editor.kind, REMOTE_SSH["code"])]


def terminal_argv(
    host_alias: str,
    environ: dict[str, str] | None = None,
    *,
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str] | None:
    """The user's terminal running `ssh <alias>`; None when no terminal program is found.

    `$TERMINAL` wins on Linux; then the Debian alternative, then the common desktops' terminals.
    The alias is our own `clearml-<hex>` name, so it needs no quoting in AppleScript.
    """
    env = environ if environ is not None else dict(os.environ)
    if platform == "darwin":
        script = f'tell application "Terminal" to do script "ssh {host_alias}"'
        return ["osascript", "-e", script, "-e", 'tell application "Terminal" to activate']
    if platform == "win32":
        if which("wt"):
            return ["wt", "ssh", host_alias]
        return ["cmd", "/c", "start", "ssh", host_alias]
    user_choice = shlex.split(env.get("TERMINAL", ""))
    if user_choice and which(user_choice[0]):
        return [*user_choice, "-e", "ssh", host_alias]
    for terminal, flag in (
        ("x-terminal-emulator", "-e"),
        ("gnome-terminal", "--"),
        ("konsole", "-e"),
        ("xfce4-terminal", "-x"),
        ("xterm", "-e"),
    ):
        if which(terminal):
            return [terminal, flag, "ssh", host_alias]
    return None
