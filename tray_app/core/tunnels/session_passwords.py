"""Session passwords live in the tray's memory; each may answer one askpass prompt, once.

Nothing is written for them anywhere: no keyring entry, no file, no environment variable, no
argv. An ssh the tray starts or shapes for a session (the CLI's first ssh, the editor's master
login) gets, in its environment, a one-time token and our SSH_ASKPASS helper; ssh runs the
helper with its prompt, and the helper asks the running tray over its user-only socket
(`tray_app.askpass`). The tray answers only when

- the token is one it gave out and has not used (a grant is used once, and expires);
- the prompt is ssh's own password prompt for the grant's user and host, in OpenSSH's two
  forms: `user@host's password: ` (password) and `(user@host) Password: ` (keyboard-interactive,
  as OpenSSH 8.4+ prefixes it): never a key's passphrase, a host-key question, an empty prompt,
  or a prompt for another user or host;
- the ssh that asks (the helper's parent) logs in to that host and port by its own command
  line, and is not a `-W` hop of a ProxyJump / ProxyCommand.

So a kill -9 of the tray leaves no session password behind: there is nowhere it was kept.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tray_app.core.tunnels.askpass_words import password_prompt
from tray_app.core.tunnels.ssh_master import ssh_target

log = logging.getLogger(__name__)

GRANT_TTL_S = 120.0  # a login uses its grant within seconds; an unused one does not linger


@dataclass(slots=True)
class _Grant:
    password: str = field(repr=False)
    user: str
    host: str  # the destination as the asking ssh's command line names it
    port: int
    prompt_host: str  # the host as ssh names it in its prompt (its HostName)
    expires: float


@dataclass(frozen=True, slots=True)
class Answer:
    password: str | None = field(default=None, repr=False)
    why: str = ""  # for the helper's stderr (ssh shows it) when there is no password


def process_argv(pid: int) -> list[str] | None:
    """The command line of process `pid` (None: gone or not readable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            parts = raw.read().split(b"\0")
        return [p.decode("utf-8", "replace") for p in parts if p] or None
    except OSError:
        pass
    try:  # macOS, Windows: psutil comes with clearml-session
        import psutil  # type: ignore[import-untyped]

        return list(psutil.Process(pid).cmdline()) or None
    except Exception:
        return None


class SessionPasswords:
    """The grants the tray gave out; `answer` is what the askpass request gets."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        argv_of: Callable[[int], Sequence[str] | None] = process_argv,
    ) -> None:
        self._clock = clock
        self._argv_of = argv_of
        self._grants: dict[str, _Grant | None] = {}  # token → grant (None: not filled yet)

    def reserve(self) -> str:
        """A token for an ssh that starts before its password is known (the CLI's: its
        environment is set when it starts); `grant` fills it."""
        token = secrets.token_urlsafe(24)
        self._grants[token] = None
        return token

    def grant(
        self,
        token: str,
        password: str,
        *,
        user: str,
        host: str,
        port: int,
        prompt_host: str = "",
        ttl_s: float = GRANT_TTL_S,
    ) -> bool:
        """The password `token` may answer, for `user`@`host`:`port`; False when the token
        was revoked meanwhile (the child ended)."""
        if token not in self._grants:
            return False
        self._grants[token] = _Grant(
            password, user, host, port, prompt_host or host, self._clock() + ttl_s
        )
        return True

    def new(self, password: str, *, user: str, host: str, port: int, prompt_host: str = "") -> str:
        token = self.reserve()
        self.grant(token, password, user=user, host=host, port=port, prompt_host=prompt_host)
        return token

    def revoke(self, token: str) -> None:
        self._grants.pop(token, None)

    def revoke_all(self) -> None:
        self._grants.clear()

    def __len__(self) -> int:
        return len(self._grants)

    def ask(self, token: str, prompt: str, pid: int) -> tuple[str | None, str]:
        """`answer` as the instance socket's askpass request takes it: (password, why not)."""
        reply = self.answer(token, prompt, pid)
        return reply.password, reply.why

    def answer(self, token: str, prompt: str, pid: int) -> Answer:
        """The password for this prompt of the ssh `pid`, at most once; else why not."""
        self._expire()
        grant = self._grants.get(token)
        if grant is None:
            return Answer(why="no session password is waiting for this ssh")
        if not password_prompt(prompt, grant.user, grant.prompt_host):
            log.info("askpass: not answered, not the session's password prompt: %r", prompt[:120])
            return Answer(why="not the session's password prompt")
        argv = self._argv_of(pid) if pid > 0 else None
        target = ssh_target(argv) if argv else None
        if target is None:
            log.info("askpass: not answered, cannot read the asking ssh's command line")
            return Answer(why="the asking ssh could not be identified")
        if target.forwarding_stdio:
            log.info("askpass: not answered for a proxy hop (ssh -W)")
            return Answer(why="not answered for a ProxyJump / ProxyCommand hop")
        if target.host != grant.host or (target.port or 22) != grant.port:
            log.info("askpass: not answered, the ssh asking logs in elsewhere")
            return Answer(why="this ssh logs in to another host or port")
        if target.user and target.user != grant.user:
            log.info("askpass: not answered, the ssh asking logs in as another user")
            return Answer(why="this ssh logs in as another user")
        del self._grants[token]  # once: a second prompt means the password was wrong
        return Answer(password=grant.password)

    def _expire(self) -> None:
        now = self._clock()
        for token, grant in list(self._grants.items()):
            if grant is not None and grant.expires < now:
                del self._grants[token]
