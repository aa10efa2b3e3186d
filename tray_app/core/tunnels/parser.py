"""`clearml-session` (0.17) output → events: a pure, incremental parser (no Qt, no I/O).

The CLI writes progress with `print`, redraws a progress line with `\\r`, asks questions with
`input()` (no newline after the question) and reports SSH tunnel failures through `logging` on
stderr. `SessionLogParser.feed(chunk)` takes raw output in any chunking and returns the events
completed by it; `close(exit_code)` flushes at the end. `parse_transcript(text)` does both at
once. Feeding a transcript in any chunks gives the same events as parsing it whole.

Linear in the output whatever its shape: each chunk is scanned once, a line keeps at most
`MAX_LINE` characters (the rest of a longer one is dropped; a remote command printing a 16 MB
line costs its bytes, not their square), prompts are only looked for in short unterminated
lines, and a traceback keeps its first line and last `MAX_TRACEBACK_LINES`.

Every message matched here is the CLI's own text (clearml_session/__main__.py). The `ready`
event carries the session password: it is excluded from repr and must never be logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionEvent:
    kind: str
    line: str = field(default="", compare=False)  # the output line it came from (no secrets)


@dataclass(frozen=True, slots=True)
class TaskCreated(SessionEvent):
    task_id: str = ""


@dataclass(frozen=True, slots=True)
class TaskAttached(SessionEvent):
    task_id: str = ""


@dataclass(frozen=True, slots=True)
class StatusChanged(SessionEvent):
    status: str = ""
    previous: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class SetupProgress(SessionEvent):
    text: str = ""  # the remote log line the CLI shows after "> "


@dataclass(frozen=True, slots=True)
class MachineAllocated(SessionEvent):
    """ "Remote machine allocated": a worker took the task."""


@dataclass(frozen=True, slots=True)
class MachineReady(SessionEvent):
    """ "Remote machine is ready": its setup is done; the tunnel comes next."""


@dataclass(frozen=True, slots=True)
class Reconnecting(SessionEvent):
    """The CLI reconnects its tunnel (after "r", or by itself)."""


@dataclass(frozen=True, slots=True)
class ShuttingDown(SessionEvent):
    """The remote session is being shut down."""


@dataclass(frozen=True, slots=True)
class TunnelStarting(SessionEvent):
    user: str = ""
    host: str = ""
    port: int = 0  # the remote SSH port


@dataclass(frozen=True, slots=True)
class TunnelRetry(SessionEvent):
    attempt: int = 0  # consecutive failures since the last successful connection


@dataclass(frozen=True, slots=True)
class Ready(SessionEvent):
    user: str = ""
    host: str = "localhost"
    port: int = 0  # the local port of the tunnel to the session's sshd
    password: str = field(default="", repr=False)
    jupyter_url: str = field(default="", repr=False)  # carries the Jupyter token
    vscode_url: str = ""

    @property
    def local_ssh_port(self) -> int:
        return self.port


@dataclass(frozen=True, slots=True)
class Prompt(SessionEvent):
    prompt: str = ""  # connect_active, select_session, use_previous_queue, select_queue,
    #                   launch, restore_workspace, unknown
    question: str = ""
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Error(SessionEvent):
    error: str = ""  # missing_config, auth_failed, no_such_queue, setup_failed,
    #                  incorrect_password, attach_failed, ssh_client_failed, traceback, other
    message: str = ""
    reason: str = ""  # more detail: the remote log lines before a setup failure, ...


@dataclass(frozen=True, slots=True)
class Exited(SessionEvent):
    code: int | None = None


# --- patterns ---------------------------------------------------------------------------------

_TASK_CREATED = re.compile(r"New session created \[id=(\w+)\]")
_ATTACHED = re.compile(r"^(?:Connecting to|Attaching to) active session (?:id=)?(\w+)$")
_STATUS = re.compile(r"^\.*Status \[(?P<status>[^\]]*)\](?: - (?P<prev>\S+))? ?(?P<msg>.*)$")
_TUNNEL = re.compile(r"Starting SSH tunnel to (?P<user>[^@\s]+)@(?P<host>\S+), port (?P<port>\d+)")
_RETRY = re.compile(r"SSH tunneling failed, retrying in \d+ seconds")
_SSH_LINE = re.compile(
    r"^SSH: ssh (?P<user>\S+)@(?P<host>\S+) -p (?P<port>\d+) \[password: (?P<password>.*)\]$"
)
_JUPYTER = re.compile(r"^Jupyter Lab URL: (?P<url>\S+)")
_VSCODE = re.compile(r"^VSCode server available at (?P<url>\S+)")
_PROMPTS: tuple[tuple[str, re.Pattern[str], str | None], ...] = (
    ("connect_active", re.compile(r"\S.*? active session id=\w+ \[Y\]/n\? "), "Y"),
    ("select_session", re.compile(r"\S.*? session \[[0-9-]+\] or 'N' to skip: "), None),
    ("use_previous_queue", re.compile(r"Use previous queue \(resource\) '.*?' \[Y\]/n\? "), "Y"),
    ("select_queue", re.compile(r"Select a queue \[0-\d+\]: "), None),
    ("launch", re.compile(r"Launch interactive session \[Y\]/n\? "), "Y"),
    ("restore_workspace", re.compile(r"Restore workspace from session id=\w+ .*? \[Y\]/n\? "), "Y"),
)
_ERROR_LINE = re.compile(r"^(?:ERROR|Error): (?P<msg>.+)$")
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit)): ?(?P<msg>.*)$")
_PROGRESS_NOISE = re.compile(r"^[.\s]*$")


def classify_error(message: str) -> str:
    text = message.lower()
    if (
        "clearml configuration not found" in text
        or "clearml-init" in text
        or "not configured on this machine" in text
    ):
        return "missing_config"
    if "remote setup failed" in text:
        return "setup_failed"
    if "incorrect" in text and "password" in text:
        return "incorrect_password"
    if "could not connect to requested session" in text:
        return "attach_failed"
    if "could not find queue" in text or ("queue" in text and "not found" in text):
        return "no_such_queue"
    if "running local ssh client" in text or "could not locate ssh executable" in text:
        return "ssh_client_failed"
    if (
        "401" in text
        or "invalid credentials" in text
        or "unauthorized" in text
        or "failed getting token" in text
    ):
        return "auth_failed"
    return "other"


def _prompt_for(text: str) -> tuple[str, str | None] | None:
    """The known question that is exactly `text` (an unterminated line waiting for input)."""
    for name, pattern, default in _PROMPTS:
        if pattern.fullmatch(text):
            return name, default
    return None


def _prompt_prefix(line: str) -> tuple[str, str | None, str] | None:
    """A known question at the start of a complete line: (name, default, question text)."""
    for name, pattern, default in _PROMPTS:
        match = pattern.match(line)
        if match:
            return name, default, match.group(0)
    return None


# --- parser -----------------------------------------------------------------------------------

MAX_LINE = 64 * 1024  # characters kept of one line; longer lines are truncated
MAX_PROMPT = 4096  # a question of the CLI is one short line
MAX_TRACEBACK_LINES = 200
_LINE_END = re.compile(r"\r\n|[\r\n]")


class SessionLogParser:
    """Incremental: `feed()` raw output as it arrives, `close()` at the end."""

    def __init__(self) -> None:
        # The current, unterminated line, as parts (appending to one string would copy it on
        # every chunk); at most MAX_LINE characters are kept.
        self._parts: list[str] = []
        self._tail_len = 0
        self._cr_pending = False  # the last chunk ended in "\r": a "\n" next is the same end
        self._answered = ""  # a prompt already reported from the unterminated line
        self._ready: dict[str, str] | None = None  # collecting the "is running" block
        self._remote_lines: list[str] = []  # recent "> " lines (reason of a setup failure)
        self._traceback: list[str] | None = None
        self._retries = 0
        self._last_error = ""

    # -- public ----------------------------------------------------------------------------
    @property
    def _tail(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def buffered(self) -> int:
        """Characters held for the unterminated line (at most MAX_LINE)."""
        return self._tail_len

    def _append(self, text: str) -> None:
        room = MAX_LINE - self._tail_len
        if text and room > 0:
            kept = text[:room]
            self._parts.append(kept)
            self._tail_len += len(kept)

    def _take_line(self) -> str:
        line = self._tail
        self._parts, self._tail_len = [], 0
        return line

    # -- public ----------------------------------------------------------------------------
    def feed(self, chunk: str) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        start = 0
        if self._cr_pending and chunk:
            self._cr_pending = False
            if chunk.startswith("\n"):
                start = 1  # the second half of a "\r\n" already taken as a line end
        # "\r\n" is one line end; a lone "\r" ends a redrawn progress line.
        for match in _LINE_END.finditer(chunk, start):
            self._append(chunk[start : match.start()])
            self._line(self._take_line(), events)
            start = match.end()
            if match.group() == "\r" and start == len(chunk):
                self._cr_pending = True  # maybe the first half of "\r\n"
        self._append(chunk[start:])
        if chunk and self._tail_len <= MAX_PROMPT and chunk.endswith(" "):
            self._check_prompt(events)  # every question of the CLI ends with a space
        return events

    def close(self, exit_code: int | None = None) -> list[SessionEvent]:
        events: list[SessionEvent] = []
        self._cr_pending = False
        if self._tail_len:
            self._line(self._take_line(), events)
        self._finish_ready(events)
        self._finish_traceback(events)
        events.append(Exited("exit", code=exit_code))
        return events

    def pending_question(self) -> Prompt | None:
        """The unterminated last line as a question, when output has stopped on it.

        For prompts the parser does not know: output.py calls this when the child has been
        silent for a moment, and the question goes to the user instead of being answered blindly.
        """
        tail = self._tail[len(self._answered) :] if self._answered else self._tail
        tail = tail.rstrip("\r")
        if tail.rstrip().endswith(("?", ":", "]")) and tail.strip():
            known = _prompt_for(tail)
            name, default = known if known else ("unknown", None)
            return Prompt(
                "prompt", tail.strip(), prompt=name, question=tail.strip(), default=default
            )
        return None

    # -- internals -------------------------------------------------------------------------
    def _check_prompt(self, events: list[SessionEvent]) -> None:
        if not self._tail or self._tail == self._answered:
            return
        found = _prompt_for(self._tail)
        if found is None:
            return
        name, default = found
        self._answered = self._tail
        question = self._tail.strip().splitlines()[-1] if self._tail.strip() else ""
        events.append(Prompt("prompt", question, prompt=name, question=question, default=default))

    def _line(self, raw: str, events: list[SessionEvent]) -> None:
        line = raw
        if self._answered:
            # Output after an answered question continues on the question's line.
            if line.startswith(self._answered):
                line = line[len(self._answered) :]
            self._answered = ""
        elif (found := _prompt_prefix(line)) is not None:
            # The question and what followed it arrived together: same event as when the
            # question was seen on its own.
            name, default, question = found
            events.append(
                Prompt(
                    "prompt",
                    question.strip(),
                    prompt=name,
                    question=question.strip(),
                    default=default,
                )
            )
            line = line[len(question) :]
        line = line.rstrip()
        stripped = line.strip()

        if self._traceback is not None:
            if line.startswith((" ", "\t")) or not stripped:
                self._traceback.append(line)
                if len(self._traceback) > MAX_TRACEBACK_LINES:
                    del self._traceback[1:-MAX_TRACEBACK_LINES]
                return
            self._traceback.append(line)
            self._finish_traceback(events)
            return
        if stripped == "Traceback (most recent call last):":
            self._finish_ready(events)
            self._traceback = [line]
            return

        if self._ready is not None:
            if self._ready_line(stripped):
                return
            self._finish_ready(events)

        if not stripped or _PROGRESS_NOISE.match(stripped):
            return
        if stripped.startswith("> "):
            text = stripped[2:]
            self._remote_lines = [*self._remote_lines[-9:], text]
            events.append(SetupProgress("setup_progress", stripped, text=text))
            return
        if stripped.startswith(".") and "Status [" not in stripped:
            stripped = stripped.lstrip(".")
            if not stripped:
                return

        if _RETRY.search(stripped):
            self._retries += 1
            events.append(TunnelRetry("tunnel_retry", stripped, attempt=self._retries))
            return
        if match := _TASK_CREATED.search(stripped):
            events.append(TaskCreated("task_created", stripped, task_id=match.group(1)))
            return
        if match := _ATTACHED.match(stripped):
            events.append(TaskAttached("task_attached", stripped, task_id=match.group(1)))
            return
        if match := _STATUS.match(stripped):
            events.append(
                StatusChanged(
                    "status",
                    stripped,
                    status=match.group("status"),
                    previous=match.group("prev") or "",
                    message=match.group("msg").strip(),
                )
            )
            return
        if stripped == "Remote machine allocated":
            events.append(MachineAllocated("allocated", stripped))
            return
        if stripped == "Remote machine is ready":
            events.append(MachineReady("machine_ready", stripped))
            return
        if match := _TUNNEL.search(stripped):
            events.append(
                TunnelStarting(
                    "tunnel_starting",
                    stripped,
                    user=match.group("user"),
                    host=match.group("host"),
                    port=int(match.group("port")),
                )
            )
            return
        if stripped == "Interactive session is running:":
            self._ready = {}
            return
        if stripped == "Reconnecting to interactive session":
            events.append(Reconnecting("reconnect", stripped))
            return
        if stripped in ("Shutting down interactive session", "Remote session shutdown") or (
            stripped.startswith("Session #") and "shut down" in stripped
        ):
            if stripped != "Remote session shutdown":
                events.append(ShuttingDown("shutdown", stripped))
            return
        if match := _ERROR_LINE.match(stripped):
            self._error(match.group("msg"), stripped, events)
            return

    def _ready_line(self, stripped: str) -> bool:
        assert self._ready is not None
        if match := _SSH_LINE.match(stripped):
            self._ready.update(
                user=match.group("user"),
                host=match.group("host"),
                port=match.group("port"),
                password=match.group("password"),
            )
            return True
        if match := _JUPYTER.match(stripped):
            self._ready["jupyter_url"] = match.group("url")
            return True
        if match := _VSCODE.match(stripped):
            self._ready["vscode_url"] = match.group("url")
            return True
        return False

    def _finish_ready(self, events: list[SessionEvent]) -> None:
        data, self._ready = self._ready, None
        if not data or "port" not in data:
            return
        self._retries = 0
        self._last_error = ""
        events.append(
            Ready(
                "ready",
                "Interactive session is running",
                user=data.get("user", ""),
                host=data.get("host", "localhost"),
                port=int(data["port"]),
                password=data.get("password", ""),
                jupyter_url=data.get("jupyter_url", ""),
                vscode_url=data.get("vscode_url", ""),
            )
        )

    def _finish_traceback(self, events: list[SessionEvent]) -> None:
        lines, self._traceback = self._traceback, None
        if not lines:
            return
        last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
        match = _EXCEPTION_LINE.match(last)
        message = match.group("msg") if match and match.group("msg") else last
        code = classify_error(message)
        events.append(
            Error(
                "error",
                last,
                error=code if code != "other" else "traceback",
                message=message,
                reason="\n".join(lines[-12:]),
            )
        )

    def _error(self, message: str, line: str, events: list[SessionEvent]) -> None:
        code = classify_error(message)
        # "Error: incorrect password" is followed by "Error: Incorrect password": report once.
        if code == self._last_error and code == "incorrect_password":
            return
        self._last_error = code
        reason = "\n".join(self._remote_lines[-10:]) if code == "setup_failed" else ""
        events.append(Error("error", line, error=code, message=message, reason=reason))


def parse_transcript(text: str, exit_code: int | None = None) -> list[SessionEvent]:
    parser = SessionLogParser()
    return [*parser.feed(text), *parser.close(exit_code)]
