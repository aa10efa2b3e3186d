"""Which server the tray shows, and what the user hears when its configuration cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.recorders import Notices

from tray_app.core.ports import Question
from tray_app.core.server.connection import ServerConnection
from tray_app.core.server.source import ServerSource

CONF = """api {
  api_server: "http://127.0.0.1:9011"
  web_server: "http://127.0.0.1:9011"
  files_server: "http://127.0.0.1:9011"
  credentials { access_key: "AK", secret_key: "secret-key-0123456789abcdef" }
}
"""


class Views:
    def __init__(self) -> None:
        self.used: list[str] = []
        self.unusable: list[str] = []
        self.setup: list[bool] = []


def _source(
    tmp_path: Path, override: str | None, profile: str = ""
) -> tuple[ServerSource, Views, Notices, ServerConnection]:
    views, notices, connection = Views(), Notices(), ServerConnection()
    source = ServerSource(
        connection,
        notify=notices,
        data_dir=tmp_path / "data",
        profile_config=lambda: profile,
        override=override,
        use=lambda service, server: views.used.append(server),
        unusable=lambda message, keys: views.unusable.append(message),
        setup=views.setup.append,
    )
    return source, views, notices, connection


async def test_no_configuration_opens_the_setup_window_and_says_so_once(tmp_path: Path) -> None:
    source, views, notices, _ = _source(tmp_path, str(tmp_path / "missing.conf"))
    await source.apply()
    await source.apply()  # Retry: the window again, not a second notification
    assert views.setup == [True, True] and len(views.unusable) == 2
    assert notices.sent == [
        (
            "info",
            "ClearML is not configured",
            "Connect the tray to a ClearML server to see and start sessions.",
        )
    ]


async def test_a_broken_configuration_says_what_is_wrong_where(tmp_path: Path) -> None:
    broken = tmp_path / "clearml.conf"
    broken.write_text("api { api_server: ")
    source, views, notices, _ = _source(tmp_path, str(broken))
    await source.apply()
    ((kind, title, body),) = notices.sent
    assert (kind, title) == ("error", "ClearML configuration problem")
    assert str(broken) in body and views.setup == []


async def test_a_usable_configuration_is_shown_and_the_setup_window_closed(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text(CONF)
    source, views, notices, connection = _source(tmp_path, None, profile=str(conf))
    assert source.config_file() == str(conf)
    await source.apply()
    assert views.used == ["http://127.0.0.1:9011"] and views.setup == [False]
    assert notices.sent == []
    await connection.close()


async def test_the_settings_profile_replaces_a_config_file_given_on_the_command_line(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text(CONF)
    source, views, _, connection = _source(tmp_path, str(tmp_path / "cli.conf"), str(conf))
    assert source.config_file() == str(tmp_path / "cli.conf")
    await source.profile_changed()
    assert source.config_file() == str(conf) and views.used == ["http://127.0.0.1:9011"]
    await connection.close()


class Ask:
    def __init__(self, answer: int | None) -> None:
        self.answer, self.asked = answer, list[Question]()

    async def ask(self, question: Question) -> int | None:
        self.asked.append(question)
        return self.answer

    async def ask_text(self, title: str, prompt: str) -> str | None:
        return None

    def cancel_all(self) -> None:
        pass


async def test_new_session_without_a_server_asks_how_to_get_one(tmp_path: Path) -> None:
    source, views, _, connection = _source(tmp_path, str(tmp_path / "missing.conf"))
    setup = Ask(0)
    assert await source.ensure(setup) is None
    assert setup.asked[0].title == "A ClearML server is needed first" and views.setup == [True]
    assert await source.ensure(Ask(2)) is None and views.setup == [True]  # Cancel: nothing
    conf = tmp_path / "clearml.conf"
    conf.write_text(CONF)
    await connection.use(str(conf))
    asked = Ask(0)
    assert await source.ensure(asked) is connection.service and asked.asked == []
    await connection.close()


async def test_the_demo_server_is_started_once_and_shown(tmp_path: Path) -> None:
    source, views, notices, connection = _source(tmp_path, None)
    try:
        await source.use_demo()
        demo = source.demo
        assert demo is not None and demo.running and views.used == [demo.url]
        await source.use_demo()
        assert source.demo is demo and [n[1] for n in notices.sent] == ["Demo server"]
        assert source.config_file() == str(tmp_path / "data" / "demo-clearml.conf")
        # Settings names it: a server no profile names is still visible there.
        assert source.in_use().startswith(f"the built-in demo server at {demo.url}")
    finally:
        await source.close()
    assert demo is not None and not demo.running
    assert connection.service is not None and connection.service.client.closed


class Tunnel:
    def __init__(self, live: bool = True, prewarmed: bool = False) -> None:
        self.live, self.prewarmed = live, prewarmed


class Registry:
    def __init__(self, **tunnels: Tunnel) -> None:
        self._tunnels = dict(tunnels)
        self.ended: list[str] = []

    def tunnels(self) -> dict[str, Tunnel]:
        return self._tunnels

    def disconnect(self, key: str) -> None:
        self.ended.append(key)


def _following(
    tmp_path: Path, ask: Ask, registry: Registry | None = None
) -> tuple[ServerSource, Views, Notices, ServerConnection, list[Any], Path]:
    conf = tmp_path / "clearml.conf"
    conf.write_text(CONF)
    views, notices, connection, spawned = Views(), Notices(), ServerConnection(), []
    source = ServerSource(
        connection,
        notify=notices,
        data_dir=tmp_path / "data",
        profile_config=lambda: str(conf),
        override=None,
        use=lambda service, server: views.used.append(server),
        unusable=lambda message, keys: views.unusable.append(message),
        setup=views.setup.append,
        ask=ask,
        spawn=spawned.append,
        tunnels=lambda: registry,
    )
    return source, views, notices, connection, spawned, conf


async def test_new_keys_in_the_file_are_used_at_once_with_a_new_client(tmp_path: Path) -> None:
    source, views, notices, connection, _, conf = _following(tmp_path, Ask(0))
    await source.apply()
    first = connection.service
    conf.write_text(CONF.replace("secret-key-0123456789abcdef", "secret-key-fixed-9876543210"))
    await source.reload()
    assert connection.service is not first and first is not None and first.client.closed
    assert connection.config is not None and connection.config.secret_key.endswith("3210")
    assert views.used == ["http://127.0.0.1:9011"] * 2
    assert notices.sent[-1][:2] == ("info", "ClearML configuration reloaded")
    # An edit the tray does not read (a comment): nothing changes, nothing is said.
    conf.write_text(conf.read_text() + "# a comment\n")
    await source.reload()
    assert len(views.used) == 2 and len(notices.sent) == 1
    await connection.close()


async def test_an_edit_that_cannot_be_used_keeps_the_last_good_one_and_says_where(
    tmp_path: Path,
) -> None:
    source, views, notices, connection, _, conf = _following(tmp_path, Ask(0))
    await source.apply()
    before = connection.service
    conf.write_text(CONF + "sdk {\n  broken: [\n")
    await source.reload()
    assert connection.service is before and views.unusable == [] and views.used == [views.used[0]]
    kind, title, body = notices.sent[-1]
    assert (kind, title) == ("error", "clearml.conf change not used")
    assert f"{conf}, line " in body and "goes on with the configuration that worked" in body
    await connection.close()


async def test_a_file_fixed_after_a_bad_start_is_used_without_saying_the_server_changed(
    tmp_path: Path,
) -> None:
    source, views, notices, connection, spawned, conf = _following(tmp_path, Ask(0))
    conf.write_text(CONF + "Press Ctrl-C to stop.\n")
    await source.apply()
    assert connection.service is None and len(views.unusable) == 1
    conf.write_text(CONF)
    await source.reload()
    assert views.used == ["http://127.0.0.1:9011"] and spawned == []
    assert notices.sent[-1][1:] == (
        "ClearML configuration in use",
        "clearml.conf can be used now: showing http://127.0.0.1:9011.",
    )
    await connection.close()


async def test_a_new_server_asks_about_the_tunnels_to_the_old_one(tmp_path: Path) -> None:
    registry = Registry(a=Tunnel(), b=Tunnel(prewarmed=True), c=Tunnel(live=False))
    ask = Ask(1)  # "End them"
    source, views, notices, connection, spawned, conf = _following(tmp_path, ask, registry)
    await source.apply()
    conf.write_text(CONF.replace("9011", "9022"))
    await source.reload()
    assert views.used == ["http://127.0.0.1:9011", "http://127.0.0.1:9022"]
    assert notices.sent[-1][1:] == ("ClearML server changed", "Now showing http://127.0.0.1:9022.")
    (question,) = spawned
    await question
    (asked,) = ask.asked
    assert "1 tunnel to sessions on http://127.0.0.1:9011 is still open" in asked.text
    assert asked.choices == ("Keep them", "End them")
    assert registry.ended == ["b", "a"]  # the one opened ahead silently, the other as asked
    await connection.close()


async def test_a_configuration_that_appears_is_taken_and_the_setup_window_closes(
    tmp_path: Path,
) -> None:
    source, views, _, connection, _, conf = _following(tmp_path, Ask(0))
    conf.unlink()
    await source.apply()
    assert views.setup == [True] and views.used == []
    conf.write_text(CONF)  # clearml-init ran
    await source.reload()
    assert views.setup == [True, False] and views.used == ["http://127.0.0.1:9011"]
    await connection.close()


async def test_keys_go_where_the_configuration_came_from(tmp_path: Path) -> None:
    source, _, _, connection, _, conf = _following(tmp_path, Ask(0))
    await source.apply()
    assert source.keys_file() == conf
    assert source.in_use() == f"http://127.0.0.1:9011, from {conf}."
    await connection.close()
