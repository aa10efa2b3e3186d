"""The clearml.conf cache of `clearml-tray list`: same result as a parse, used while the files
are unchanged, never holding the secret key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tray_app.core.server import config_cache
from tray_app.core.server.config import ServerConfig, load_server_config
from tray_app.core.server.config_cache import cache_file, load_server_config_cached

REPO = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-Key-0123456789abcdefghijklmnopqrstuvwxyz"


def conf_text(server: str = "http://127.0.0.1:8008", secret: str = SECRET, extra: str = "") -> str:
    return (
        "# written by a test\n"
        "api {\n"
        f"    api_server: {server}\n"
        "    credentials {\n"
        '        "access_key": "ACCESSKEY0001"\n'
        f'        "secret_key": "{secret}"\n'
        "    }\n"
        "}\n"
        "sdk { development { vcs_repo_detect: false } }\n" + extra
    )


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "clearml.conf"
    path.write_text(conf_text(), encoding="utf-8")
    return path


def env_for(path: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "CLEARML_CONFIG_FILE": str(path), **more}


def parse_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on a parse of the files is an error: only the cache can answer."""

    def read_files(*args: object) -> None:
        raise AssertionError("the files were parsed")

    monkeypatch.setattr(config_cache, "read_files", read_files)


def rewrite(path: Path, text: str) -> None:
    """Change the file the way an editor does, with a visibly different stat."""
    before = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))


def test_a_hit_gives_what_the_parse_gives_without_parsing(
    conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_for(conf)
    parsed = load_server_config(env=env)
    assert load_server_config_cached(env=env) == parsed  # a miss: parsed, then stored
    assert cache_file(env).is_file()
    parse_fails(monkeypatch)
    cached = load_server_config_cached(env=env)
    assert cached == parsed
    assert cached.secret_key == SECRET


def test_the_cache_file_never_holds_the_secret(conf: Path) -> None:
    env = env_for(conf)
    load_server_config_cached(env=env)
    data = cache_file(env).read_bytes()
    assert SECRET.encode() not in data
    assert SECRET[:16].encode() not in data
    assert cache_file(env).stat().st_mode & 0o077 == 0
    assert json.loads(data)["settings"]["api.credentials.access_key"] == "ACCESSKEY0001"


def test_a_changed_file_is_parsed_again(conf: Path) -> None:
    env = env_for(conf)
    load_server_config_cached(env=env)
    rewrite(conf, conf_text(server="http://127.0.0.2:8008", secret="another-secret"))
    changed = load_server_config_cached(env=env)
    assert (changed.api_server, changed.secret_key) == ("http://127.0.0.2:8008", "another-secret")
    assert load_server_config_cached(env=env) == changed


def test_a_file_appearing_among_the_candidates_is_seen(tmp_path: Path) -> None:
    home = tmp_path / "userhome"
    home.mkdir()
    (home / "clearml.conf").write_text(conf_text(), encoding="utf-8")
    env = {**os.environ, "HOME": str(home)}
    env.pop("CLEARML_CONFIG_FILE", None)
    assert load_server_config_cached(env=env).api_server == "http://127.0.0.1:8008"
    # ~/trains.conf is read first and ~/clearml.conf wins, but its keys fill in gaps.
    (home / "trains.conf").write_text("api { files_server: http://files.example:8081 }\n")
    assert load_server_config_cached(env=env) == load_server_config(env=env)
    assert load_server_config_cached(env=env).files_server == "http://files.example:8081"


def test_the_environment_applies_on_a_hit(conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_server_config_cached(env=env_for(conf))
    parse_fails(monkeypatch)
    env = env_for(conf, CLEARML_API_HOST="http://10.0.0.1:8008", CLEARML_API_SECRET_KEY="from-env")
    cached = load_server_config_cached(env=env)
    assert (cached.api_server, cached.secret_key) == ("http://10.0.0.1:8008", "from-env")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (conf_text(extra=f"# old key: {SECRET}\n"), "the secret written twice"),
        (conf_text(secret='with\\"quote'), "the secret not verbatim"),
        (conf_text(server='"http://user:pw@127.0.0.1:8008"'), "a password in the URL"),
        (conf_text(extra="api { web_server: ${?WEB} }\n"), "an environment variable"),
        (conf_text(extra='include "other.conf"\n'), "an include"),
    ],
)
def test_what_cannot_be_known_for_sure_is_not_cached(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "clearml.conf"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "other.conf").write_text("api { web_server: http://web.example:8080 }\n")
    env = env_for(path, WEB="http://web.example:8080")
    assert load_server_config_cached(env=env) == load_server_config(env=env), why
    assert not cache_file(env).exists(), why


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"[]", b'{"version": 1}', b"\xff" * 10])
def test_a_broken_cache_file_is_a_miss(conf: Path, garbage: bytes) -> None:
    env = env_for(conf)
    load_server_config_cached(env=env)
    cache_file(env).write_bytes(garbage)
    assert load_server_config_cached(env=env) == load_server_config(env=env)


