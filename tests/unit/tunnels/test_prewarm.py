"""Tunnels opened ahead of Connect: which start, which end, and that an unused one goes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.prewarm import (
    INTENT_TTL_S,
    MAX_INTENTS,
    WARM_RETRY_S,
    PrewarmFlow,
    plan,
)

A, B, C = "a" * 32, "b" * 32, "c" * 32


def tunnel(sid: str, state: TunnelState = TunnelState.READY, prewarmed: bool = True) -> TunnelInfo:
    return TunnelInfo(f"attach-{sid[0]}", sid, state, prewarmed=prewarmed)


def test_pointing_at_a_running_session_starts_its_tunnel_once() -> None:
    todo = plan(now=10, connectable=[A, B], intents={A: 9}, started={}, tunnels={}, warm_all=False)
    assert todo.start == (A,) and todo.end == ()
    # Already tried for this pointing (it failed and went): not again until pointed at again.
    again = plan(
        now=20, connectable=[A], intents={A: 9}, started={A: 9}, tunnels={}, warm_all=False
    )
    assert again.start == ()
    pointed_again = plan(
        now=30, connectable=[A], intents={A: 29}, started={A: 9}, tunnels={}, warm_all=False
    )
    assert pointed_again.start == (A,)


def test_an_unused_tunnel_ends_after_its_time_and_a_taken_one_stays() -> None:
    live = {"attach-a": tunnel(A)}
    kept = plan(now=INTENT_TTL_S - 1, connectable=[A], intents={A: 0}, started={A: 0},
                tunnels=live, warm_all=False)  # fmt: skip
    assert kept == plan(now=0, connectable=[A], intents={A: 0}, started={A: 0}, tunnels=live,
                        warm_all=False)  # fmt: skip
    assert kept.end == () and kept.start == ()
    expired = plan(now=INTENT_TTL_S + 1, connectable=[A], intents={A: 0}, started={A: 0},
                   tunnels=live, warm_all=False)  # fmt: skip
    assert expired.end == ("attach-a",)
    used = {"attach-a": tunnel(A, prewarmed=False)}  # Connect took it over: the user's now
    assert plan(now=1000, connectable=[A], intents={}, started={}, tunnels=used,
                warm_all=False).end == ()  # fmt: skip


def test_only_the_most_recent_pointings_keep_a_tunnel() -> None:
    assert MAX_INTENTS == 2
    live = {f"attach-{s[0]}": tunnel(s) for s in (A, B)}
    todo = plan(now=10, connectable=[A, B, C], intents={A: 1, B: 2, C: 3}, started={A: 1, B: 2},
                tunnels=live, warm_all=False)  # fmt: skip
    assert todo.start == (C,) and todo.end == ("attach-a",)


def test_a_session_that_stopped_running_loses_its_prewarmed_tunnel() -> None:
    live = {"attach-a": tunnel(A, TunnelState.RETRYING)}
    todo = plan(now=1, connectable=[], intents={A: 0}, started={A: 0}, tunnels=live,
                warm_all=True)  # fmt: skip
    assert todo.end == ("attach-a",) and todo.start == ()


def test_warm_tunnels_cover_every_running_session_and_retry_slowly() -> None:
    todo = plan(now=0, connectable=[A, B], intents={}, started={}, tunnels={}, warm_all=True)
    assert todo.start == (A, B)
    failed = plan(now=WARM_RETRY_S - 1, connectable=[A], intents={}, started={A: 0}, tunnels={},
                  warm_all=True)  # fmt: skip
    assert failed.start == ()
    retry = plan(now=WARM_RETRY_S, connectable=[A], intents={}, started={A: 0}, tunnels={},
                 warm_all=True)  # fmt: skip
    assert retry.start == (A,)
    # Switched off: the silent ones end; a tunnel the user asked for is never touched.
    live = {"attach-a": tunnel(A), "attach-b": tunnel(B, prewarmed=False)}
    off = plan(now=1, connectable=[A, B], intents={}, started={A: 0, B: 0}, tunnels=live,
               warm_all=False)  # fmt: skip
    assert off.end == ("attach-a",)


class FakeLauncher:
    def __init__(self) -> None:
        self.infos: dict[str, TunnelInfo] = {}
        self.calls: list[tuple[str, str]] = []

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return self.infos

    def attach(self, session_id: str, label: str = "", *, prewarm: bool = False) -> str:
        assert prewarm
        key = f"attach-{session_id[0]}"
        self.calls.append(("attach", label))
        self.infos[key] = TunnelInfo(key, session_id, TunnelState.CONNECTING, label, prewarmed=True)
        return key

    def retire(self, key: str) -> None:
        self.calls.append(("retire", key))
        self.infos[key] = replace(self.infos[key], state=TunnelState.CLOSED)


def test_the_flow_starts_on_pointing_and_retires_after_the_time_limit() -> None:
    now = [100.0]
    launcher = FakeLauncher()
    sessions = [(A, "Interactive Session"), (B, "train")]
    on_intent = [True]
    flow = PrewarmFlow(
        launcher,
        attach=lambda sid, label: launcher.attach(sid, label, prewarm=True),
        sessions=lambda: sessions,
        on_intent=lambda: on_intent[0],
        warm_all=lambda: False,
        clock=lambda: now[0],
    )
    flow.intent(B)
    assert launcher.calls == [("attach", "train")]
    flow.intent(B)  # the submenu opened again: no second clearml-session
    assert launcher.calls == [("attach", "train")]
    now[0] += INTENT_TTL_S + 1
    flow.apply()  # the periodic check
    assert launcher.calls[-1] == ("retire", "attach-b")
    on_intent[0] = False  # the setting off: pointing starts nothing
    flow.intent(A)
    assert launcher.calls[-1] == ("retire", "attach-b")
