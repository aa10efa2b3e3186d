"""Editor discovery and the argv that opens a remote folder over Remote-SSH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tray_app.core.tunnels.editors import (
    Editor,
    fallback_url,
    find_editor,
    has_remote_ssh,
    install_extension_argv,
    list_extensions_argv,
    needs_extension_check,
    open_argv,
    remote_folder,
    terminal_argv,
)


def test_finds_the_first_vscode_family_editor_on_path() -> None:
    found = {"cursor": "/opt/cursor/bin/cursor", "codium": "/usr/bin/codium"}
    editor = find_editor(which=found.get, exists=lambda p: False)
    assert editor == Editor("Cursor", ("/opt/cursor/bin/cursor",), "cursor")
    assert find_editor(which=lambda n: None, exists=lambda p: False) is None


def test_user_command_wins_and_may_use_placeholders() -> None:
    editor = find_editor("myedit --remote {host} {folder}", which=lambda n: "/usr/bin/code")
    assert editor is not None and editor.template
    assert open_argv(editor, "clearml-01234567", "/root/work") == [
        "myedit",
        "--remote",
        "clearml-01234567",
        "/root/work",
    ]


def test_vscode_argv_and_fallback_url() -> None:
    editor = Editor("VS Code", ("/usr/bin/code",))
    folder = remote_folder("root")
    assert open_argv(editor, "clearml-01234567", folder) == [
        "/usr/bin/code",
        "--new-window",
        "--folder-uri=vscode-remote://ssh-remote+clearml-01234567/root",
    ]
    assert remote_folder("dev") == "/home/dev" and remote_folder("root", "work") == "/root/work"
    assert fallback_url("clearml-01234567", "/root") == (
        "vscode://vscode-remote/ssh-remote+clearml-01234567/root"
    )


def test_remote_ssh_extension_check() -> None:
    code = Editor("VS Code", ("code",))
    assert has_remote_ssh(code, "ms-python.python\nms-vscode-remote.remote-ssh\n")
    assert not has_remote_ssh(code, "ms-python.python\n")
    codium = Editor("VSCodium", ("codium",), "codium")
    assert has_remote_ssh(codium, "jeanp413.open-remote-ssh\n")
    assert install_extension_argv(code) == [
        "code",
        "--install-extension",
        "ms-vscode-remote.remote-ssh",
    ]


def test_recording_stand_in_gets_exactly_our_argv(tmp_path: Path) -> None:
    """A real executable named `code` on PATH receives the argv verbatim."""
    record = tmp_path / "argv.txt"
    stand_in = tmp_path / "bin" / "code"
    stand_in.parent.mkdir()
    stand_in.write_text(
        f"#!{sys.executable}\nimport sys, json\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print('ms-vscode-remote.remote-ssh')\n"
    )
    stand_in.chmod(0o755)
    path = f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}"
    editor = find_editor(which=lambda n: str(stand_in) if n == "code" else None)
    assert editor is not None
    out = subprocess.run(
        list_extensions_argv(editor), capture_output=True, text=True, env={"PATH": path}
    )
    assert has_remote_ssh(editor, out.stdout)
    argv = open_argv(editor, "clearml-01234567", "/root")
    subprocess.run(argv, check=True, env={"PATH": path})
    import json

    assert json.loads(record.read_text()) == argv[1:]


def test_cursor_uses_its_own_remote_ssh_and_versions_are_ignored() -> None:
    cursor = find_editor(which=lambda name: "/usr/bin/cursor" if name == "cursor" else None)
    assert cursor is not None and cursor.kind == "cursor"
    assert has_remote_ssh(cursor, "anysphere.remote-ssh@1.0.3\n")
    assert not has_remote_ssh(cursor, "ms-python.python@2024.1.0\n")
    assert has_remote_ssh(Editor("VS Code", ("code",)), "MS-VSCode-Remote.Remote-SSH@0.1\n")
    custom = Editor("custom editor", ("myedit",), "custom")
    assert not needs_extension_check(custom) and has_remote_ssh(custom, "")


@pytest.mark.parametrize(
    ("user", "folder", "expected"),
    [
        ("root", "", "/root"),
        ("", "~", "/root"),
        ("alice", "", "/home/alice"),
        ("alice", "~/work/", "/home/alice/work"),
        ("root", "projects/x", "/root/projects/x"),
        ("root", "/srv/data/", "/srv/data"),
        ("root", "/", "/"),
    ],
)
def test_remote_folder_from_the_presets_user_folder(user: str, folder: str, expected: str) -> None:
    assert remote_folder(user, folder) == expected


def test_terminal_argv_per_platform() -> None:
    everything = lambda name: f"/usr/bin/{name}"  # noqa: E731
    nothing = lambda name: None  # noqa: E731
    alias = "clearml-1a2b3c4d"
    assert terminal_argv(alias, {"TERMINAL": "kitty --single-instance"}, which=everything) == [
        "kitty", "--single-instance", "-e", "ssh", alias,
    ]  # fmt: skip
    # $TERMINAL that is not installed is skipped, the Debian alternative comes next.
    only_xte = lambda name: "/usr/bin/x" if name == "x-terminal-emulator" else None  # noqa: E731
    assert terminal_argv(alias, {"TERMINAL": "kitty"}, which=only_xte) == [
        "x-terminal-emulator", "-e", "ssh", alias,
    ]  # fmt: skip
    only_gnome = lambda name: "/usr/bin/g" if name == "gnome-terminal" else None  # noqa: E731
    assert terminal_argv(alias, {}, which=only_gnome) == ["gnome-terminal", "--", "ssh", alias]
    assert terminal_argv(alias, {}, which=nothing) is None
    mac = terminal_argv(alias, {}, platform="darwin", which=nothing)
    assert mac is not None and mac[0] == "osascript" and f'"ssh {alias}"' in mac[2]
    assert terminal_argv(alias, {}, platform="win32", which=everything) == ["wt", "ssh", alias]
    assert terminal_argv(alias, {}, platform="win32", which=nothing) == [
        "cmd", "/c", "start", "ssh", alias,
    ]  # fmt: skip
