"""The clearml-session output parser over real and composed transcripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tray_app.core.tunnels.parser import (
    Error,
    Prompt,
    Ready,
    SessionEvent,
    SessionLogParser,
    parse_transcript,
)

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
TRANSCRIPTS = sorted(p.name for p in HERE.glob("*.txt"))


def load(name: str) -> str:
    return (HERE / name).read_bytes().decode("utf-8")


def kinds(events: list[SessionEvent]) -> list[str]:
    return [e.kind for e in events]


def first(events: list[SessionEvent], kind: str) -> SessionEvent:
    return next(e for e in events if e.kind == kind)


def test_real_launch_reaches_the_tunnel_and_retries() -> None:
    events = parse_transcript(load("real_launch_retry.txt"))
    sequence = [k for k in kinds(events) if k not in ("setup_progress", "status")]
    # "Use previous queue (resource) … [Y]/n?" and "Launch interactive session [Y]/n?"
    assert sequence[:3] == ["prompt", "prompt", "task_created"]
    assert sequence[3:] == [
        "allocated",
        "machine_ready",
        "tunnel_starting",
        "tunnel_retry",
        "tunnel_starting",
        "tunnel_retry",
        "exit",
    ]
    tunnel = first(events, "tunnel_starting")
    assert (tunnel.user, tunnel.port) == ("root", 10022)  # type: ignore[attr-defined]
    assert tunnel.host.startswith("127.")  # type: ignore[attr-defined]
    statuses = [e.status for e in events if e.kind == "status"]  # type: ignore[attr-defined]
    assert statuses == ["queued", "in_progress"]
    retries = [e.attempt for e in events if e.kind == "tunnel_retry"]  # type: ignore[attr-defined]
    assert retries == [1, 2]


def test_real_prompts_of_a_new_session_next_to_running_ones() -> None:
    events = parse_transcript(load("real_launch_prompts_retry.txt"))
    prompts = [e for e in events if isinstance(e, Prompt)]
    assert [p.prompt for p in prompts] == ["select_session", "use_previous_queue", "launch"]
    assert prompts[0].question == "Connect to session [0-2] or 'N' to skip:"
    assert prompts[0].default is None
    assert prompts[1].question == "Use previous queue (resource) 'sessions' [Y]/n?"
    assert prompts[2].default == "Y"
    created = first(events, "task_created")
    assert len(created.task_id) == 32  # type: ignore[attr-defined]


def test_real_attach() -> None:
    events = parse_transcript(load("real_attach_retry.txt"))
    attached = first(events, "task_attached")
    assert attached.task_id == "6074a10f5fd1b91624e5944018c5aff5"  # type: ignore[attr-defined]
    assert "prompt" not in kinds(events) and "task_created" not in kinds(events)
    assert kinds(events).count("tunnel_retry") == 2


def test_real_errors() -> None:
    for name, code, words in (
        ("real_auth_error.txt", "auth_failed", "Failed getting token (error 401"),
        ("real_bad_queue.txt", "no_such_queue", 'Could not find queue named "no-such-queue"'),
        ("real_missing_config.txt", "missing_config", "not configured on this machine"),
    ):
        error = first(parse_transcript(load(name), exit_code=1), "error")
        assert isinstance(error, Error)
        assert error.error == code, name
        assert words in error.message, name


def test_real_setup_failure_carries_the_remote_reason() -> None:
    events = parse_transcript(load("real_setup_failed.txt"), exit_code=1)
    error = first(events, "error")
    assert isinstance(error, Error) and error.error == "setup_failed"
    assert "status=failed" in error.message
    assert "failed starting the interactive session" in error.reason
    assert events[-1].kind == "exit" and events[-1].code == 1  # type: ignore[attr-defined]


def test_success_with_jupyter_and_vscode() -> None:
    events = parse_transcript(load("composed_success_full.txt"))
    ready = first(events, "ready")
    assert isinstance(ready, Ready)
    assert (ready.user, ready.host, ready.port) == ("root", "localhost", 8022)
    assert ready.password == "p4ss]w0rd"  # to the last "]" of the line
    assert (
        ready.jupyter_url == "http://localhost:8878/?token=6b3e1f0a9c&file-browser-path=/root/work"
    )
    assert ready.vscode_url == "http://localhost:8898/?folder=/root/work"
    assert "p4ss" not in repr(ready) and "6b3e1f0a9c" not in repr(ready)
    progress = [e.text for e in events if e.kind == "setup_progress"]  # type: ignore[attr-defined]
    assert progress == [
        "Installing requirements: clearml>=1.1.5 jupyterlab code-server",
        "Starting sshd",
    ]


def test_success_ssh_only() -> None:
    ready = first(parse_transcript(load("composed_success_ssh_only.txt")), "ready")
    assert isinstance(ready, Ready)
    assert (ready.port, ready.password, ready.jupyter_url, ready.vscode_url) == (
        8023,
        "s3cret!",
        "",
        "",
    )


def test_reconnect_and_retry_counters() -> None:
    events = parse_transcript(load("composed_reconnect.txt"))
    assert [k for k in kinds(events) if k in ("ready", "reconnect")] == [
        "ready",
        "reconnect",
        "ready",
    ]
    events = parse_transcript(load("composed_retry_then_ready.txt"))
    relevant = [k for k in kinds(events) if k in ("tunnel_retry", "ready")]
    assert relevant == ["tunnel_retry", "tunnel_retry", "ready"]


def test_shutdown_incorrect_password_traceback() -> None:
    assert "shutdown" in kinds(parse_transcript(load("composed_shutdown.txt")))
    errors = [
        e for e in parse_transcript(load("composed_incorrect_password.txt")) if e.kind == "error"
    ]
    assert [e.error for e in errors] == ["incorrect_password"]  # type: ignore[attr-defined]
    error = first(parse_transcript(load("composed_traceback.txt")), "error")
    assert isinstance(error, Error) and error.error == "traceback"
    assert error.message.startswith("HTTPConnectionPool(host='127.0.0.1', port=8008)")
    assert "get_user_inputs" in error.reason


def test_prompt_is_reported_while_the_cli_waits() -> None:
    parser = SessionLogParser()
    assert (
        parser.feed("Verifying credentials\nLaunch interactive sess")
        == [first(parse_transcript("Verifying credentials\n"), "exit")][:0]
    )
    events = parser.feed("ion [Y]/n? ")
    assert [(e.kind, e.prompt) for e in events] == [("prompt", "launch")]  # type: ignore[attr-defined]
    # the answer is not echoed: the CLI's next output continues the same line
    after = parser.feed("Creating new session\nNew session created [id=abc123]\n")
    assert kinds(after) == ["task_created"]


def test_unknown_question_is_offered_not_answered() -> None:
    parser = SessionLogParser()
    assert parser.feed("Enter the remote user name: ") == []
    question = parser.pending_question()
    assert question is not None and question.prompt == "unknown"
    assert question.question == "Enter the remote user name:"
    parser.feed("root\n")
    assert parser.pending_question() is None


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_same_events(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(TRANSCRIPTS))
    text = load(name)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=40)))
    parser = SessionLogParser()
    events: list[SessionEvent] = []
    start = 0
    for cut in [*cuts, len(text)]:
        events += parser.feed(text[start:cut])
        start = cut
    events += parser.close()
    assert events == parse_transcript(text)


def test_real_ready_with_jupyter_and_vscode() -> None:
    """Recorded against the demo's SSH endpoint: the tunnel really came up."""
    events = parse_transcript(load("real_ready_full.txt"))
    ready = first(events, "ready")
    assert isinstance(ready, Ready)
    assert (ready.user, ready.host, ready.port) == ("root", "localhost", 8022)
    assert len(ready.password) == 64  # clearml-session's random session password
    assert ready.jupyter_url.startswith("http://localhost:8878/?token=")
    assert ready.vscode_url.startswith("http://localhost:")
    assert kinds(events).index("tunnel_starting") < kinds(events).index("ready")
    assert "tunnel_retry" not in kinds(events) and "error" not in kinds(events)


