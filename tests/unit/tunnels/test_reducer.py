"""The launcher's reaction to clearml-session output: every transcript through the reducer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.parser import (
    Prompt,
    SessionEvent,
    TunnelRetry,
    TunnelStarting,
    parse_transcript,
)
from tray_app.core.tunnels.reducer import (
    AskUser,
    Effect,
    LaunchPolicy,
    LoginAhead,
    Notice,
    OpenEditor,
    Terminate,
    TunnelModel,
    TunnelUp,
    WriteStdin,
    finished,
    react,
    replay,
)

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"


def short(effect: Effect) -> str:
    if isinstance(effect, Notice):
        return f"notice:{effect.kind}"
    if isinstance(effect, WriteStdin):
        return f"write:{effect.text.strip()}"
    if isinstance(effect, AskUser):
        return "ask"
    if isinstance(effect, LoginAhead):
        return "login"
    return {TunnelUp: "up", OpenEditor: "editor", Terminate: "terminate"}[type(effect)]


def start(creating: bool) -> TunnelModel:
    state = TunnelState.LAUNCHING if creating else TunnelState.CONNECTING
    return TunnelModel(TunnelInfo("k", None if creating else "abc", state, label="gpu box"))


# The first tunnel asks for its password to be handed to the CLI's ssh (once).
READY = ["write:y", "write:y", "login", "up", "notice:session_ready", "editor"]
UP = ["login", "up", "notice:session_ready", "editor"]
# transcript → (final state, times the tunnel came up, the effects in order)
TABLE: dict[str, tuple[TunnelState, int, list[str]]] = {
    "composed_incorrect_password.txt": (
        TunnelState.FAILED,
        0,
        ["login", "notice:session_failed"],
    ),
    "composed_reconnect.txt": (
        TunnelState.READY,
        2,
        [*UP, "up"],  # no second hand-over, notice, or window
    ),
    "composed_retry_then_ready.txt": (TunnelState.READY, 1, UP),
    "composed_shutdown.txt": (TunnelState.READY, 1, UP),
    "composed_success_full.txt": (TunnelState.READY, 1, UP),
    "composed_success_ssh_only.txt": (TunnelState.READY, 1, UP),
    "composed_traceback.txt": (TunnelState.FAILED, 0, ["notice:session_failed"]),
    # An attach hands the password over too, for the login its CLI names.
    "real_attach_retry.txt": (TunnelState.RETRYING, 0, ["login"]),
    "real_auth_error.txt": (TunnelState.FAILED, 0, ["notice:session_failed"]),
    "real_bad_queue.txt": (TunnelState.FAILED, 0, ["notice:session_failed"]),
    "real_launch_prompts_retry.txt": (
        TunnelState.RETRYING,
        0,
        ["write:N", "write:y", "write:y", "login"],
    ),
    "real_launch_retry.txt": (TunnelState.RETRYING, 0, ["write:y", "write:y", "login"]),
    "real_missing_config.txt": (TunnelState.FAILED, 0, ["notice:session_failed"]),
    "real_ready_full.txt": (TunnelState.READY, 1, READY),
    "real_ready_ssh_only.txt": (TunnelState.READY, 1, READY),
    "real_reconnect_shutdown.txt": (TunnelState.READY, 2, [*READY, "up"]),
    "real_setup_failed.txt": (TunnelState.FAILED, 0, ["notice:session_failed"]),
}


def test_the_table_covers_every_transcript() -> None:
    assert sorted(TABLE) == sorted(p.name for p in HERE.glob("*.txt"))


@pytest.mark.parametrize("name", sorted(TABLE))
def test_transcript_drives_the_tunnel(name: str) -> None:
    creating = "attach" not in name
    events = parse_transcript((HERE / name).read_text(encoding="utf-8"))
    policy = LaunchPolicy(retry_limit=3, creating=creating, queue="sessions")
    tunnel, effects = replay(start(creating), events, policy)
    state, ups, expected = TABLE[name]
    assert (tunnel.info.state, tunnel.ready_count) == (state, ups)
    assert [short(e) for e in effects] == expected
    if state is TunnelState.READY:
        sid = tunnel.info.session_id
        assert sid and tunnel.info.ssh_host_alias == f"clearml-{sid[:8]}"
        assert tunnel.info.local_ssh_port and tunnel.info.generation == ups
        assert all(e.password for e in effects if isinstance(e, TunnelUp))
        (ready,) = [e for e in effects if isinstance(e, Notice)]
        assert ready.body == f"gpu box ({sid[:8]}) is connected."
        assert all(e.password not in ready.body for e in effects if isinstance(e, TunnelUp))


def test_the_retry_limit_stops_a_tunnel_that_never_came_up() -> None:
    events = parse_transcript((HERE / "real_launch_retry.txt").read_text(encoding="utf-8"))
    policy = LaunchPolicy(retry_limit=2, creating=True, queue="sessions")
    tunnel, effects = replay(start(True), events, policy)
    assert tunnel.info.state is TunnelState.FAILED and tunnel.stopping
    assert [short(e) for e in effects][-2:] == ["notice:tunnel_problems", "terminate"]
    assert finished(tunnel, -1) == (
        TunnelModel(tunnel.info, tunnel.retries, True, True, 0, login_asked=True),
        [],
    )  # the kill that follows is ours: no second notice


def test_a_tunnel_that_worked_keeps_retrying_and_leaves_the_telling_to_the_watch() -> None:
    """The outage is the tunnel watch's to report (once, when it lasts; watch.py): a notice
    here too would be a second word for the same outage."""
    events = parse_transcript((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    policy = LaunchPolicy(retry_limit=2, creating=True)
    tunnel, _ = replay(start(True), events, policy)
    retries: list[SessionEvent] = [TunnelRetry("tunnel_retry", attempt=n) for n in range(1, 6)]
    tunnel, effects = replay(tunnel, retries, policy)
    assert tunnel.info.state is TunnelState.RETRYING and not tunnel.stopping
    assert effects == []


def test_a_question_we_do_not_know_goes_to_the_user() -> None:
    question = "Overwrite the local workspace folder [y/N]? "
    prompt = Prompt("prompt", question, prompt="unknown", question=question)
    tunnel, effects = react(start(True), prompt, LaunchPolicy(creating=True))
    assert effects == [AskUser(question)] and tunnel == start(True)


def test_the_previous_queue_is_confirmed_only_when_it_is_the_presets() -> None:
    def ask(queue: str) -> list[Effect]:
        question = f"Use previous queue (resource) '{queue}' [Y]/n? "
        event = Prompt("prompt", question, prompt="use_previous_queue", question=question)
        return react(start(True), event, LaunchPolicy(creating=True, queue="gpu"))[1]

    assert ask("gpu") == [WriteStdin("y\n")]
    assert ask("cpu") == [AskUser("Use previous queue (resource) 'cpu' [Y]/n? ")]


def test_an_exit_nobody_asked_for_is_a_failure_with_the_last_lines() -> None:
    tunnel, effects = finished(start(False), 1)
    assert tunnel.info.state is TunnelState.FAILED
    (notice,) = effects
    assert isinstance(notice, Notice) and notice.last_lines and notice.critical
    assert finished(start(False), 0)[0].info.state is TunnelState.CLOSED


@pytest.mark.parametrize("name", ["composed_success_full.txt", "real_auth_error.txt"])
def test_a_prewarmed_attach_learns_the_password_but_never_speaks(name: str) -> None:
    events = parse_transcript((HERE / name).read_text(encoding="utf-8"))
    loud, loud_effects = replay(start(False), events, LaunchPolicy())
    quiet, effects = replay(start(False), events, LaunchPolicy(quiet=True))
    assert quiet == loud  # the same tunnel state...
    # ...with only the silent effects: the password for a later login, no notice, no editor.
    assert [short(e) for e in effects] == [
        short(e) for e in loud_effects if not isinstance(e, Notice | OpenEditor)
    ]
    assert finished(quiet, 1, LaunchPolicy(quiet=True))[1] == []


def test_a_prewarmed_attach_meeting_a_question_ends_instead_of_asking() -> None:
    question = "Overwrite the local workspace folder [y/N]? "
    prompt = Prompt("prompt", question, prompt="unknown", question=question)
    assert react(start(False), prompt, LaunchPolicy(quiet=True))[1] == [Terminate()]


def test_the_hand_over_names_the_login_the_cli_is_about_to_make() -> None:
    events = parse_transcript((HERE / "real_attach_retry.txt").read_text(encoding="utf-8"))
    _, effects = replay(start(False), events, LaunchPolicy(retry_limit=9, creating=False))
    (login,) = [e for e in effects if isinstance(e, LoginAhead)]
    starting = next(e for e in events if isinstance(e, TunnelStarting))
    assert (login.user, login.host, login.port) == (starting.user, starting.host, starting.port)
    assert login.host and login.port > 0
