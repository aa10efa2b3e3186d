"""`clearml-tray list` as a real subprocess with a written clearml.conf.

The emulator runs in this process (a uvicorn thread); the CLI connects to it over loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tray_app.demo import SECRET_MARKER, clearml_conf_text
from tray_app.demo.values import md5_hex

REPO = Path(__file__).resolve().parents[2]


QT_CHECK = (
    "import sys\n"
    "from tray_app.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    # Qt, and httpx's command-line client (click, rich, pygments; see core/server/httpx_import.py).
    "heavy = ('PySide6', 'shiboken6', 'qasync', 'click', 'rich', 'pygments')\n"
    "qt = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
    "print('QT-MODULES:' + ','.join(qt), file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", QT_CHECK, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def qt_modules(result: subprocess.CompletedProcess[str]) -> str:
    line = next(x for x in result.stderr.splitlines() if x.startswith("QT-MODULES:"))
    return line.removeprefix("QT-MODULES:")


def reason(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [x for x in result.stderr.splitlines() if not x.startswith("QT-MODULES:")]


def write_conf(path: Path, url: str, key: str, secret: str) -> Path:
    path.write_text(clearml_conf_text(url, key, secret), encoding="utf-8")
    return path


def live(state: Any, own_only: bool) -> dict[str, dict[str, Any]]:
    return {
        t["id"]: t
        for t in state.tasks.values()
        if "interactive" in (t.get("system_tags") or [])
        and t["status"] in ("queued", "in_progress")
        and (not own_only or t["user"] == state.current_user_id)
    }


def prop(task: dict[str, Any], name: str) -> str | None:
    item = ((task.get("hyperparams") or {}).get("properties") or {}).get(name)
    return item["value"] if item else None


@pytest.mark.parametrize("all_users", [False, True])
def test_list_json_prints_what_the_emulator_holds(emulator_factory, tmp_path, all_users):
    emu = emulator_factory(sessions=26)
    conf = emu.write_config(tmp_path / "clearml.conf")
    args = ["--config-file", str(conf), "list", "--json"] + (["--all-users"] if all_users else [])
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert qt_modules(result) == ""
    doc = json.loads(result.stdout)
    state = emu.state
    expected = live(state, own_only=not all_users)
    assert {s["id"] for s in doc["sessions"]} == set(expected)
    assert doc["user"] == {
        "id": state.current_user_id,
        "name": state.users[state.current_user_id]["name"],
    }
    assert doc["all_users"] is all_users
    assert doc["server"] == emu.url
    workers = {w.task_id: w for w in state.workers.values() if w.task_id}
    for s in doc["sessions"]:
        task = expected[s["id"]]
        runtime = task.get("runtime") or {}
        assert s["name"] == task["name"]
        assert s["status"] == task["status"]
        assert s["creator"] == {"id": task["user"], "name": state.users[task["user"]]["name"]}
        assert s["project"]["name"] == state.projects[task["project"]]["name"]
        assert s["queue"]["name"] == state.queues[task["execution"]["queue"]]["name"]
        assert s["created"] == task["created"]
        port = prop(task, "internal_ssh_port")
        assert s["ssh_port"] == (int(port) if port else None)
        assert s["public_address"] == (prop(task, "external_address") or "")
        assert s["hardware"]["cpu_cores"] == runtime.get("cpu_cores")
        assert s["hardware"]["ram_total_gb"] == runtime.get("memory_gb")
        if task["status"] == "in_progress":
            assert s["started"] == task["started"]
            assert s["private_ip"] == workers[s["id"]].ip
            cpu = task["last_metrics"][md5_hex(":monitor:machine")][md5_hex("cpu_usage")]
            assert s["usage"]["cpu_percent"] == cpu["value"]
    assert SECRET_MARKER not in result.stdout


def test_list_table_shows_every_live_session(emulator_factory, tmp_path):
    emu = emulator_factory(sessions=13)
    conf = emu.write_config(tmp_path / "clearml.conf")
    result = run_cli("--config-file", str(conf), "list", "--all-users")
    assert result.returncode == 0, result.stderr
    assert qt_modules(result) == ""
    expected = live(emu.state, own_only=False)
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(expected) + 1  # header, sessions, summary
    for task_id, task in expected.items():
        row = next(line for line in lines if task_id[:8] in line)
        assert task["name"] in row


def test_missing_config_file_exits_2_with_one_line(tmp_path):
    result = run_cli("--config-file", str(tmp_path / "nope.conf"), "list")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = reason(result)
    assert len(lines) == 1
    assert lines[0].startswith("clearml-tray: configuration error")


def test_no_config_anywhere_exits_2(tmp_path):
    result = run_cli("list", "--json")
    assert result.returncode == 2
    assert len(reason(result)) == 1


def test_wrong_keys_exit_3_naming_the_key_not_the_secret(emulator, tmp_path):
    conf = write_conf(tmp_path / "clearml.conf", emulator.url, emulator.access_key, "WrongSecret99")
    result = run_cli("--config-file", str(conf), "list")
    assert result.returncode == 3
    lines = reason(result)
    assert len(lines) == 1
    assert "Wrong access key or secret key" in lines[0]
    assert emulator.access_key in lines[0]
    assert emulator.url in lines[0]
    assert "WrongSecret99" not in result.stderr + result.stdout


def test_unreachable_server_exits_4(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    url = f"http://127.0.0.1:{port}"
    conf = write_conf(tmp_path / "clearml.conf", url, "AKEY", "SKEY")
    result = run_cli("--config-file", str(conf), "list", "--json")
    assert result.returncode == 4
    lines = reason(result)
    assert len(lines) == 1
    assert url in lines[0]
    assert qt_modules(result) == ""


def test_a_reader_that_stops_early_ends_list_quietly(emulator_factory, tmp_path):
    """`clearml-tray list --json | head -c 20`: no BrokenPipeError traceback."""
    emu = emulator_factory(sessions=400)  # more JSON than a pipe holds
    conf = emu.write_config(tmp_path / "clearml.conf")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env["PYTHONPATH"] = str(REPO)
    lister = subprocess.Popen(
        [sys.executable, "-m", "tray_app", "--config-file", str(conf), "list", "--json",
         "--all-users"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )  # fmt: skip
    assert lister.stdout is not None and lister.stderr is not None
    assert lister.stdout.read(20)  # the first bytes, then the reader goes away
    lister.stdout.close()
    errors = lister.stderr.read().decode()
    assert lister.wait(60) == 0, errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors


LEAN_CHECK = (
    "import sys\n"
    "from tray_app.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "heavy = ('httpx', 'httpcore', 'anyio', 'pyhocon', 'pyparsing', 'PySide6')\n"
    "print('HEAVY:' + ','.join(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))),"
    " file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def test_list_from_the_server_skips_httpx_and_once_cached_pyhocon(emulator_factory, tmp_path):
    """A plain-http server without a proxy: the standard library's HTTP; an unchanged
    clearml.conf: its cached settings (core/server/config_cache.py)."""
    emu = emulator_factory(sessions=8)
    conf = emu.write_config(tmp_path / "clearml.conf")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env = {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "all_proxy")}
    env.update(PYTHONPATH=str(REPO), CLEARML_CONFIG_FILE=str(conf))
    runs = [
        subprocess.run(
            [sys.executable, "-c", LEAN_CHECK, "list", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env=env,
        )
        for _ in range(2)
    ]
    heavy = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert {s["id"] for s in json.loads(run.stdout)["sessions"]} == set(
            live(emu.state, own_only=True)
        )
        line = next(x for x in run.stderr.splitlines() if x.startswith("HEAVY:"))
        heavy.append(line.removeprefix("HEAVY:"))
    assert heavy == ["pyhocon,pyparsing", ""]


@pytest.mark.parametrize(
    ("files_server", "env"),
    [
        ("s3://bucket/prefix", {}),
        ("gs://bucket/folder/", {}),
        ("azure://account.blob.core.windows.net/container", {}),
        ("/mnt/shared/clearml-files", {}),
        ('"file:///mnt/shared/clearml-files"', {}),
        ('""', {}),
        ("8081", {}),  # not text: the SDK fails when it stores a file; the tray has no use for it
        ("http://127.0.0.1:8081", {"CLEARML_FILES_HOST": "s3://bucket/from-env"}),
    ],
)
def test_list_works_with_every_files_server_the_sdk_takes(
    emulator_factory, tmp_path, files_server, env
):
    """A team keeping artifacts on S3, GCS, Azure or a shared folder uses the tray as is: it
    never talks to the files server."""
    emu = emulator_factory(sessions=6)
    conf = tmp_path / "clearml.conf"
    conf.write_text(emu.conf_text + f"\napi.files_server: {files_server}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "tray_app", "--config-file", str(conf), "list", "--json",
         "--no-tray"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))},
             "PYTHONPATH": str(REPO), **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {s["id"] for s in json.loads(result.stdout)["sessions"]} == set(
        live(emu.state, own_only=True)
    )
