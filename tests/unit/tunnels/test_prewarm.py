"""Tunnels opened ahead of Connect: which start, which end, and that an unused one goes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace

from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.prewarm import (
    INTENT_TTL_S,
    MAX_INTENTS,
    MAX_POINTED_STARTS,
    POINT_SETTLE_S,
    POINTED_WINDOW_S,
    WARM_RETRY_S,
    PrewarmFlow,
    WarmCaps,
    plan,
    settled_intents,
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
    assert todo.start == (A,)  # one at a time
    up = {"attach-a": tunnel(A)}
    then = plan(now=1, connectable=[A, B], intents={}, started={A: 0}, tunnels=up, warm_all=True)
    assert then.start == (B,)
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
    def __init__(self, memory_mb: float = 0.0) -> None:
        self.infos: dict[str, TunnelInfo] = {}
        self.calls: list[tuple[str, str]] = []
        self.memory_mb = memory_mb  # what each live prewarmed tunnel uses
        self.slow = False

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return self.infos

    def attach(self, session_id: str, label: str = "", *, prewarm: bool = False) -> str:
        assert prewarm
        key = f"attach-{session_id}"
        self.calls.append(("attach", label))
        # Up at once, unless the test holds it coming up.
        state = TunnelState.CONNECTING if self.slow else TunnelState.READY
        self.infos[key] = TunnelInfo(key, session_id, state, label, prewarmed=True)
        return key

    def retire(self, key: str) -> None:
        self.calls.append(("retire", key))
        self.infos[key] = replace(self.infos[key], state=TunnelState.CLOSED)

    def prewarmed_memory_mb(self) -> dict[str, float]:
        return {k: self.memory_mb for k, t in self.infos.items() if t.prewarmed and t.live}

    def running(self) -> list[str]:
        return [k for k, t in self.infos.items() if t.live]


class Later:
    """`call_later` on a hand-moved clock."""

    def __init__(self, now: list[float]) -> None:
        self.now = now
        self.due: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.due.append((self.now[0] + delay, callback))

    def advance(self, seconds: float) -> None:
        end = self.now[0] + seconds
        while True:
            ready = sorted((at, n) for n, (at, _) in enumerate(self.due) if at <= end)
            if not ready:
                break
            at, n = ready[0]
            self.now[0] = max(self.now[0], at)
            _, callback = self.due.pop(n)
            callback()
        self.now[0] = end


def make_flow(
    launcher: FakeLauncher,
    sessions: list[tuple[str, str]],
    settings: Settings,
    now: list[float],
    later: Later | None = None,
) -> PrewarmFlow:
    return PrewarmFlow(
        launcher,
        attach=lambda sid, label: launcher.attach(sid, label, prewarm=True),
        sessions=lambda: sessions,
        settings=lambda: settings,
        clock=lambda: now[0],
        later=later or (lambda delay, callback: None),
    )


def test_the_flow_starts_on_pointing_and_retires_after_the_time_limit() -> None:
    now = [100.0]
    launcher = FakeLauncher()
    later = Later(now)
    settings = Settings()
    flow = make_flow(launcher, [(A, "Interactive Session"), (B, "train")], settings, now, later)
    flow.intent(B)
    assert launcher.calls == []  # not before the user rests on it
    later.advance(POINT_SETTLE_S * 2)
    assert launcher.calls == [("attach", "train")]
    flow.intent(B)  # the submenu opened again: no second clearml-session
    later.advance(POINT_SETTLE_S * 2)
    assert launcher.calls == [("attach", "train")]
    now[0] += INTENT_TTL_S + 1
    flow.apply()  # the periodic check
    assert launcher.calls[-1] == ("retire", f"attach-{B}")
    settings.tunnel_on_intent = False  # the setting off: pointing starts nothing
    flow.intent(A)
    later.advance(POINT_SETTLE_S * 2)
    assert launcher.calls[-1] == ("retire", f"attach-{B}")


SESSIONS = [(f"{n:032x}", f"session {n}") for n in range(20)]


def test_walking_through_the_submenus_starts_nothing_until_the_user_stops() -> None:
    """Keyboard-walking the submenus for 12 s started 74 silent CLIs."""
    now = [0.0]
    launcher, later = FakeLauncher(), Later(now)
    flow = make_flow(launcher, SESSIONS, Settings(), now, later)
    for step in range(74):  # a submenu every ~160 ms
        flow.intent(SESSIONS[step % len(SESSIONS)][0])
        later.advance(0.16)
    assert launcher.calls == []
    later.advance(1.0)  # stopped on the last one
    assert launcher.calls == [("attach", SESSIONS[73 % len(SESSIONS)][1])]


def test_pointed_tunnels_are_rate_limited() -> None:
    """Resting on one session after another: a few start, then the window must move on."""
    now = [0.0]
    launcher, later = FakeLauncher(), Later(now)
    flow = make_flow(launcher, SESSIONS, Settings(), now, later)
    for sid, _ in SESSIONS[:12]:  # 12 sessions in 12 s, each rested on for a second
        flow.intent(sid)
        later.advance(1.0)
    attaches = [c for c in launcher.calls if c[0] == "attach"]
    assert len(attaches) == MAX_POINTED_STARTS
    assert len(launcher.running()) <= MAX_INTENTS
    later.advance(POINTED_WINDOW_S)
    flow.intent(SESSIONS[15][0])
    later.advance(1.0)
    assert launcher.calls[-1] == ("attach", SESSIONS[15][1])


def test_warm_tunnels_are_capped_by_count_newest_sessions_first() -> None:
    """20 own sessions gave 20 CLIs (1.72 GB); now the cap in Settings holds."""
    now = [0.0]
    launcher = FakeLauncher(memory_mb=60.0)
    settings = Settings(warm_tunnels=True, warm_tunnels_max=3, warm_tunnels_max_mb=4000)
    flow = make_flow(launcher, SESSIONS, settings, now)
    for _ in range(10):  # the periodic checks
        flow.apply()
    assert [c[1] for c in launcher.calls] == [name for _, name in SESSIONS[:3]]
    now[0] += WARM_RETRY_S * 3
    flow.apply()
    assert len(launcher.running()) == 3


async def test_warm_tunnels_are_capped_by_the_memory_they_use() -> None:
    now = [0.0]
    launcher = FakeLauncher(memory_mb=180.0)  # heavier than expected: measured from /proc
    settings = Settings(warm_tunnels=True, warm_tunnels_max=10, warm_tunnels_max_mb=400)
    flow = make_flow(launcher, SESSIONS, settings, now)
    for _ in range(10):  # not measured yet: about 95 MB each is expected
        flow.apply()
    assert len(launcher.running()) == 4
    flow._memory = await asyncio.to_thread(launcher.prewarmed_memory_mb)  # the periodic check
    flow.apply()
    assert len(launcher.running()) == 2  # 2 × 180 MB fit under 400 MB
    assert {c for c in launcher.calls if c[0] == "retire"} == {
        ("retire", f"attach-{SESSIONS[3][0]}"),
        ("retire", f"attach-{SESSIONS[2][0]}"),
    }  # the oldest sessions' tunnels ended first


def test_a_silent_attach_waits_while_another_tunnel_is_coming_up() -> None:
    """Two clearml-session started together pick the same local ports (8022, 8878…): the
    loser reconnects every few seconds, for ever."""
    coming = {"attach-a": tunnel(A, TunnelState.CONNECTING)}
    todo = plan(now=5, connectable=[A, B], intents={}, started={A: 0}, tunnels=coming,
                warm_all=True)  # fmt: skip
    assert todo.start == ()
    users = {"attach-c": tunnel(C, TunnelState.LAUNCHING, prewarmed=False)}  # a new session
    pointed = plan(now=5, connectable=[A, B], intents={B: 1}, started={}, tunnels=users,
                   warm_all=False)  # fmt: skip
    assert pointed.start == ()
    ready = {"attach-c": tunnel(C, TunnelState.READY, prewarmed=False)}
    assert plan(now=5, connectable=[A, B], intents={B: 1}, started={}, tunnels=ready,
                warm_all=False).start == (B,)  # fmt: skip


def test_a_memory_cap_below_one_tunnel_starts_none() -> None:
    todo = plan(now=0, connectable=[A, B], intents={}, started={}, tunnels={}, warm_all=True,
                caps=WarmCaps(count=5, memory_mb=90))  # fmt: skip
    assert todo.start == ()


def test_settled_pointings_are_the_ones_rested_on() -> None:
    assert settled_intents({A: 0.0, B: 0.1, C: 0.2}, now=0.3) == {}
    assert settled_intents({A: 0.0, B: 0.1, C: 0.2}, now=1.0) == {C: 0.2}
    assert settled_intents({A: 0.0, B: 1.0, C: 1.1}, now=2.0) == {A: 0.0, C: 1.1}
