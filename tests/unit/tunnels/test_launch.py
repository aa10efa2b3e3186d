"""Launching from a preset: prepared before anything runs, the fixed password from the real
keyring, failures in words."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keyring.backend
import keyring.errors
import pytest
from support.recorders import Notices

from tray_app.core.ports import Question
from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.core.settings.secrets import KEYRING, SecretStore, _Location
from tray_app.core.tunnels import launch as launch_mod
from tray_app.core.tunnels.launch import Launched, LaunchFlow, prepare, prepare_attach

FIXED = Preset(name="gpu", queue="q", password_policy=PasswordPolicy.FIXED)
EXE = ("/opt/bin/clearml-session",)


@dataclass
class Creator:
    """The registry's create, recorded; `refuse` says why nothing would start."""

    refuse: str = ""
    created: list[tuple[str, str | None]] = field(default_factory=list)

    async def create(self, preset: Preset, password: str | None = None) -> Launched:
        if self.refuse:
            return Launched(None, self.refuse)
        self.created.append((preset.name, password))
        return Launched(f"launch-{len(self.created)}")


def test_prepare_gives_the_argv_and_keeps_the_password_out_of_it() -> None:
    prepared = prepare(FIXED, executable=EXE, state_file="/s/launch-1.json", password="pw 0123")
    assert prepared.ok and prepared.message == ""
    assert prepared.argv[:3] == (*EXE, "--config-file", "/s/launch-1.json")
    # The CLI reads the state file and never writes its defaults (with the password) back.
    assert prepared.argv[-1] == "--disable-store-defaults"
    assert "pw 0123" not in " ".join(prepared.argv) and "pw 0123" in prepared.state_text
    assert "pw 0123" not in repr(prepared)
    assert prepare(Preset(name="r", queue="q"), executable=EXE, state_file="/s").state_text == ""


def test_prepare_says_in_words_what_cannot_start() -> None:
    no_password = prepare(FIXED, executable=EXE, state_file="/s", password=None)
    assert not no_password.ok and no_password.argv == ()
    assert "uses a fixed password, but none is stored in the keyring" in no_password.message
    no_cli = prepare(Preset(name="r", queue="q"), executable=None, state_file="/s")
    assert not no_cli.ok and no_cli.message.startswith("clearml-session is not installed")
    invalid = prepare(Preset(name="bad", queue=""), executable=EXE, state_file="/s")
    assert not invalid.ok and invalid.message.startswith("The preset “bad” is not valid: ")
    assert not prepare_attach("abc", executable=None, state_file="/s").ok
    attach = prepare_attach("abc", executable=EXE, state_file="/s")
    assert attach.ok and "--attach" in attach.argv and "abc" in attach.argv
    assert attach.argv[-1] == "--disable-store-defaults"
    elsewhere = prepare_attach("abc", executable=None, state_file="/s", missing="Not there.")
    assert elsewhere.message == "Not there."


def test_the_bundled_cli_is_the_executable_and_its_hidden_entry() -> None:
    bundled = ("/opt/clearml-tray/clearml-tray", "_clearml-session")
    attach = prepare_attach("abc", executable=bundled, state_file="/s")
    assert attach.argv[:4] == (*bundled, "--config-file", "/s")
    launch = prepare(Preset(name="r", queue="q"), executable=bundled, state_file="/s")
    assert launch.argv[:2] == bundled and launch.argv.count("_clearml-session") == 1


async def test_a_fixed_password_is_read_from_the_keyring_and_handed_to_the_registry() -> None:
    secrets = SecretStore()
    secrets.set(FIXED.password_keyring_key(), "correct horse")
    creator, notices = Creator(), Notices()
    flow = LaunchFlow(creator, notify=notices, secrets=secrets)
    assert await flow.launch(FIXED) == "launch-1"
    assert creator.created == [("gpu", "correct horse")]
    assert notices.sent == []  # "Starting a session" is the registry's (with its buttons)


async def test_a_launch_that_cannot_start_says_why_and_nothing_starts() -> None:
    notices = Notices()
    creator = Creator(refuse="The preset “gpu” uses a fixed password, but none is stored.")
    flow = LaunchFlow(creator, notify=notices, secrets=SecretStore())
    assert await flow.launch(FIXED) is None
    assert notices.sent == [
        (
            "error",
            "Session not started",
            "The preset “gpu” uses a fixed password, but none is stored.",
        )
    ]


async def test_a_workspace_preset_shows_what_it_sends_before_its_first_launch() -> None:
    class Ask:
        def __init__(self, *answers: int | None) -> None:
            self.answers, self.asked = list(answers), list[Question]()

        async def ask(self, question: Question) -> int | None:
            self.asked.append(question)
            return self.answers.pop(0)

        async def ask_text(self, title: str, prompt: str) -> str | None:
            return None

        def cancel_all(self) -> None:
            pass

    preset = Preset(name="repo", queue="q", upload_files="~/.ssh")
    creator = Creator()
    ask = Ask(1, 0)  # "Cancel", then "Launch"
    flow = LaunchFlow(
        creator, notify=Notices(), secrets=SecretStore(), ask=ask, foreign=lambda p: True
    )
    assert await flow.launch(preset) is None and creator.created == []
    assert "~/.ssh" in ask.asked[0].text and ask.asked[0].choices == ("Launch", "Cancel")
    assert await flow.launch(preset) == "launch-1"
    assert await flow.launch(preset) == "launch-2"  # shown once per run: not asked again
    assert len(ask.asked) == 2


