"""Odd files in odd places: clearml.conf and settings.json that are FIFOs, devices, huge, nested
past the stack, or behind a directory the user cannot enter; hostile server URLs; symlinked and
read-only files written by the app. All in the temporary HOME of the suite's conftest."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import pytest

from tray_app.core import atomic
from tray_app.core.atomic import atomic_write_text
from tray_app.core.server.config import load_server_config
from tray_app.core.server.errors import ConfigInvalid
from tray_app.core.settings.settings import Settings, load_settings, save_settings
from tray_app.list_command import EXIT_CONFIG, run_list

CREDENTIALS = 'api { credentials { access_key: "AK", secret_key: "SK" } }\n'
GOOD = 'api { api_server: "http://127.0.0.1:8008" }\n' + CREDENTIALS


def conf(home: Path, text: str) -> dict[str, str]:
    (home / "clearml.conf").write_text(text)
    return {"HOME": str(home)}


# -- clearml.conf ------------------------------------------------------------------------------


def test_an_include_of_dev_zero_is_refused(isolated_home: Path) -> None:
    env = conf(isolated_home, GOOD + 'include "/dev/zero"\n')
    with pytest.raises(ConfigInvalid, match="/dev/zero cannot be used: not a regular file"):
        load_server_config(env=env)


def test_an_included_fifo_is_refused_without_blocking(isolated_home: Path) -> None:
    os.mkfifo(isolated_home / "extra.conf")
    env = conf(isolated_home, GOOD + f'include "{isolated_home}/extra.conf"\n')
    with pytest.raises(ConfigInvalid, match=r"extra\.conf cannot be used: not a regular file"):
        load_server_config(env=env)


def test_clearml_conf_itself_a_fifo_is_refused(isolated_home: Path) -> None:
    os.mkfifo(isolated_home / "clearml.conf")
    with pytest.raises(ConfigInvalid, match="not a regular file"):
        load_server_config(env={"HOME": str(isolated_home)})


def test_a_10_mb_config_is_refused_before_parsing(isolated_home: Path) -> None:
    env = conf(isolated_home, GOOD + "# " + "x" * (10 * 1024 * 1024) + "\n")
    with pytest.raises(ConfigInvalid, match="larger than 256 KB"):
        load_server_config(env=env)


def test_a_10_mb_include_is_refused(isolated_home: Path) -> None:
    (isolated_home / "big.conf").write_text("a: 1\n" * (2 * 1024 * 1024))
    env = conf(isolated_home, GOOD + f'include "{isolated_home}/big.conf"\n')
    with pytest.raises(ConfigInvalid, match=r"big\.conf cannot be used: larger than"):
        load_server_config(env=env)


def test_a_missing_optional_include_is_still_skipped_as_the_sdk_does(isolated_home: Path) -> None:
    env = conf(isolated_home, GOOD + f'include "{isolated_home}/absent.conf"\n')
    assert load_server_config(env=env).api_server == "http://127.0.0.1:8008"


@pytest.mark.parametrize("key", ["api_server", "host", "web_server"])
def test_a_server_given_as_an_object_is_an_error_not_the_hosted_server(
    isolated_home: Path, key: str
) -> None:
    # api_server wins over the legacy api.host (as in the SDK), so that one is tried alone.
    base = 'api { api_server: "http://127.0.0.1:8008" }\n' if key.endswith("_server") else ""
    base = "" if key == "api_server" else base
    env = conf(isolated_home, base + f'api {{ {key} {{ url: "http://x" }} }}\n' + CREDENTIALS)
    with pytest.raises(ConfigInvalid, match=f"'api.{key}' must be a text value, not an object"):
        load_server_config(env=env)


def test_a_files_server_given_as_an_object_leaves_it_unknown_and_the_tray_running(
    isolated_home: Path,
) -> None:
    """The tray never talks to the files server: what the SDK cannot read there is not a
    reason to stop (and never the hosted files server either)."""
    env = conf(isolated_home, GOOD + 'api { files_server { url: "http://x" } }\n')
    config = load_server_config(env=env)
    assert config.api_server == "http://127.0.0.1:8008" and config.files_server == ""


def test_credentials_given_as_a_list_are_an_error(isolated_home: Path) -> None:
    env = conf(isolated_home, GOOD + "api { credentials { access_key: [1, 2] } }\n")
    with pytest.raises(ConfigInvalid, match="access_key' must be a text value, not a list"):
        load_server_config(env=env)


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("http://127.0.0.1:99999", "port outside 1-65535"),
        ("http://[::1:8008", "not a valid URL"),
        ("http://127.0.0.1:8008\r\nX-Injected: 1", "control characters"),
        ("http://a b:8008", "spaces"),
        ("ftp://127.0.0.1", r"not an http\(s\) URL"),
        ("http://:8008", "no host name"),
    ],
)
def test_bad_api_hosts_are_one_line_config_errors(isolated_home: Path, host: str, words: str):
    env = {**conf(isolated_home, CREDENTIALS), "CLEARML_API_HOST": host}
    with pytest.raises(ConfigInvalid, match=words) as info:
        load_server_config(env=env)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


def test_a_password_in_the_server_url_is_redacted(isolated_home: Path, monkeypatch, capsys):
    host = "http://admin:hunter2secret@[::1:8008"
    env = {**conf(isolated_home, CREDENTIALS), "CLEARML_API_HOST": host}
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env=env)
    assert "hunter2secret" not in str(info.value) and "admin:***@" in str(info.value)
    monkeypatch.setenv("CLEARML_API_HOST", host)
    (isolated_home / "clearml.conf").write_text(CREDENTIALS)
    args = argparse.Namespace(all_users=False, json=False, config_file=None, debug=False)
    assert run_list(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "hunter2secret" not in err and len(err.strip().splitlines()) == 1


def test_a_config_behind_an_unenterable_directory_is_a_config_error(
    isolated_home: Path, monkeypatch, capsys
) -> None:
    locked = isolated_home / "locked"
    locked.mkdir()
    target = locked / "clearml.conf"
    real_stat = Path.stat

    def stat_denied(self: Path, *args: object, **kwargs: object) -> os.stat_result:
        # Tests run as root, for whom mode 000 means nothing: the kernel's answer is played.
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", stat_denied)
    with pytest.raises(ConfigInvalid, match="cannot be read \\(Permission denied\\)"):
        load_server_config(target, env={"HOME": str(isolated_home)})
    args = argparse.Namespace(all_users=False, json=False, config_file=str(target), debug=False)
    assert run_list(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "Permission denied" in err and "Traceback" not in err


# -- settings.json -----------------------------------------------------------------------------


def test_deeply_nested_settings_are_moved_aside(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_text('{"settings": ' + "[" * 100_000 + "]" * 100_000 + "}")
    loaded = load_settings(file)
    assert loaded.settings == Settings()
    assert "nested too deeply" in loaded.warnings[0]
    assert not file.exists() and loaded.backup_path is not None and loaded.backup_path.exists()


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_a_fifo_or_dev_zero_as_settings_neither_blocks_nor_exhausts(tmp_path: Path, kind):
    file = tmp_path / "settings.json"
    if kind == "fifo":
        os.mkfifo(file)
    else:
        file.symlink_to("/dev/zero")
    loaded = load_settings(file)
    assert loaded.settings == Settings()
    assert "not a regular file" in loaded.warnings[0]
    assert file.is_symlink() or stat.S_ISFIFO(file.lstat().st_mode)  # left where it was


def test_settings_larger_than_the_bound_are_not_read(tmp_path: Path) -> None:
    file = tmp_path / "settings.json"
    file.write_bytes(b" " * (9 * 1024 * 1024) + b"{}")
    loaded = load_settings(file)
    assert "larger than 8 MB" in loaded.warnings[0]
    assert file.exists()


# -- writing the user's files ------------------------------------------------------------------


def test_a_symlinked_settings_file_stays_a_symlink(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "settings.json"
    real.write_text(json.dumps({"schema_version": 1, "settings": {}, "presets": []}))
    real.chmod(0o644)
    link = tmp_path / "settings.json"
    link.symlink_to(real)
    save_settings(Settings(poll_interval_s=42), [], link)
    assert link.is_symlink() and link.resolve() == real
    assert json.loads(real.read_text())["settings"]["poll_interval_s"] == 42
    assert stat.S_IMODE(real.stat().st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o444, 0o644, 0o600])
def test_atomic_writes_keep_the_mode(tmp_path: Path, mode: int) -> None:
    file = tmp_path / "f"
    file.write_text("old")
    file.chmod(mode)
    atomic_write_text(file, "new")
    assert file.read_text() == "new"
    assert stat.S_IMODE(file.stat().st_mode) == mode


def test_atomic_writes_refuse_a_device_behind_a_symlink(tmp_path: Path) -> None:
    link = tmp_path / "f"
    link.symlink_to("/dev/null")
    with pytest.raises(OSError, match="not a regular file"):
        atomic.atomic_write_text(link, "x")
    assert link.is_symlink()
