"""Server text is written by someone else: make it safe to show, copy, open or put in a command.

On a shared ClearML server every task field (name, tags, `runtime`, properties, URLs) comes from
another user, an agent or a broken client. Pure functions, no I/O:

- `display_text` — one line of plain text for a terminal, a menu or a notification: no ANSI
  escape sequences (title changes, screen clears), no control characters (a newline would fake
  a table row), no bidirectional overrides (U+202E shows "exe.txt" as "txt.exe"), bounded length.
- `markup_escape` — the same text for notification bodies a daemon renders as markup (dunst).
- `menu_label` — the same text for a Qt menu entry (`&` would become a mnemonic).
- `safe_ssh_command`, `safe_http_url` — only what validates; None for anything that cannot be
  made safe (the caller says so in words).
"""

from __future__ import annotations

import html
import ipaddress
import re
import shlex
from urllib.parse import urlsplit

ELLIPSIS = "…"
# Never look at more than this much of one string: a 10 MB "name" costs nothing to show.
SCAN_LIMIT = 64 * 1024

# ESC [ … final byte (CSI), ESC ] … BEL or ESC \ (OSC: titles, hyperlinks), ESC P/X/^/_ … ST
# (DCS, SOS, PM, APC), and any other two-byte ESC sequence.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
)
# C0 and C1 controls and DEL; whitespace controls become a space, the rest disappear.
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
_OTHER_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks
# (U+200E, U+200F, U+061C) and the BOM / zero-width no-break space.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ufeff]")

_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def display_text(s: str, max_len: int | None = None, *, multiline: bool = False) -> str:
    """`s` as one line of plain text: no escapes, controls or bidi overrides, at most `max_len`.

    `multiline` keeps line breaks (as `\n`, at most two in a row) for text shown in a box of
    its own, such as a notification body; every other control still goes.
    """
    text = s if isinstance(s, str) else str(s)
    if len(text) > SCAN_LIMIT:
        text = text[:SCAN_LIMIT]
    text = _ESCAPES.sub("", text)
    if multiline:
        lines = (_clean_line(line) for line in _LINE_BREAKS.split(text))
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    else:
        text = _clean_line(text)
    if max_len is not None and len(text) > max_len:
        text = text[: max(0, max_len - 1)].rstrip() + ELLIPSIS if max_len > 0 else ""
    return text


def _clean_line(text: str) -> str:
    text = _WHITESPACE_CONTROLS.sub(" ", text)
    text = _OTHER_CONTROLS.sub("", text)
    text = _BIDI.sub("", text)
    return re.sub(r" {2,}", " ", text).strip()


def markup_escape(s: str, max_len: int | None = None, *, multiline: bool = False) -> str:
    """`display_text`, then `&`, `<` and `>` escaped for a markup-rendering notification daemon."""
    return html.escape(display_text(s, max_len, multiline=multiline), quote=False)


def menu_label(s: str, max_len: int | None = None) -> str:
    """`display_text` for a Qt menu or action text: `&` doubled so it is not a mnemonic."""
    return display_text(s, max_len).replace("&", "&&")


def valid_ssh_user(user: str) -> bool:
    """A login name ssh and a shell take literally: letters, digits, `._-`, not starting `-`."""
    return isinstance(user, str) and _SSH_USER.fullmatch(user) is not None


def valid_host(host: str) -> bool:
    """A DNS name or an IP address literal (nothing ssh or a shell would read as more)."""
    if not isinstance(host, str) or not host or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return all(_HOST_LABEL.fullmatch(label) for label in labels)


def valid_port(port: object) -> bool:
    return isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536


def safe_ssh_command(user: str, host: str, port: int) -> str | None:
    """`ssh -p PORT USER@HOST` when every part validates, shell-quoted; None when unsafe."""
    if not (valid_ssh_user(user) and valid_host(host) and valid_port(port)):
        return None
    return f"ssh -p {port} {shlex.quote(f'{user}@{host}')}"


def safe_http_url(url: str, expected_host: str) -> str | None:
    """`url` if it is http(s) to `expected_host` (no credentials, no controls); else None."""
    if not isinstance(url, str) or not url or len(url) > 8192:
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or parts.username or parts.password:
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    expected = expected_host.strip().strip("[]").rstrip(".").lower()
    if not host or host != expected or (port is not None and not valid_port(port)):
        return None
    return parts.geturl()
