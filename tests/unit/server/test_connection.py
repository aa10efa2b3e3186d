"""The server in use: a configuration builds one client; a broken one keeps the last."""

from __future__ import annotations

from pathlib import Path

from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.errors import ClearMLUnavailable, ConfigInvalid, ConfigNotFound

CONF = """api {{
  api_server: "http://127.0.0.1:{port}"
  web_server: "http://127.0.0.1:{port}"
  files_server: "http://127.0.0.1:{port}"
  credentials {{ access_key: "AK{port}", secret_key: "secret-key-{port}-0123456789" }}
}}
"""


def _conf(tmp_path: Path, port: int) -> str:
    path = tmp_path / f"{port}.conf"
    path.write_text(CONF.format(port=port))
    return str(path)


async def test_a_new_configuration_replaces_the_client_and_closes_the_old(tmp_path: Path) -> None:
    connection = ServerConnection()
    assert connection.service is None
    assert await connection.use(_conf(tmp_path, 9001)) is None
    first = connection.service
    assert first is not None and connection.config is not None
    assert connection.config.api_server == "http://127.0.0.1:9001"
    assert await connection.use(_conf(tmp_path, 9002)) is None
    assert connection.service is not first and first.client.closed
    await connection.close()
    assert connection.service is not None and connection.service.client.closed


async def test_a_configuration_that_cannot_be_used_keeps_the_server_in_use(
    tmp_path: Path,
) -> None:
    connection = ServerConnection()
    assert await connection.use(_conf(tmp_path, 9001)) is None
    service = connection.service
    missing = await connection.use(str(tmp_path / "missing.conf"))
    assert isinstance(missing, ConfigNotFound) and connection.error is missing
    broken = tmp_path / "broken.conf"
    broken.write_text("api { api_server: ")
    assert isinstance(await connection.use(str(broken)), ConfigInvalid)
    assert connection.service is service and not service.client.closed  # type: ignore[union-attr]
    assert await connection.use(_conf(tmp_path, 9003)) is None and connection.error is None
    await connection.close()


async def test_a_log_asked_for_without_a_server_says_so() -> None:
    connection = ServerConnection()
    try:
        await connection.console_log("0" * 32)
    except ClearMLUnavailable as exc:
        assert "No ClearML server is configured" in str(exc)
    else:
        raise AssertionError("no error without a server")
