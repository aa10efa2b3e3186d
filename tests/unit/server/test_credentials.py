"""Keys entered in the tray: what the web UI gives is read, checked with the server, then
written into clearml.conf as clearml-init writes it, the old file kept."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tray_app.core.server.config import ServerConfig, load_server_config
from tray_app.core.server.credentials import (
    Credentials,
    CredentialsFlow,
    CredentialsProblem,
    derive_servers,
    from_fields,
    login_with,
    parse_pasted,
    updated_text,
    write_config,
)

# What the web UI's "Copy to clipboard" gives (Settings → Workspace → Create new credentials).
WEB_UI_BLOCK = """api {
  web_server: https://app.clear.ml/
  api_server: https://api.clear.ml
  files_server: https://files.clear.ml
  credentials {
    "access_key" = "ABCDEFGHIJKLMNOPQRST"
    "secret_key" = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
  }
}
"""


def test_the_web_uis_block_is_read_whole() -> None:
    creds = parse_pasted(WEB_UI_BLOCK)
    assert creds == Credentials(
        "https://api.clear.ml",
        "https://app.clear.ml",
        "https://files.clear.ml",
        "ABCDEFGHIJKLMNOPQRST",
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN",
    )
    assert "0123456789" not in repr(creds)  # the secret never shows in a repr (or a log)


def test_a_bare_credentials_block_takes_the_server_given_beside_it() -> None:
    creds = parse_pasted(
        'credentials { access_key: "AKEY1234", secret_key: "SKEY5678" }', "http://localhost:8080"
    )
    assert (creds.api_server, creds.web_server, creds.files_server) == (
        "http://localhost:8008",
        "http://localhost:8080",
        "http://localhost:8081",
    )
    with pytest.raises(CredentialsProblem, match="names no server"):
        parse_pasted('access_key: "AKEY1234"\nsecret_key: "SKEY5678"')


@pytest.mark.parametrize(
    "text",
    [
        "just some words {",
        'include "/etc/passwd"',
        'credentials { access_key: "A K" }',
        "x" * 20000,
    ],
)
def test_what_cannot_be_keys_is_refused_in_words(text: str) -> None:
    with pytest.raises(CredentialsProblem):
        parse_pasted(text, "https://app.clear.ml")


def test_one_address_gives_the_three_as_clearml_init_derives_them() -> None:
    assert derive_servers("app.clear.ml") == (
        "https://api.clear.ml",
        "https://app.clear.ml",
        "https://files.clear.ml",
    )
    assert derive_servers("https://api.example.com/") == (
        "https://api.example.com",
        "https://app.example.com",
        "https://files.example.com",
    )
    assert derive_servers("10.0.0.5:8008") == (
        "http://10.0.0.5:8008",
        "http://10.0.0.5:8080",
        "http://10.0.0.5:8081",
    )
    assert derive_servers("http://127.0.0.1:43123") == ("http://127.0.0.1:43123",) * 3
    with pytest.raises(CredentialsProblem):
        from_fields("AKEY1234", "", "https://app.clear.ml")


OLD = ServerConfig(
    "http://127.0.0.1:8008",
    "http://127.0.0.1:8080",
    "http://127.0.0.1:8081",
    "OLDACCESSKEY",
    "OLD-SECRET-0123456789",
)
NEW = Credentials(
    "http://127.0.0.1:8008",
    "http://127.0.0.1:8080",
    "http://127.0.0.1:8081",
    "NEWACCESSKEY",
    "NEW-SECRET-9876543210",
)
EXISTING = """# my settings
api {
    api_server: http://127.0.0.1:8008
    web_server: http://127.0.0.1:8080
    files_server: http://127.0.0.1:8081
    credentials {"access_key": "OLDACCESSKEY", "secret_key": "OLD-SECRET-0123456789"}
}
sdk { development { default_output_uri: "" } }
"""


def test_wrong_keys_are_replaced_where_they_stand_and_nothing_else_changes() -> None:
    text = updated_text(EXISTING, OLD, NEW, "2026-12-10 10:00")
    assert text == EXISTING.replace("OLDACCESSKEY", "NEWACCESSKEY").replace(
        "OLD-SECRET-0123456789", "NEW-SECRET-9876543210"
    )


def test_keys_that_cannot_be_found_once_are_overridden_by_a_section_at_the_end() -> None:
    twice = EXISTING + "# the old secret again: OLD-SECRET-0123456789\n"
    text = updated_text(twice, OLD, NEW, "2026-12-10 10:00")
    assert text.startswith(twice.rstrip("\n"))
    assert "they override those above" in text
    assert text.rstrip().endswith("}")


def test_written_files_read_back_as_the_sdk_reads_them(tmp_path: Path) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text(EXISTING.replace("OLDACCESSKEY", "X1").replace('"X1"', '"X1"'))
    twice = conf.read_text() + "\napi.credentials.access_key: OLDACCESSKEY\n"
    conf.write_text(twice)  # the old keys cannot be located once each: appended section
    backup = write_config(conf, OLD, NEW)
    assert backup is not None and backup.read_text() == twice  # the old file is kept
    config = load_server_config(str(conf), env={"HOME": str(tmp_path)})
    assert (config.access_key, config.secret_key) == (NEW.access_key, NEW.secret_key)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # a secret is in it

    fresh = tmp_path / "new" / "clearml.conf"
    assert write_config(fresh, None, NEW) is None  # nothing to back up
    text = fresh.read_text()
    assert text.startswith("# ClearML SDK configuration file\napi {\n")
    assert '    credentials {"access_key": "NEWACCESSKEY", "secret_key": ' in text
    config = load_server_config(str(fresh), env={"HOME": str(tmp_path)})
    assert (config.api_server, config.secret_key) == (NEW.api_server, NEW.secret_key)


async def test_keys_are_checked_with_the_server_before_anything_is_written(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory(sessions=1)
    conf = tmp_path / "clearml.conf"
    conf.write_text(EXISTING.replace("http://127.0.0.1:8008", emu.url))
    reloads: list[int] = []

    async def reload() -> None:
        reloads.append(1)

    flow = CredentialsFlow(
        target=lambda: conf,
        current=lambda: load_server_config(str(conf), env={"HOME": str(tmp_path)}),
        login=login_with,
        reload=reload,
    )
    wrong = Credentials(emu.url, emu.url, emu.url, emu.access_key, "not-the-secret")
    with pytest.raises(CredentialsProblem, match="refused these keys"):
        await flow.submit(wrong)
    assert "OLDACCESSKEY" in conf.read_text() and reloads == []
    right = Credentials(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    saved = await flow.submit(right)
    assert saved.path == conf and saved.backup is not None and saved.user
    assert emu.secret_key in conf.read_text() and "OLD-SECRET" not in conf.read_text()
    assert reloads == [1]
    down = Credentials(
        "http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9", "A1234", "S5678"
    )
    with pytest.raises(CredentialsProblem, match="were not checked"):
        await flow.submit(down)
