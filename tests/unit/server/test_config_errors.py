"""Broken or missing ClearML configuration gives a specific, user-facing error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tray_app.core.server.config import candidate_files, load_server_config, web_link_base
from tray_app.core.server.errors import ConfigInvalid, ConfigNotFound, CredentialsMissing

CREDS = 'api.credentials { access_key: "AK1", secret_key: "SK1" }\n'


def _home_with(tmp_path: Path, text: str | bytes, name: str = "clearml.conf") -> dict[str, str]:
    home = tmp_path / "h"
    home.mkdir()
    path = home / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return {"HOME": str(home)}


def test_nothing_configured_gives_onboarding(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound) as info:
        load_server_config(env={"HOME": str(tmp_path)})
    err = info.value
    assert str(tmp_path / "clearml.conf") in str(err)
    assert err.searched == (tmp_path / "trains.conf", tmp_path / "clearml.conf")
    assert "docker-compose.yaml" in err.onboarding and "clearml-init" in err.onboarding


def test_missing_explicit_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound) as info:
        load_server_config(tmp_path / "elsewhere.conf", env={"HOME": str(tmp_path)})
    assert "elsewhere.conf" in str(info.value)


def test_file_without_credentials(tmp_path: Path) -> None:
    env = _home_with(tmp_path, "api.api_server: http://127.0.0.1:8008\n")
    with pytest.raises(CredentialsMissing) as info:
        load_server_config(env=env)
    assert "clearml-init" in str(info.value) and "clearml.conf" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("api {\n  api_server: http://127.0.0.1:8008\n  }}\n", 3, "syntax error"),
        ('api {\n  credentials { access_key: "a"\n secret_key: "b"\n', 4, "syntax error"),
        ("a: 1\nb: ${NOT_DEFINED_ANYWHERE_XYZ}\n", 2, "NOT_DEFINED_ANYWHERE_XYZ"),
        ('a: 1\n\ninclude required(file("x.conf"))\n' + CREDS, 3, "include required"),
    ],
    ids=["extra brace", "unclosed object", "unresolved substitution", "sdk-unreadable include"],
)
def test_parse_errors_carry_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    env = _home_with(tmp_path, text)
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env=env)
    err = info.value
    assert err.path == Path(env["HOME"]) / "clearml.conf"
    assert err.line == line
    assert words in str(err)
    assert f"line {line}" in str(err)


@pytest.mark.parametrize(
    ("after", "blank"),
    [("", ""), ('api.web_server: "http://127.0.0.1:8080"\n', ""), ("", "\n\n# note\n")],
    ids=["last line", "settings after it", "blank and comment after it"],
)
def test_a_line_that_is_not_a_setting_is_named_in_words(
    tmp_path: Path, after: str, blank: str
) -> None:
    # A terminal line pasted under a config: pyparsing's own message is its whole grammar, and
    # its line is where the value was due (the next line with content, or past the end).
    env = _home_with(tmp_path, CREDS + "\nPress Ctrl-C to stop.\n" + blank + after)
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env=env)
    assert info.value.line == CREDS.count("\n") + 2
    assert info.value.reason == "not a setting (`key: value` or `key { … }`)"
    assert "Ctrl-C" not in str(info.value)  # a stray line may be a pasted secret


def test_missing_required_include(tmp_path: Path) -> None:
    env = _home_with(tmp_path, 'include required("gone.conf")\n' + CREDS)
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env=env)
    assert "gone.conf" in str(info.value)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    env = _home_with(
        tmp_path, b"api.api_server: http://127.0.0.1:8008\n# caf\xe9\n" + CREDS.encode()
    )
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env=env)
    assert info.value.line == 2 and "UTF-8" in str(info.value)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    env = _home_with(tmp_path, "[1, 2, 3]\n")
    with pytest.raises(ConfigInvalid, match="top level"):
        load_server_config(env=env)


def test_wrong_type_for_api_section(tmp_path: Path) -> None:
    env = _home_with(tmp_path, 'api: "just a string"\n')
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env=env)
    assert "'api' must be an object" in str(info.value)


def test_url_include_is_refused_without_any_network(tmp_path: Path) -> None:
    # 127.0.0.1:9 (discard) would refuse anyway; the point is that we never try.
    env = _home_with(tmp_path, 'include url("http://127.0.0.1:9/remote.conf")\n' + CREDS)
    with pytest.raises(ConfigInvalid, match="URL"):
        load_server_config(env=env)


def test_non_http_server_is_refused(tmp_path: Path) -> None:
    env = _home_with(tmp_path, "api.api_server: ftp://127.0.0.1:8008\n" + CREDS)
    with pytest.raises(ConfigInvalid, match="not an http"):
        load_server_config(env=env)


@pytest.mark.parametrize(
    "files_server",
    ["s3://bucket/prefix", "gs://b/p", "azure://a.blob.core.windows.net/c", "/srv/f"],
)
def test_a_files_server_that_is_not_http_is_taken_as_it_is(
    tmp_path: Path, files_server: str
) -> None:
    env = _home_with(
        tmp_path,
        f"api {{ api_server: http://127.0.0.1:8008\n files_server: {files_server} }}\n" + CREDS,
    )
    assert load_server_config(env=env).files_server == files_server


def test_a_web_server_that_is_not_http_starts_the_tray_without_links(tmp_path: Path) -> None:
    env = _home_with(
        tmp_path,
        'api { api_server: http://127.0.0.1:8008\n web_server: "ftp://web host" }\n' + CREDS,
    )
    config = load_server_config(env=env)
    assert config.web_server == "ftp://web host"  # what the SDK resolves
    assert web_link_base(config.web_server) == ""  # but no link is offered
    assert web_link_base("https://app.example.org/") == "https://app.example.org"


def test_parsing_does_not_leak_into_os_environ(tmp_path: Path) -> None:
    """Substitutions see the given env; the process environment is untouched afterwards."""
    env = _home_with(tmp_path, "api.api_server: ${?ONLY_IN_GIVEN_ENV}\n" + CREDS)
    env["ONLY_IN_GIVEN_ENV"] = "http://127.0.0.30:8008"
    assert load_server_config(env=env).api_server == "http://127.0.0.30:8008"
    assert "ONLY_IN_GIVEN_ENV" not in os.environ


def test_env_none_means_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARML_API_HOST", "http://127.0.0.31:8008")
    monkeypatch.setenv("CLEARML_API_ACCESS_KEY", "AKP")
    monkeypatch.setenv("CLEARML_API_SECRET_KEY", "SKP")
    config = load_server_config()
    assert (config.api_server, config.access_key, config.source) == (
        "http://127.0.0.31:8008",
        "AKP",
        (),
    )


def test_candidate_files_follow_the_sdk_order(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert candidate_files(env=env) == (tmp_path / "trains.conf", tmp_path / "clearml.conf")
    env["CLEARML_CONFIG_FILE"] = "~/x.conf"
    assert candidate_files(env=env) == (tmp_path / "x.conf",)
    assert candidate_files("~/y.conf", env=env) == (tmp_path / "y.conf",)
