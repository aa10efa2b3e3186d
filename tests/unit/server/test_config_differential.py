"""Differential tests: `load_server_config` resolves what the real ClearML SDK resolves.

Each case lays out files under a fresh HOME, sets environment variables, then runs the SDK's own
loader in a subprocess (tests/support/sdk_config_oracle.py) and our loader in-process on the same
inputs, and compares the server addresses, credentials and certificate verification.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tray_app.core.server.config import load_server_config
from tray_app.core.server.errors import (
    ConfigError,
    ConfigInvalid,
    ConfigNotFound,
    CredentialsMissing,
)

ORACLE = Path(__file__).resolve().parents[2] / "support" / "sdk_config_oracle.py"
INIT_STYLE = """api {
    # written the way clearml-init writes it
    api_server: http://127.0.0.1:8008
    web_server: http://127.0.0.1:8080
    files_server: http://127.0.0.1:8081
    credentials {"access_key": "AKINIT", "secret_key": "SKINIT"}
}
sdk { development { default_output_uri: "" } }
"""
CREDS = 'api.credentials { access_key: "AK1", secret_key: "SK1" }\n'
SERVER = "api.api_server: http://127.0.0.1:8008\n" + CREDS
WEB = "http://127.0.0.1:8080"


@dataclass
class Case:
    name: str
    files: dict[str, str] = field(default_factory=dict)  # path relative to HOME → content
    env: dict[str, str] = field(default_factory=dict)  # "{HOME}" is replaced by the home path
    # The SDK resolves it but it could never be used, and we say so: the reason we give.
    refused: str = ""


CASES = [
    Case("clearml-init format, unquoted URLs", {"clearml.conf": INIT_STYLE}),
    Case(
        "quoted values and a trailing slash",
        {"clearml.conf": 'api { api_server: "http://127.0.0.1:8008/" }\n' + CREDS},
    ),
    Case(
        "dotted keys only",
        {
            "clearml.conf": "api.api_server: http://127.0.0.1:8008\n"
            "api.credentials.access_key: AKDOT\napi.credentials.secret_key: SKDOT\n"
        },
    ),
    Case(
        "comments of both kinds and // inside a URL",
        {
            "clearml.conf": "// a comment\napi {\n  # another\n"
            "  api_server: http://127.0.0.1:8008 // trailing comment\n"
            "  web_server: http://127.0.0.1:8080 # trailing hash\n}\n" + CREDS
        },
    ),
    Case("trains.conf only", {"trains.conf": INIT_STYLE.replace("AKINIT", "AKTRAINS")}),
    Case(
        "trains.conf + clearml.conf: clearml wins, objects deep-merge",
        {
            "trains.conf": "api { api_server: http://127.0.0.2:8008\n"
            ' credentials { access_key: "AKT", secret_key: "SKT" } }\n',
            "clearml.conf": "api { api_server: http://127.0.0.3:8008\n"
            ' credentials.secret_key: "SKC" }\n',
        },
    ),
    Case(
        "legacy api.host",
        {"clearml.conf": "api { host: http://127.0.0.1:8008 }\n" + CREDS},
    ),
    Case(
        "api_server wins over api.host",
        {
            "clearml.conf": "api { host: http://127.0.0.9:8008,"
            " api_server: http://127.0.0.1:8008 }\n" + CREDS
        },
    ),
    Case(
        "CLEARML_CONFIG_FILE: only that file is read",
        {
            "clearml.conf": INIT_STYLE,
            "other/alt.conf": "api.api_server: http://127.0.0.5:8008\n" + CREDS,
        },
        {"CLEARML_CONFIG_FILE": "{HOME}/other/alt.conf"},
    ),
    Case(
        "legacy TRAINS_CONFIG_FILE",
        {"alt.conf": "api.api_server: http://127.0.0.6:8008\n" + CREDS},
        {"TRAINS_CONFIG_FILE": "{HOME}/alt.conf"},
    ),
    Case(
        "CLEARML_CONFIG_FILE with ~",
        {"cfg/my.conf": "api.api_server: http://127.0.0.7:8008\n" + CREDS},
        {"CLEARML_CONFIG_FILE": "~/cfg/my.conf"},
    ),
    Case(
        "CLEARML_API_HOST overrides the file",
        {"clearml.conf": INIT_STYLE},
        {"CLEARML_API_HOST": "http://127.0.0.8:8008/"},
    ),
    Case(
        "CLEARML_* beats legacy TRAINS_*",
        {"clearml.conf": INIT_STYLE},
        {"TRAINS_API_HOST": "http://127.0.0.10:8008", "CLEARML_API_HOST": "http://127.0.0.11:8008"},
    ),
    Case(
        "legacy TRAINS_API_HOST and keys",
        {"clearml.conf": "api {}\n"},
        {
            "TRAINS_API_HOST": "http://127.0.0.12:8008",
            "TRAINS_API_ACCESS_KEY": "AKLEG",
            "TRAINS_API_SECRET_KEY": "SKLEG",
        },
    ),
    Case(
        "env keys override file keys, values stripped",
        {"clearml.conf": INIT_STYLE},
        {"CLEARML_API_ACCESS_KEY": "  AKENV ", "CLEARML_API_SECRET_KEY": "SKENV"},
    ),
    Case(
        "empty env values count as unset",
        {"clearml.conf": INIT_STYLE},
        {"CLEARML_API_HOST": "   ", "CLEARML_API_ACCESS_KEY": ""},
    ),
    Case(
        "CLEARML_AUTH_TOKEN replaces the keys",
        {"clearml.conf": INIT_STYLE},
        {"CLEARML_AUTH_TOKEN": "eyJhbGciOiJIUzI1NiJ9.e30.sig"},
    ),
    Case(
        "CLEARML_WEB_HOST and CLEARML_FILES_HOST",
        {"clearml.conf": INIT_STYLE},
        {
            "CLEARML_WEB_HOST": "http://127.0.0.13:9080/",
            "CLEARML_FILES_HOST": "http://127.0.0.14:9081",
        },
    ),
    Case(
        "web and files derived from an api. host",
        {"clearml.conf": "api.api_server: https://api.clearml.example.org\n" + CREDS},
    ),
    Case(
        "web and files derived from a demoapi. host",
        {"clearml.conf": "api.api_server: https://demoapi.demo.clear.ml\n" + CREDS},
    ),
    Case(
        "web and files derived from port 8008",
        {"clearml.conf": "api.api_server: http://127.0.0.1:8008\n" + CREDS},
    ),
    Case(
        "files derived from an explicit web server without a port",
        {
            "clearml.conf": "api { api_server: http://127.0.0.1:8008\n"
            " web_server: https://app.clearml.example.org }\n" + CREDS
        },
    ),
    Case(
        "files derived from an explicit web server on a custom port",
        {
            "clearml.conf": "api { api_server: http://127.0.0.1:8008\n"
            " web_server: http://127.0.0.1:18080 }\n" + CREDS
        },
    ),
    Case(
        "the hosted default when no server is named",
        {"clearml.conf": CREDS},
    ),
    Case(
        "verify_certificate: false",
        {"clearml.conf": INIT_STYLE + "api.verify_certificate: false\n"},
    ),
    Case(
        "verify_certificate: a CA bundle path",
        {"clearml.conf": INIT_STYLE + 'api.verify_certificate: "/etc/ssl/certs/my-ca.pem"\n'},
    ),
    Case(
        "verify_certificate as a quoted truth string",
        {"clearml.conf": INIT_STYLE + 'api.verify_certificate: "no"\n'},
    ),
    Case(
        "CLEARML_API_HOST_VERIFY_CERT=0 overrides the file",
        {"clearml.conf": INIT_STYLE + "api.verify_certificate: true\n"},
        {"CLEARML_API_HOST_VERIFY_CERT": "0"},
    ),
    Case(
        "CLEARML_API_HOST_VERIFY_CERT as a CA path",
        {"clearml.conf": INIT_STYLE},
        {"CLEARML_API_HOST_VERIFY_CERT": "{HOME}/ca.pem"},
    ),
    Case(
        "include of a relative file",
        {
            "clearml.conf": 'include "clearml-creds.conf"\napi.api_server: http://127.0.0.1:8008\n',
            "clearml-creds.conf": CREDS,
        },
    ),
    Case(
        "include required(file(...))",
        {
            "clearml.conf": 'include required(file("conf.d/server.conf"))\n' + CREDS,
            "conf.d/server.conf": "api { api_server: http://127.0.0.15:8008 }\n",
        },
    ),
    Case(
        "an optional include that does not exist",
        {"clearml.conf": 'include "missing.conf"\n' + INIT_STYLE},
    ),
    Case(
        "${?ENV} substitutions",
        {
            "clearml.conf": "api { api_server: ${?TEST_CLEARML_SERVER}\n"
            "  credentials { access_key: ${?TEST_AK}, secret_key: ${?TEST_SK} } }\n"
        },
        {"TEST_CLEARML_SERVER": "http://127.0.0.16:8008", "TEST_AK": "AKSUB", "TEST_SK": "SKSUB"},
    ),
    Case(
        "an unset ${?ENV} falls back to the earlier value",
        {
            "clearml.conf": "api { api_server: http://127.0.0.17:8008\n"
            "  api_server: ${?UNSET_SERVER_VARIABLE} }\n" + CREDS
        },
    ),
    Case(
        "self-reference and concatenation",
        {
            "clearml.conf": "base_host: 127.0.0.18\n"
            'api { api_server: "http://"${base_host}":8008"\n'
            '  web_server: "http://"${base_host}":8080" }\n' + CREDS
        },
    ),
    Case(
        "= separators and objects without a colon",
        {
            "clearml.conf": 'api { api_server = "http://127.0.0.19:8008"\n'
            '  credentials { access_key = "AKEQ"\n secret_key = "SKEQ" } }\n'
        },
    ),
    Case(
        "duplicate keys: the last value wins",
        {"clearml.conf": INIT_STYLE + "api { api_server: http://127.0.0.20:8008 }\n"},
    ),
    Case(
        "no file at all, everything from the environment",
        {},
        {
            "CLEARML_API_HOST": "http://127.0.0.21:8008",
            "CLEARML_API_ACCESS_KEY": "AKONLY",
            "CLEARML_API_SECRET_KEY": "SKONLY",
        },
    ),
    Case("a file without credentials", {"clearml.conf": "api.api_server: http://127.0.0.1:8008\n"}),
    Case(
        "CLEARML_CONFIG_FILE names a missing file",
        {"clearml.conf": INIT_STYLE},
        {"CLEARML_CONFIG_FILE": "{HOME}/nope.conf"},
    ),
    Case(
        "a web server that cannot be derived",
        {"clearml.conf": "api.api_server: http://127.0.0.1:9000\n" + CREDS},
    ),
    # Every form of files server the SDK takes: the tray never talks to it.
    *(
        Case(f"files server {label}", {"clearml.conf": f"{SERVER}api.files_server: {value}\n"})
        for label, value in (
            ("on S3", "s3://bucket/prefix"),
            ("on S3 with a trailing slash", '"s3://bucket/prefix/"'),
            ("on Google Cloud Storage", "gs://bucket/folder"),
            ("on Azure", "azure://account.blob.core.windows.net/container/path"),
            ("as a shared folder", "/mnt/shared/clearml-files"),
            ("as a file URL", '"file:///mnt/shared/clearml-files"'),
            ("empty (derived)", '""'),
            ("with spaces", '"http://files host:8081"'),
            ("over https", "https://files.example.org"),
        )
    ),
    Case(
        "CLEARML_FILES_HOST on S3",
        {"clearml.conf": SERVER},
        {"CLEARML_FILES_HOST": "s3://bucket/from-env/"},
    ),
    Case(
        "CLEARML_FILES_HOST on GCS beats a files server on Azure",
        {"clearml.conf": SERVER + "api.files_server: azure://acct.blob.core.windows.net/c\n"},
        {"CLEARML_FILES_HOST": "gs://bucket/env"},
    ),
    Case(
        "legacy TRAINS_FILES_HOST as a folder",
        {"clearml.conf": SERVER},
        {"TRAINS_FILES_HOST": "/srv/files"},
    ),
    # Files servers the SDK cannot read: it fails only when it stores a file; the tray runs.
    Case("files server as a number", {"clearml.conf": SERVER + "api.files_server: 8081\n"}),
    Case("files server as null", {"clearml.conf": SERVER + "api.files_server: null\n"}),
    Case("files server as an object", {"clearml.conf": SERVER + "api.files_server { a: 1 }\n"}),
    Case(
        "files server as an object, CLEARML_FILES_HOST set",
        {"clearml.conf": SERVER + "api.files_server { a: 1 }\n"},
        {"CLEARML_FILES_HOST": "s3://bucket/env"},
    ),
    # The web server: only used for links, any text the SDK takes is taken.
    Case(
        "web server with spaces (no links, the tray runs)",
        {"clearml.conf": SERVER + 'api.web_server: "http://web host:8080"\n'},
    ),
    Case("web server not http", {"clearml.conf": SERVER + "api.web_server: ftp://web.example\n"}),
    Case("web server as null", {"clearml.conf": SERVER + "api.web_server: null\n"}),
    Case("web server as an object", {"clearml.conf": SERVER + "api.web_server { a: 1 }\n"}),
    Case(
        "web server as an object, CLEARML_WEB_HOST set",
        {"clearml.conf": SERVER + "api.web_server { a: 1 }\n"},
        {"CLEARML_WEB_HOST": "http://127.0.0.1:8080"},
    ),
    # The API server: the tray connects to it, so what no client could reach is refused.
    Case("API server as an object", {"clearml.conf": "api.api_server { a: 1 }\n" + CREDS}),
    Case(
        "API server on port 0",
        {"clearml.conf": f"api {{ api_server: http://127.0.0.1:0\n web_server: {WEB} }}\n{CREDS}"},
        refused="has a port outside 1-65535",
    ),
    Case(
        "API server not http",
        {"clearml.conf": "api.api_server: ftp://127.0.0.1:8008\n" + CREDS},
        refused="is not an http(s) URL",
    ),
    Case(
        "API server with a line break",
        {"clearml.conf": f'api {{ api_server: "http://h:8008\\nx"\n web_server: {WEB} }}\n{CREDS}'},
        refused="contains spaces or control characters",
    ),
    Case(
        "API server with a password in it",
        {"clearml.conf": "api.api_server: http://user:pw@127.0.0.1:8008\n" + CREDS},
    ),
    Case(
        "secret key as an object",
        {
            "clearml.conf": SERVER.replace(CREDS, "") + "api.credentials { access_key: AK1\n"
            " secret_key { a: 1 } }\n"
        },
        refused="'api.credentials.secret_key' must be a text value",
    ),
    Case(
        "verify_certificate as an object",
        {"clearml.conf": SERVER + "api.verify_certificate { a: 1 }\n"},
    ),
    Case(
        "a config file larger than 256 KB",
        {"clearml.conf": SERVER + ("# padding\n" * 30000)},
        refused="larger than 256 KB",
    ),
]


def _lay_out(case: Case, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    for rel, content in case.files.items():
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    env.update({k: v.replace("{HOME}", str(home)) for k, v in case.env.items()})
    return env


def _sdk_resolves(env: dict[str, str], cwd: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(ORACLE)],
        env={**env, "CLEARML_NO_DEFAULT_SERVER": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.sdk
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_resolves_like_the_sdk(case: Case, tmp_path: Path) -> None:
    home = tmp_path / "case-home"
    env = _lay_out(case, home)
    sdk = _sdk_resolves(env, tmp_path)

    if case.refused:
        assert "error" not in sdk  # the SDK takes it: refusing it is ours to justify
        with pytest.raises(ConfigInvalid) as refused:
            load_server_config(env=env)
        assert case.refused in str(refused.value)
        return
    if "error" in sdk:
        with pytest.raises(ConfigError):
            load_server_config(env=env)
        return
    if not (sdk["access_key"] or sdk["secret_key"] or sdk["auth_token"]):
        # The SDK would stop with MissingConfigError when it connects.
        with pytest.raises((CredentialsMissing, ConfigNotFound)):
            load_server_config(env=env)
        return

    if "files_server_error" in sdk:
        sdk["files_server"] = ""  # unknown: the SDK fails only when it stores a file
        del sdk["files_server_error"]
    ours = load_server_config(env=env)
    assert {
        "api_server": ours.api_server,
        "web_server": ours.web_server,
        "files_server": ours.files_server,
        "access_key": ours.access_key,
        "secret_key": ours.secret_key,
        "auth_token": ours.auth_token,
        "verify": ours.verify,
    } == sdk


@pytest.mark.sdk
def test_explicit_config_file_behaves_like_clearml_config_file(tmp_path: Path) -> None:
    """The app's "config file" setting reads only that file, like CLEARML_CONFIG_FILE."""
    home = tmp_path / "case-home"
    case = CASES[8]
    env = _lay_out(case, home)
    via_env = load_server_config(env=env)
    env.pop("CLEARML_CONFIG_FILE")
    explicit = load_server_config(home / "other" / "alt.conf", env=env)
    assert explicit == via_env
    assert explicit.source == (home / "other" / "alt.conf",)
    assert (
        _sdk_resolves({**env, "CLEARML_CONFIG_FILE": str(home / "other/alt.conf")}, tmp_path)[
            "api_server"
        ]
        == explicit.api_server
    )


def test_source_lists_the_files_read_in_merge_order(tmp_path: Path) -> None:
    home = tmp_path / "case-home"
    env = _lay_out(CASES[5], home)
    assert load_server_config(env=env).source == (home / "trains.conf", home / "clearml.conf")


def test_repr_never_shows_secrets(tmp_path: Path) -> None:
    env = _lay_out(CASES[0], tmp_path / "case-home")
    config = load_server_config(env=env)
    assert "SKINIT" not in repr(config) and "AKINIT" not in repr(config)


def test_invalid_error_names_file_and_line(tmp_path: Path) -> None:
    # guard for the error-shape contract used by the UI
    (tmp_path / "clearml.conf").write_text("api {\n  api_server: http://127.0.0.1:8008\n  }}\n")
    with pytest.raises(ConfigInvalid) as info:
        load_server_config(env={"HOME": str(tmp_path)})
    assert info.value.path == tmp_path / "clearml.conf"
    assert info.value.line == 3
    assert str(tmp_path / "clearml.conf") in str(info.value) and "line 3" in str(info.value)
