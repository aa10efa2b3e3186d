"""Launching from a preset: the fixed password comes from the real keyring, failures in words."""

from __future__ import annotations

from support.recorders import Notices

from tray_app.core.flows.launch import LaunchFlow
from tray_app.core.launch_events import LaunchProblem
from tray_app.core.presets import PasswordPolicy, Preset
from tray_app.core.secrets import SecretStore

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
    assert notices.sent[-1][1] == "Starting a session"
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