def test_real_ready_ssh_only() -> None:
    ready = first(parse_transcript(load("real_ready_ssh_only.txt")), "ready")
    assert isinstance(ready, Ready)
    assert ready.port == 8022 and (ready.jupyter_url, ready.vscode_url) == ("", "")


def test_real_reconnect_then_shutdown() -> None:
    events = parse_transcript(load("real_reconnect_shutdown.txt"), exit_code=0)
    relevant = [k for k in kinds(events) if k in ("ready", "reconnect", "shutdown", "exit")]
    assert relevant == ["ready", "reconnect", "ready", "shutdown", "exit"]


def test_a_multi_megabyte_line_is_truncated_and_scanned_once(monkeypatch) -> None:
    from tray_app.core.tunnels import parser as session_log

    scanned = [0]
    real = session_log._prompt_for

    def counting(text: str) -> Any:
        scanned[0] += len(text)
        return real(text)

    monkeypatch.setattr(session_log, "_prompt_for", counting)
    parser = SessionLogParser()
    seen: list[Any] = []
    chunk = "x" * 4095 + " "  # ends with a space, like a question would
    held = []
    for _ in range(1024):  # 4 MB on one line
        seen += parser.feed(chunk)
        held.append(parser.buffered)
    assert max(held) == session_log.MAX_LINE  # never more than one bounded line held
    # Prompts are looked for only while the line is short: a few KB in all, not 1024 × 4 MB / 2.
    assert scanned[0] <= 2 * session_log.MAX_PROMPT
    seen += parser.feed("\nStatus [in_progress] - queued\n")
    assert parser.buffered == 0
    assert any(e.kind == "status" for e in seen)


def test_chunks_of_one_character_hold_a_bounded_line() -> None:
    from tray_app.core.tunnels import parser as session_log

    parser = SessionLogParser()
    for _ in range(session_log.MAX_LINE + 5000):
        parser.feed("y")
    assert parser.buffered == session_log.MAX_LINE
    parser.feed("\r\n")
    assert parser.buffered == 0


def test_stream_redactor_releases_an_endless_line_in_bounded_pieces() -> None:
    from tray_app.core.redact import StreamRedactor

    redactor = StreamRedactor()
    out = []
    for _ in range(512):  # 2 MB without a line end
        out.append(redactor.feed("z" * 4096))
        assert len(redactor._tail) <= 64 * 1024 + 4096
    assert sum(len(o) for o in out) + len(redactor.flush()) == 512 * 4096
