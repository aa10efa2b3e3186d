"""One child's output: parsed events, redacted text, a capped log, last lines, quiet prompts."""

from __future__ import annotations

from pathlib import Path

from tray_app.core.tunnels.output import ChildOutput
from tray_app.core.tunnels.parser import Prompt, Ready, SessionEvent, TaskCreated

READY = (
    "Interactive session is running:\n"
    "SSH: ssh root@localhost -p 8022 [password: Out-Pass-0123]\n"
    "\n"
    "Connection is up and running\n"
)


class Sink:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.events: list[SessionEvent] = []


def _output(
    tmp_path: Path, clock: list[float], limit: int | None = None
) -> tuple[ChildOutput, Sink]:
    sink = Sink()
    out = ChildOutput(
        "launch-1",
        tmp_path / "logs" / "child.log",
        on_text=sink.text.append,
        on_events=sink.events.extend,
        clock=lambda: clock[0],
        log_limit=limit,
    )
    return out, sink


def test_output_split_anywhere_is_parsed_and_the_password_never_shown(tmp_path: Path) -> None:
    out, sink = _output(tmp_path, [0.0])
    out.begin("clearml-session --attach abc")
    data = ("New session created [id=0123456789abcdef0123456789abcdef]\n" + READY).encode()
    for i in range(0, len(data), 7):  # as a pipe delivers it: in pieces, mid-character too
        out.received(data[i : i + 7])
    out.finished(0)
    kinds = [type(e) for e in sink.events]
    assert TaskCreated in kinds and Ready in kinds
    (ready,) = [e for e in sink.events if isinstance(e, Ready)]
    assert ready.password == "Out-Pass-0123" and ready.port == 8022
    shown = "".join(sink.text)
    log = out.text()
    assert "Out-Pass-0123" not in shown and "Out-Pass-0123" not in log
    assert log.startswith("$ clearml-session --attach abc\n") and log.endswith("[exit 0]\n")
    assert out.last_lines[-1] == "Connection is up and running"


def test_a_multibyte_character_split_between_reads_is_kept_whole(tmp_path: Path) -> None:
    out, sink = _output(tmp_path, [0.0])
    data = "Status [queued] — wartet\n".encode()
    cut = data.index("—".encode()) + 1
    out.received(data[:cut])
    out.received(data[cut:])
    assert "—" in "".join(sink.text) and "\ufffd" not in "".join(sink.text)


def test_an_unknown_question_is_handed_on_once_after_a_quiet_moment(tmp_path: Path) -> None:
    clock = [100.0]
    out, sink = _output(tmp_path, clock)
    out.received(b"Overwrite the folder [y/N]? ")
    out.tick()
    assert not any(isinstance(e, Prompt) for e in sink.events)
    clock[0] += 2.0
    out.tick()
    out.tick()
    prompts = [e for e in sink.events if isinstance(e, Prompt)]
    assert [p.question for p in prompts] == ["Overwrite the folder [y/N]?"]
    assert "Overwrite the folder [y/N]? " in "".join(sink.text)  # shown though it has no newline


def test_a_child_that_never_started_says_why_in_its_log_and_last_lines(tmp_path: Path) -> None:
    out, _ = _output(tmp_path, [0.0])
    out.failed_to_start("could not start /opt/bin/clearml-session: No such file or directory")
    out.finished(-1)
    assert "could not start" in out.last_lines[-1]
    assert "No such file or directory" in out.text() and "[exit -1]" in out.text()


def test_the_log_stops_at_its_limit_but_the_child_is_still_read(tmp_path: Path) -> None:
    out, sink = _output(tmp_path, [0.0], limit=10_000)
    for _ in range(100):
        out.received(b"x" * 199 + b"\n")
    out.received(b"the end\n")
    out.close()
    text = out.log_path.read_text()
    assert len(text) < 10_000 + 100 and "[the log stops here" in text
    assert out.last_lines[-1] == "the end" and "the end" in "".join(sink.text)


def test_closing_with_remove_leaves_no_log(tmp_path: Path) -> None:
    out, _ = _output(tmp_path, [0.0])
    out.received(b"hello\n")
    out.close(remove=True)
    assert not out.log_path.exists()
