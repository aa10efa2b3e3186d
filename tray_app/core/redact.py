"""Secret redaction for everything that goes through `logging`.

`redact(text)` replaces secrets with `***`: registered secret values, bearer tokens and JWTs,
`Authorization:` headers, secret-looking keys in JSON / HOCON / key=value / CLI-flag form,
`[password: …]` as printed by clearml-session, `?token=…` in URLs and `user:pass@` in URLs.

`install_redaction()` makes it apply to every log record: a filter on the root logger's
handlers plus a record factory, so that handlers added later (pytest's caplog, a log window)
never see an unredacted record either.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"

# Shorter values would turn ordinary words into `***` everywhere; they are not secrets anyway.
MIN_SECRET_LENGTH = 4

# Key names whose values are secret. Matched case-insensitively as part of a larger key
# (`api.credentials.secret_key`, `CLEARML_API_SECRET_KEY`, `_user_secret`, `jupyter_token`).
_SECRET_WORDS = (
    r"secret|password|passwd|passphrase|token|access_key|accesskey|_user_key|api_key|apikey"
    r"|private_key|credential"
)
_KEY = rf"[\w.\-]*(?:{_SECRET_WORDS})[\w.\-]*"

_DQ = r'"(?:[^"\\\n]|\\.)*"'
_SQ = r"'(?:[^'\\\n]|\\.)*'"
# shlex.quote("a'b") == 'a'"'"'b'
_SHLEX_SQ = r"'[^'\n]*'(?:\"'\"'[^'\n]*')*"

_PASSWORD_BRACKET = re.compile(r"(\[password:[ \t]*)([^\r\n]*)", re.IGNORECASE)
_LOGIN_LINE = re.compile(r"(\bLOGIN\s+u:\S*\s+p:)([^\r\n]*)")
_AUTH_HEADER = re.compile(
    r"(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)([^\r\n\"']+)", re.IGNORECASE
)
_BEARER = re.compile(r"(\bbearer\s+)([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_URL_QUERY = re.compile(rf"([?&;](?:{_KEY})=)([^&#\s\"'<>]*)", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@\"']+:)([^@\s/\"']+)(@)", re.IGNORECASE)
# ['--password', 'x'] as in a logged argv list.
_ARGV_LIST = re.compile(
    rf"([\"']--[\w\-]*(?:password|secret|token)[\w\-]*[\"']\s*,\s*)({_DQ}|{_SQ})", re.IGNORECASE
)
# --password x / --password=x / --password 'x y' as in a logged command line.
_CLI_FLAG = re.compile(
    rf"((?<![\w\-])--[\w\-]*(?:password|secret|token)[\w\-]*(?:[ \t]+|=))"
    rf"({_SHLEX_SQ}(?=\s|$)|{_DQ}(?=\s|$)|\S+)",
    re.IGNORECASE,
)
# A quoted value only counts as one when it really ends there (else `"ab"cd` leaks `cd`).
_END = r"(?=[\s,;}\])]|$)"
# `"credentials": {` in JSON / repr is structure, not a value (the key is quoted there; an
# unquoted `key={…` is masked, since a secret may well start with a brace).
_NOT_STRUCTURE = r"(?(kq)(?![\[{](?:$|[\s\"'{}\[\]]))|)"
# key: value / key = value / "key": "value" / 'key': 'value' (JSON, HOCON, env, Python repr).
_KEY_VALUE = re.compile(
    rf"((?<![\w.\-?&\[])(?P<kq>[\"'])?{_KEY}(?(kq)(?P=kq))[ \t]*[:=][ \t]*)"
    rf"({_DQ}{_END}|{_SQ}{_END}|{_NOT_STRUCTURE}\S+)",
    re.IGNORECASE,
)

_LITERALS = frozenset({"true", "false", "null", "True", "False", "None"})

_registry_lock = threading.Lock()
_registered: set[str] = set()
_registered_re: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Redact `value` wherever it appears from now on (ignored if shorter than 4 chars)."""
    global _registered_re
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    variants = {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
    with _registry_lock:
        if variants <= _registered:
            return
        _registered.update(v for v in variants if len(v) >= MIN_SECRET_LENGTH)
        ordered = sorted(_registered, key=len, reverse=True)
        _registered_re = re.compile("|".join(re.escape(v) for v in ordered))


def unregister_all_secrets() -> None:
    """Forget every registered value (tests; switching server profiles)."""
    global _registered_re
    with _registry_lock:
        _registered.clear()
        _registered_re = None


def _mask_group(index: int, *, json_literals: bool = False) -> Callable[[re.Match[str]], str]:
    """Replace group `index` by `***` (keeping its quotes).

    `json_literals`: leave an unquoted true/false/null alone when the key was quoted (JSON or a
    Python repr, where a string secret would be quoted): `"git_credentials": false`.
    """

    def replace(match: re.Match[str]) -> str:
        value = match.group(index)
        if value.strip("\"'").startswith(MASK) and set(value.strip("\"'")) <= {"*"}:
            return match.group(0)
        if json_literals and match.group("kq") and value.rstrip(",;)]}") in _LITERALS:
            return match.group(0)
        quote = value[0] if value[:1] in ("'", '"') and value[-1:] == value[0] else ""
        start, end = match.span(index)
        offset = match.start(0)
        whole = match.group(0)
        return whole[: start - offset] + f"{quote}{MASK}{quote}" + whole[end - offset :]

    return replace


_mask_key_value = _mask_group(3, json_literals=True)


def _password_bracket(match: re.Match[str]) -> str:
    rest = match.group(2).rstrip()
    trailing = match.group(2)[len(rest) :]
    if not rest.endswith("]"):
        # No closing bracket yet (a partial line): the trailing spaces may be part of it.
        return f"{match.group(1)}{MASK}"
    return f"{match.group(1)}{MASK}]{trailing}"


def redact(text: str) -> str:
    """Return `text` with every secret it contains replaced by `***`."""
    if not text:
        return text
    pattern = _registered_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _PASSWORD_BRACKET.sub(_password_bracket, text)
    text = _LOGIN_LINE.sub(lambda m: m.group(1) + MASK, text)
    text = _JWT.sub(MASK, text)
    text = _AUTH_HEADER.sub(_mask_group(2), text)
    text = _BEARER.sub(_mask_group(2), text)
    text = _URL_USERINFO.sub(_mask_group(2), text)
    text = _URL_QUERY.sub(_mask_group(2), text)
    text = _ARGV_LIST.sub(_mask_group(2), text)
    text = _CLI_FLAG.sub(_mask_group(2), text)
    text = _KEY_VALUE.sub(_mask_key_value, text)
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Rewrite `record` in place so that no attribute a formatter reads holds a secret."""
    if getattr(record, "_clearml_tray_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format must not make the secret escape via the error path
        message = f"{record.msg!r} % {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    # The formatter appends exc_text on its own; dropping exc_info keeps the exception object
    # (whose message may hold the secret) away from handlers that would format it again.
    record.exc_info = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    if hasattr(record, "message"):
        record.message = record.msg
    record._clearml_tray_redacted = True
    return record


class RedactingFilter(logging.Filter):
    """A logging filter that never drops records, only redacts them."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = RedactingFilter()
_factory_lock = threading.Lock()
_factory_installed = False


def add_redaction(handler: logging.Handler) -> logging.Handler:
    """Attach the redacting filter to `handler` (once) and return it."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(_FILTER)
    return handler


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Redact every record: filter on `logger`'s (default root) handlers + a record factory.

    The record factory covers handlers added after this call; calling it again is harmless.
    """
    global _factory_installed
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        add_redaction(handler)
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def redact_all(texts: Iterable[str]) -> list[str]:
    """`redact` applied to each item (argv lists, log tails shown in notifications)."""
    return [redact(text) for text in texts]


def uninstall_redaction(logger: logging.Logger | None = None) -> None:
    """Undo `install_redaction` (tests): remove the filter and restore the record factory."""
    global _factory_installed
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        for flt in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(flt)
    with _factory_lock:
        if _factory_installed:
            logging.setLogRecordFactory(logging.LogRecord)
            _factory_installed = False


class StreamRedactor:
    """Redacts a child's output stream chunk by chunk without leaking split secrets.

    Secrets can be cut anywhere by pipe reads (`[password: ab` | `c]`), so `feed` only releases
    complete lines (ended by `\n` or `\r`) and keeps the partial tail. `flush()` releases the tail
    too (at exit, or when a prompt is waiting); the rest of that line is later redacted together
    with the part already released, so a pattern cut by the flush is still recognised. Only a
    registered secret cut by a flush can leak its first part.
    """

    # A line this long without an end (progress dots) stops being kept as context.
    _MAX_CONTEXT = 8192
    # An unterminated line is held back at most this long.
    _MAX_TAIL = 64 * 1024

    def __init__(self) -> None:
        self._tail = ""
        self._released_raw = ""  # the part of the current line already released by flush()
        self._released_out = ""  # ...and what was released for it

    def feed(self, chunk: str) -> str:
        """Redacted text of the complete lines now available ("" if none)."""
        text = self._tail + chunk
        cut = max(text.rfind("\n"), text.rfind("\r")) + 1
        self._tail = text[cut:]
        out = self._release(text[:cut], partial=False)
        if len(self._tail) > self._MAX_TAIL:
            # A line without end (a 16 MB one): released in pieces, or every chunk would copy
            # all of it again.
            out += self.flush()
        return out

    def flush(self) -> str:
        """Redacted partial line held back so far ("" if none)."""
        text, self._tail = self._tail, ""
        return self._release(text, partial=True)

    def _release(self, text: str, *, partial: bool) -> str:
        if not text:
            return ""
        if not self._released_raw and not partial:
            return redact(text)
        ends = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
        end = min(ends, default=len(text))
        line = self._released_raw + text[:end]
        redacted = redact(line)
        if redacted.startswith(self._released_out):
            head = redacted[len(self._released_out) :]
        else:
            # Text already released turned out to start a secret: hide the rest of it at least.
            head = MASK
        if end == len(text) and partial and len(line) < self._MAX_CONTEXT:
            self._released_raw, self._released_out = line, self._released_out + head
            return head
        self._released_raw = self._released_out = ""
        return head + redact(text[end:])
