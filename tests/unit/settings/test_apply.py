"""The Settings window's OK: saved, then each change applied without a restart."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from support.recorders import Notices

from tray_app.core.settings.apply import Appliers, SettingsFlow
from tray_app.core.settings.settings import (
    ServerProfile,
    Settings,
    default_settings_path,
    load_settings,
)
from tray_app.core.settings.store import SettingsStore


@dataclass
class Applied:
    intervals: list[float] = field(default_factory=list)
    tunnels: int = 0
    hotkeys: list[str] = field(default_factory=list)
    servers: int = 0
    refreshes: int = 0

    def appliers(self) -> Appliers:
        async def server() -> None:
            self.servers += 1

        return Appliers(
            poll_interval=self.intervals.append,
            tunnels=self._tunnels,
            hotkey=self.hotkeys.append,
            server=server,
            refresh=self._refresh,
        )

    def _tunnels(self) -> None:
        self.tunnels += 1

    def _refresh(self) -> None:
        self.refreshes += 1


class Autostart:
    def __init__(self) -> None:
        self.enabled = False

    def is_enabled(self) -> bool:
        return self.enabled

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


async def test_accepted_settings_are_saved_and_applied_where_they_matter() -> None:
    store, applied, autostart = SettingsStore(), Applied(), Autostart()
    await store.load()
    flow = SettingsFlow(
        store, notify=Notices(), appliers=applied.appliers(), autostart=lambda: autostart
    )
    new = copy.deepcopy(store.settings)
    new.poll_interval_s, new.hotkey, new.start_on_login = 30, "Ctrl+Alt+K", True
    await flow.apply(new)
    assert store.settings is new and load_settings().settings.poll_interval_s == 30
    assert applied.intervals == [30.0] and applied.hotkeys == ["Ctrl+Alt+K"]
    assert autostart.enabled and applied.tunnels == 1
    assert (applied.servers, applied.refreshes) == (0, 1)  # the same server: a refresh


async def test_another_clearml_conf_changes_the_server_and_keeps_the_last_queue(
    tmp_path: Path,
) -> None:
    store, applied = SettingsStore(), Applied()
    await store.load()
    store.settings.last_queue = "gpu-a100"  # remembered by a launch after the window opened
    flow = SettingsFlow(store, notify=Notices(), appliers=applied.appliers())
    opened_earlier = Settings()
    opened_earlier.profiles = [ServerProfile("default", str(tmp_path / "lab.conf"))]
    await flow.apply(opened_earlier)
    assert (applied.servers, applied.refreshes) == (1, 0)
    assert store.settings.last_queue == "gpu-a100" == load_settings().settings.last_queue
    await flow.use_config_file(str(tmp_path / "other.conf"))
    assert store.settings.active().config_file == str(tmp_path / "other.conf")
    assert applied.servers == 2


async def test_a_settings_file_that_cannot_be_written_is_said_and_the_rest_applied() -> None:
    store, applied, notices = SettingsStore(), Applied(), Notices()
    await store.load()
    default_settings_path().mkdir(parents=True)  # a folder where the file goes: no write works
    flow = SettingsFlow(store, notify=notices, appliers=applied.appliers())
    await flow.apply(Settings(poll_interval_s=45))
    ((kind, title, body),) = notices.sent
    assert (kind, title) == ("error", "Settings not saved") and "Traceback" not in body
    assert applied.intervals == [45.0] and store.settings.poll_interval_s == 45


async def test_an_edit_of_the_settings_file_is_applied_without_a_restart() -> None:
    import json

    store, applied, notices = SettingsStore(), Applied(), Notices()
    await store.load()
    flow = SettingsFlow(store, notify=notices, appliers=applied.appliers())
    await flow.apply(Settings(poll_interval_s=20))  # the tray's own write...
    await flow.file_changed()
    assert applied.intervals == [20.0] and len(notices.sent) == 0  # ...is not news
    path = default_settings_path()
    document = json.loads(path.read_text())
    document["settings"]["poll_interval_s"] = 60
    document["settings"]["show_all_users"] = True
    document["presets"] = [{"name": "gpu box", "queue": "sessions"}]
    path.write_text(json.dumps(document, indent=2))
    await flow.file_changed()
    assert store.settings.poll_interval_s == 60 and store.settings.show_all_users
    assert [p.name for p in store.presets] == ["gpu box"]  # the Presets submenu follows
    assert applied.intervals[-1] == 60.0 and applied.refreshes == 2
    assert notices.sent[-1][:2] == ("info", "Settings reloaded")


async def test_a_broken_edit_keeps_the_settings_in_use_and_names_the_line() -> None:
    store, applied, notices = SettingsStore(), Applied(), Notices()
    await store.load()
    flow = SettingsFlow(store, notify=notices, appliers=applied.appliers())
    await flow.apply(Settings(poll_interval_s=20))
    path = default_settings_path()
    good = path.read_text()
    path.write_text(good.replace('"poll_interval_s": 20,', '"poll_interval_s": 20,,'))
    await flow.file_changed()
    kind, title, body = notices.sent[-1]
    assert (kind, title) == ("error", "Settings file change not used")
    line = good.splitlines().index('    "poll_interval_s": 20,') + 1
    assert f"{path}, line {line}: not valid JSON" in body
    assert store.settings.poll_interval_s == 20 and path.exists()  # not moved aside
    path.write_text(good.replace('"poll_interval_s": 20', '"poll_interval_s": "often"'))
    await flow.file_changed()
    body = notices.sent[-1][2]
    assert f"line {line}:" in body and "poll_interval_s" in body
    assert store.settings.poll_interval_s == 20 and not list(path.parent.glob("*.bak*"))