async def test_a_launch_remembers_its_queue_in_the_settings_file() -> None:
    from tray_app.core.settings.presets_flow import PresetsFlow
    from tray_app.core.settings.settings import Settings, load_settings, save_settings
    from tray_app.core.settings.store import SettingsStore

    saved = Preset(name="cpu", queue="default")
    save_settings(Settings(), [saved])
    store = SettingsStore()
    await store.load()
    presets = PresetsFlow(notify=Notices(), store=store)
    flow = LaunchFlow(
        Creator(), notify=Notices(), secrets=SecretStore(), remember_queue=presets.remember_queue
    )
    assert await flow.launch(Preset(name="New session", queue="gpu-a100")) == "launch-1"
    loaded = load_settings()
    assert store.settings.last_queue == "gpu-a100" and loaded.settings.last_queue == "gpu-a100"
    assert loaded.presets == [saved]  # written with the presets, nothing lost


async def test_a_launch_that_did_not_start_leaves_the_last_queue_alone() -> None:
    remembered: list[str] = []

    async def remember(queue: str) -> None:
        remembered.append(queue)

    flow = LaunchFlow(
        Creator(refuse="clearml-session is not installed."),
        notify=Notices(),
        secrets=SecretStore(),
        remember_queue=remember,
    )
    assert await flow.launch(Preset(name="p", queue="gpu-a100")) is None
    assert remembered == []


async def test_the_include_line_is_asked_for_at_the_click_and_the_launch_goes_on_either_way(
    tmp_path: object,
) -> None:
    asked: list[str] = []
    agains: list[object] = []

    async def include(purpose: str, again: object) -> bool:
        asked.append(purpose)
        agains.append(again)
        return False  # Cancel

    creator = Creator()
    spawned: list[object] = []
    flow = LaunchFlow(
        creator,
        notify=Notices(),
        secrets=SecretStore(),
        include=include,
        wants_editor=lambda: True,
        spawn=spawned.append,  # type: ignore[arg-type]
    )
    assert await flow.launch(Preset(name="gpu box", queue="q")) == "launch-1"
    # Started without waiting for the answer; the question is up at the same time.
    assert creator.created == [("gpu box", None)]
    (question,) = spawned
    await question  # type: ignore[misc]
    assert asked == ["Starting “gpu box” and opening it in VS Code"]
    again = agains[0]
    assert callable(again)
    again()  # the notice's Connect button asks once more
    assert len(spawned) == 2
    spawned[1].close()  # type: ignore[attr-defined]
    # Without "open the editor when ready", a launch needs no Include line yet.
    quiet = LaunchFlow(creator, notify=Notices(), secrets=SecretStore(), include=include)
    await quiet.launch(Preset(name="cpu", queue="q"))
    assert len(asked) == 1


async def test_a_queue_no_worker_serves_is_asked_about_before_the_launch(
    emulator_factory: Any,
) -> None:
    from tray_app.core.server.api import ClearMLClient
    from tray_app.core.server.config import ServerConfig
    from tray_app.core.server.sessions import SessionService

    emu = emulator_factory(sessions=2)
    config = ServerConfig(emu.url, emu.url, emu.url, emu.access_key, emu.secret_key)
    service = SessionService(ClearMLClient(config), web_server=emu.url)

    class Ask:
        def __init__(self, *answers: int | None) -> None:
            self.answers, self.asked = list(answers), list[Question]()

        async def ask(self, question: Question) -> int | None:
            self.asked.append(question)
            return self.answers.pop(0)

        async def ask_text(self, title: str, prompt: str) -> str | None:
            return None

        def cancel_all(self) -> None:
            pass

    creator, ask = Creator(), Ask(1, 0)  # Cancel, then "Launch anyway"
    flow = LaunchFlow(
        creator, notify=Notices(), secrets=SecretStore(), ask=ask, server=lambda: service
    )
    # The demo's "default" queue: no worker serves it (its agent claims only its own).
    assert await flow.launch(Preset(name="cpu", queue="default")) is None
    (question,) = ask.asked
    assert question.title == "No worker serves “default”"
    assert "the session will wait" in question.text and question.default == 1
    assert creator.created == []
    assert await flow.launch(Preset(name="cpu", queue="default")) == "launch-1"
    # A served queue is not asked about.
    assert await flow.launch(Preset(name="cpu", queue="sessions")) == "launch-2"
    assert len(ask.asked) == 2
    await service.client.aclose()


class _Backend(keyring.backend.KeyringBackend):
    """A system keyring as the user's may be: locked (it says so), or waiting (its unlock
    prompt is open and nobody answers)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, behaviour: str) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        if self.behaviour == "locked":
            raise keyring.errors.KeyringLocked("Failed to unlock the collection!")
        self.release.wait(30)
        return "too late"

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("read-only here")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError("read-only here")


@pytest.mark.parametrize("behaviour", ["locked", "waiting for its unlock prompt"])
async def test_a_fixed_password_that_cannot_be_read_says_so_and_nothing_starts(
    behaviour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch_mod, "KEYRING_WAIT_S", 0.3)
    backend = _Backend(behaviour)
    secrets = SecretStore(backend, data_dir=tmp_path)
    secrets._write_index({FIXED.password_keyring_key(): _Location(KEYRING, "x")})  # it is there
    creator, notices = Creator(), Notices()
    flow = LaunchFlow(creator, notify=notices, secrets=secrets)
    try:
        assert await flow.launch(FIXED) is None
    finally:
        backend.release.set()
    assert creator.created == []
    ((kind, title, text),) = notices.sent
    assert (kind, title) == ("error", "Session not started")
    assert text.startswith(
        "The preset “gpu” uses a fixed password, which could not be read from the keyring: "
    )
    reason = "the keyring is locked" if behaviour == "locked" else "did not answer within"
    assert reason in text and text.endswith("Unlock your keyring and try again.")
