"""Which server the tray shows, and what the user hears when its configuration cannot be used."""

from __future__ import annotations

from pathlib import Path

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
        unusable=views.unusable.append,
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
    finally:
        await source.close()
    assert demo is not None and not demo.running
    assert connection.service is not None and connection.service.client.closed
