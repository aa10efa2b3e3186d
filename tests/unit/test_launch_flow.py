"""Launching from a preset: the fixed password comes from the real keyring, failures in words."""

from __future__ import annotations

from support.recorders import Notices

from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.core.settings.secrets import SecretStore
from tray_app.core.tunnels.launch import LaunchFlow
from tray_app.core.tunnels.reducer import LaunchProblem

FIXED = Preset(name="gpu", queue="q", password_policy=PasswordPolicy.FIXED)


async def test_a_fixed_password_is_read_from_the_keyring_and_handed_to_the_launcher() -> None:
    SecretStore().set(FIXED.password_keyring_key(), "correct horse")
    created: list[tuple[str, str | None]] = []
    started: list[bool] = []
    notices = Notices()

    def create(preset: Preset, password: str | None) -> str:
        created.append((preset.name, password))
        return "launch-1"

    flow = LaunchFlow(create, notify=notices, started=lambda: started.append(True))
    assert await flow.launch(FIXED) == "launch-1"
    assert created == [("gpu", "correct horse")] and started == [True]
    assert notices.sent == []  # "Starting a session" is the launcher's (with its buttons)
    assert all("correct horse" not in body for _k, _t, body in notices.sent)


async def test_a_launch_that_cannot_start_says_why_and_nothing_starts() -> None:
    notices = Notices()

    def create(preset: Preset, password: str | None) -> str:
        assert password is None  # nothing stored for this preset
        raise LaunchProblem("The preset “gpu” uses a fixed password, but none is stored.")

    flow = LaunchFlow(create, notify=notices, started=lambda: None)
    assert await flow.launch(FIXED) is None
    assert notices.sent == [
        (
            "error",
            "Session not started",
            "The preset “gpu” uses a fixed password, but none is stored.",
        )
    ]


async def test_a_workspace_preset_shows_what_it_sends_before_its_first_launch() -> None:
    from tray_app.core.ports import Question

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
    created: list[str] = []
    ask = Ask(1, 0)  # "Cancel", then "Launch"

    def create(p: Preset, password: str | None) -> str:
        created.append(p.name)
        return f"launch-{len(created)}"

    flow = LaunchFlow(
        create, notify=Notices(), started=lambda: None, ask=ask, foreign=lambda p: True
    )
    assert await flow.launch(preset) is None and created == []
    assert "~/.ssh" in ask.asked[0].text and ask.asked[0].choices == ("Launch", "Cancel")
    assert await flow.launch(preset) == "launch-1"
    assert await flow.launch(preset) == "launch-2"  # shown once per run: not asked again
    assert len(ask.asked) == 2


async def test_a_launch_remembers_its_queue_in_the_settings_file() -> None:
    from tray_app.core.settings.presets_flow import PresetsFlow
    from tray_app.core.settings.settings import Settings, load_settings, save_settings

    saved = Preset(name="cpu", queue="default")
    settings = Settings()
    save_settings(settings, [saved])
    presets = PresetsFlow(notify=Notices(), settings=lambda: settings)
    presets.presets = [saved]
    flow = LaunchFlow(
        lambda preset, password: "launch-1",
        notify=Notices(),
        started=lambda: None,
        remember_queue=presets.remember_queue,
    )
    assert await flow.launch(Preset(name="New session", queue="gpu-a100")) == "launch-1"
    loaded = load_settings()
    assert settings.last_queue == "gpu-a100" and loaded.settings.last_queue == "gpu-a100"
    assert loaded.presets == [saved]  # written with the presets, nothing lost


async def test_a_launch_that_did_not_start_leaves_the_last_queue_alone() -> None:
    remembered: list[str] = []

    async def remember(queue: str) -> None:
        remembered.append(queue)

    def create(preset: Preset, password: str | None) -> str:
        raise LaunchProblem("clearml-session is not installed.")

    flow = LaunchFlow(create, notify=Notices(), started=lambda: None, remember_queue=remember)
    assert await flow.launch(Preset(name="p", queue="gpu-a100")) is None
    assert remembered == []