def test_a_secret_that_moved_in_an_unchanged_looking_file_is_not_trusted(
    conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache entry pointing outside the file's text (forged, or from a file since truncated
    with its stat restored) is a miss, not a wrong or empty secret."""
    env = env_for(conf)
    load_server_config_cached(env=env)
    entry = json.loads(cache_file(env).read_text())
    entry["secret_at"] = [0, 10_000, 10_050]
    cache_file(env).write_text(json.dumps(entry))
    config: ServerConfig = load_server_config_cached(env=env)
    assert config.secret_key == SECRET


def test_a_hit_imports_no_pyhocon(conf: Path) -> None:
    env = env_for(conf, PYTHONPATH=str(REPO))
    script = (
        "import sys\n"
        "from tray_app.core.server.config_cache import load_server_config_cached\n"
        "config = load_server_config_cached()\n"
        "print(config.api_server, 'pyhocon' in sys.modules, 'pyparsing' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        for _ in range(2)
    ]
    assert [r.stdout.split() for r in runs] == [
        ["http://127.0.0.1:8008", "True", "True"],  # the first one parses
        ["http://127.0.0.1:8008", "False", "False"],
    ], [r.stderr for r in runs]


def test_an_entry_rewritten_to_name_another_server_is_not_trusted(conf: Path) -> None:
    """Rewriting the cache must not send the secret read from clearml.conf elsewhere."""
    env = env_for(conf)
    load_server_config_cached(env=env)
    entry = json.loads(cache_file(env).read_text())
    entry["settings"]["api.api_server"] = "http://127.0.0.66:8008"
    cache_file(env).write_text(json.dumps(entry))
    config = load_server_config_cached(env=env)
    assert config.api_server == "http://127.0.0.1:8008"
    assert config.secret_key == SECRET


def test_an_entry_pointing_at_another_file_is_not_trusted(conf: Path, tmp_path: Path) -> None:
    """The entry names the files it came from; those must be the configuration's own."""
    other = tmp_path / "elsewhere.conf"
    other.write_text(conf_text(server="http://127.0.0.77:8008", secret="other-secret-0123456789"))
    env = env_for(conf)
    load_server_config_cached(env=env)
    original = json.loads(cache_file(env).read_text())
    # A genuine entry made from the other file, put in place of this configuration's.
    forged_env = env_for(other)
    load_server_config_cached(env=forged_env)
    entry = json.loads(cache_file(forged_env).read_text())
    entry["signature"] = original["signature"]
    cache_file(env).write_text(json.dumps(entry))
    config = load_server_config_cached(env=env)
    assert (config.api_server, config.secret_key) == ("http://127.0.0.1:8008", SECRET)


def test_an_entry_with_its_mac_recomputed_without_the_file_is_not_trusted(conf: Path) -> None:
    env = env_for(conf)
    load_server_config_cached(env=env)
    entry = json.loads(cache_file(env).read_text())
    entry["settings"]["api.api_server"] = "http://127.0.0.66:8008"
    entry["mac"] = "0" * 64
    cache_file(env).write_text(json.dumps(entry))
    assert load_server_config_cached(env=env).api_server == "http://127.0.0.1:8008"
