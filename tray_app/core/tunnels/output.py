"""One child's output, Qt-free: decode → parse → redact → log file → last lines → prompts.

The process (a `ChildProcess`) hands over raw bytes; this turns them into parsed events for the
reducer and redacted text for the log file, the live log window and the notices' last lines.
A question the parser does not know is only recognisable by the child going quiet after it, so
`tick()` (about every half second) asks the parser for a pending question once output has
stopped for QUIET_S.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from tray_app.core.redact import StreamRedactor
from tray_app.core.tunnels.parser import Prompt, SessionEvent, SessionLogParser

log = logging.getLogger(__name__)

LAST_LINES = 12
QUIET_S = 1.5
LOG_LIMIT_CHARS = 8_000_000  # per clearml-session log file
PENDING_LINE_LIMIT = 4096


class ChildOutput:
    def __init__(
        self,
        key: str,
        log_path: Path,
        *,
        on_text: Callable[[str], None],
        on_events: Callable[[list[SessionEvent]], None],
        parser: SessionLogParser | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_limit: int | None = None,
    ) -> None:
        self.key = key
        self.log_path = log_path
        self.last_lines: deque[str] = deque(maxlen=LAST_LINES)
        self._on_text = on_text  # redacted text: the live log window
        self._on_events = on_events
        self._parser = parser if parser is not None else SessionLogParser()
        self._clock = clock
        self._log_limit = LOG_LIMIT_CHARS if log_limit is None else log_limit
        self._redactor = StreamRedactor()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending_line = ""
        self._last_output = clock()
        self._asked: set[str] = set()
        self._log_bytes = 0
        self._log_full = False
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Launch keys restart at 1 with every app run: the names carry the start time.
        self._log: TextIO = log_path.open("w", encoding="utf-8")

    def begin(self, command: str) -> None:
        """The command about to run, as the log's first line."""
        self._write_log(f"$ {command}\n")
        self._last_output = self._clock()

    def received(self, data: bytes) -> None:
        self._consume(self._decoder.decode(data))

    def tick(self) -> None:
        if self._clock() - self._last_output < QUIET_S:
            return
        question = self._parser.pending_question()
        if not isinstance(question, Prompt) or question.question in self._asked:
            return
        self._asked.add(question.question)
        self._flush_text()
        self._on_events([question])

    def failed_to_start(self, message: str) -> None:
        self._write_log(message + "\n")
        self.last_lines.append(message)

    def finished(self, code: int) -> None:
        """The rest of the output, the parser's closing events and the exit line."""
        self._consume(self._decoder.decode(b"", final=True))
        self._flush_text(newline=True)
        closing = self._parser.close(code)
        if closing:
            self._on_events(closing)
        self._write_log(f"\n[exit {code}]\n")

    def text(self) -> str:
        """The whole log file so far (what Follow log opens with)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def close(self, *, remove: bool = False) -> None:
        if not self._log.closed:
            self._log.close()
        if remove:
            self.log_path.unlink(missing_ok=True)

    # --- internals ----------------------------------------------------------------------------
    def _consume(self, raw: str) -> None:
        if not raw:
            return
        events = self._parser.feed(raw)
        text = self._redactor.feed(raw)
        if any(isinstance(e, Prompt) for e in events):
            text += self._redactor.flush()  # a prompt waits without a newline: show it now
        self._remember_lines(text)
        self._write_log(text)
        if text:
            self._on_text(text)
        if events:
            self._on_events(events)
        self._last_output = self._clock()

    def _flush_text(self, newline: bool = False) -> None:
        text = self._redactor.flush()
        if text:
            self._remember_lines(text + ("\n" if newline else ""))
            self._write_log(text)
            self._on_text(text)

    def _remember_lines(self, text: str) -> None:
        self._pending_line += text
        *lines, self._pending_line = self._pending_line.replace("\r", "\n").split("\n")
        for line in lines:
            if line.strip():
                self.last_lines.append(line.rstrip())
        if len(self._pending_line) > PENDING_LINE_LIMIT:
            self._pending_line = self._pending_line[-PENDING_LINE_LIMIT:]

    def _write_log(self, text: str) -> None:
        if not text or self._log.closed:
            return
        if self._log_bytes + len(text) > self._log_limit:
            # A child that floods its output must not fill the disk; the last lines stay in
            # memory (notices) and the child keeps being read and parsed.
            if not self._log_full:
                self._log_full = True
                self._log.write(
                    f"\n[the log stops here: over {self._log_limit // 1_000_000} MB of output]\n"
                )
                self._log.flush()
                log.warning("session %s: log limit reached; further output not written", self.key)
            return
        self._log_bytes += len(text)
        try:
            self._log.write(text)
            self._log.flush()
        except OSError as exc:  # a full disk: the child goes on, its log stops
            log.warning("session %s: log not written: %s", self.key, exc.strerror)
            self._log_full = True
