"""When `clearml-tray list` may use the standard library's HTTP instead of httpx, and that it
gets the same answers (the hostile-server cases run with it in test_api_hostile_plain.py)."""

from __future__ import annotations

import gzip
import sys

import pytest
from support.hostile_server import HostileServer, Reply, envelope

from tray_app.core.server.api import ClearMLClient, default_headers
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import ClearMLUnavailable
from tray_app.core.server.http_plain import PlainExchange, plain_exchange_for

HEADERS = {"User-Agent": "test"}


def config(url: str) -> ServerConfig:
    return ServerConfig(url, url, url, "KEY", "SECRET")


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="system proxies: httpx only")
def test_a_plain_http_server_without_a_proxy_gets_the_plain_exchange() -> None:
    assert isinstance(
        plain_exchange_for(config("http://127.0.0.1:8008"), 5, HEADERS, {}), PlainExchange
    )


@pytest.mark.parametrize(
    ("url", "env"),
    [
        ("https://api.clear.ml", {}),
        ("HTTPS://api.example", {}),
        ("http://127.0.0.1:8008", {"HTTP_PROXY": "http://proxy:3128"}),
        ("http://127.0.0.1:8008", {"all_proxy": "socks5://proxy:1080"}),
    ],
)
def test_tls_and_proxies_stay_with_httpx(url: str, env: dict[str, str]) -> None:
    assert plain_exchange_for(config(url), 5, HEADERS, env) is None


def test_an_empty_proxy_variable_is_no_proxy() -> None:
    assert plain_exchange_for(config("http://127.0.0.1:8008"), 5, HEADERS, {"http_proxy": " "})


async def test_a_gzip_reply_is_decoded() -> None:
    plain = b"".join(bytes(part) for part in envelope({"ok": "yes" * 1000}).body)  # type: ignore[arg-type]
    body = gzip.compress(plain)
    with HostileServer(lambda r: Reply(200, {"Content-Encoding": "gzip"}, [body])) as srv:
        cfg = ServerConfig(srv.url, "", "", auth_token="not-a-jwt")
        exchange = PlainExchange(5.0, default_headers())
        async with ClearMLClient(cfg, exchange=exchange, max_retries=0) as client:
            assert await client.call("tasks.get_all_ex", {}) == {"ok": "yes" * 1000}


async def test_a_refused_connection_is_worded_as_with_httpx() -> None:
    cfg = ServerConfig("http://127.0.0.1:9", "", "", auth_token="not-a-jwt")
    exchange = PlainExchange(5.0, default_headers())
    async with ClearMLClient(cfg, exchange=exchange, max_retries=0) as client:
        with pytest.raises(ClearMLUnavailable, match=r"Cannot reach .*: connection refused$"):
            await client.call("tasks.get_all_ex", {})
