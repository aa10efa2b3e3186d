"""The editor (or a terminal) opened on a ready tunnel's Host, Remote-SSH checked first.

`EditorOpener` finds the user's editor, checks once per run that it has the Remote - SSH
extension (offering to install it, a question awaited through the ports), and starts it on
`vscode-remote://ssh-remote+clearml-<id8>/<folder>`; the Host block comes from `SessionHosts`.

Tested in tests/unit/tunnels/test_hosts.py and tests/qt/test_app.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from tray_app.core.ports import Ask, Desktop, Notify, Question, Runner, Spawn, confirm
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.editors import (
    REMOTE_SSH,
    Editor,
    fallback_url,
    find_editor,
    has_remote_ssh,
    install_extension_argv,
    list_extensions_argv,
    needs_extension_check,
    open_argv,
    remote_folder,
    terminal_argv,
)
from tray_app.core.tunnels.hosts import SessionHosts
from tray_app.core.tunnels.model import TunnelInfo

log = logging.getLogger(__name__)

ASK_AGAIN_AFTER_S = 60.0  # a declined Remote-SSH install is offered again on a later Connect


class EditorOpener:
    def __init__(
        self,
        hosts: SessionHosts,
        *,
        ask: Ask,
        notify: Notify,
        desktop: Desktop,
        runner: Runner,
        spawn: Spawn,
        settings: Callable[[], Settings],
        env: Callable[[], dict[str, str]] = lambda: dict(os.environ),
    ) -> None:
        self._hosts = hosts
        self._ask = ask
        self._notify = notify
        self._desktop = desktop
        self._runner = runner
        self._spawn = spawn
        self._settings = settings
        self._env = env
        self._remote_ssh_ok: set[tuple[str, ...]] = set()
        self._remote_ssh_declined: dict[tuple[str, ...], float] = {}  # editor → when "Not now"
        self._remote_ssh_checks: dict[tuple[str, ...], asyncio.Future[bool]] = {}

    def open(self, info: TunnelInfo, explicit: bool = False) -> None:
        """`explicit`: a click asked for it now (a notice's Open in VS Code), not the tunnel
        becoming ready after a Connect that already asked what it needed."""
        self._spawn(self.open_now(info, explicit))

    async def open_now(self, info: TunnelInfo, explicit: bool = False) -> None:
        alias = await self._hosts.prepare_host(info, explicit)
        if alias is None:
            return
        folder = remote_folder(info.user or "root", info.remote_folder)
        editor = await asyncio.to_thread(find_editor, self._settings().editor_command)
        if editor is None:
            self._desktop.open_url(fallback_url(alias, folder))
            return
        if not await self.ensure_remote_ssh(editor) and editor.argv in self._remote_ssh_declined:
            # A window that can only show "cannot open ssh-remote" helps nobody.
            self._notify.notify(
                "info",
                f"{editor.name} was not opened",
                "It needs the Remote - SSH extension to open the session; Connect again to "
                "install it, or use Copy SSH command.",
            )
            return
        argv = open_argv(editor, alias, folder)
        log.info("opening %s: %s", editor.name, " ".join(argv))
        if not self._desktop.start_detached(argv):
            self._notify.notify(
                "error",
                f"Could not start {editor.name}",
                f"{argv[0]} did not start. Check the editor command in Settings.",
                critical=True,
            )

    def check_soon(self) -> None:
        """While a tunnel comes up, check the editor's extensions, so that the editor opens
        the moment the session is ready instead of after `--list-extensions` (a second or so)."""

        async def check() -> None:
            editor = await asyncio.to_thread(find_editor, self._settings().editor_command)
            if editor is not None:
                await self.ensure_remote_ssh(editor)

        self._spawn(check())

    async def ensure_remote_ssh(self, editor: Editor) -> bool:
        """Check the editor's extensions once per run; offer to install Remote-SSH if missing.

        The editor is opened either way: without the extension it shows its own error, and the
        user may have a Remote-SSH build we do not know by id. A check under way is joined, not
        repeated; one that failed or was declined is done again next time.
        """
        if not needs_extension_check(editor) or editor.argv in self._remote_ssh_ok:
            return True
        declined = self._remote_ssh_declined.get(editor.argv)
        if declined is not None and time.monotonic() - declined < ASK_AGAIN_AFTER_S:
            return False  # just answered "Not now" (the early check): do not ask twice
        running = self._remote_ssh_checks.get(editor.argv)
        if running is None:
            running = asyncio.ensure_future(self._check_remote_ssh(editor))
            self._remote_ssh_checks[editor.argv] = running
            running.add_done_callback(lambda _t: self._remote_ssh_checks.pop(editor.argv, None))
        return await asyncio.shield(running)

    async def _check_remote_ssh(self, editor: Editor) -> bool:
        code, listed = await self._runner.run(list_extensions_argv(editor), self._env())
        if code != 0:
            log.warning("%s --list-extensions failed (%s): %s", editor.name, code, listed[-300:])
            return False
        if has_remote_ssh(editor, listed):
            self._remote_ssh_ok.add(editor.argv)
            return True
        extension = REMOTE_SSH[editor.kind]
        question = Question(
            "Connect in VS Code",
            f"{editor.name} needs the Remote - SSH extension ({extension}) to open a session. "
            "Install it now?",
            ("Install", "Not now"),
        )
        if not await confirm(self._ask, question):
            log.info("Remote-SSH install declined for %s", editor.name)
            self._remote_ssh_declined[editor.argv] = time.monotonic()
            return False
        self._remote_ssh_declined.pop(editor.argv, None)
        self._notify.notify(
            "info", "Installing Remote - SSH", f"Into {editor.name}; the session opens after it."
        )
        code, output = await self._runner.run(install_extension_argv(editor), self._env(), 300)
        if code == 0:
            log.info("installed %s into %s", extension, editor.name)
            self._remote_ssh_ok.add(editor.argv)
            self._notify.notify("info", "Remote - SSH installed", f"In {editor.name}.")
            return True
        log.warning("installing %s failed (%s): %s", extension, code, output[-500:])
        last = output.strip().splitlines()[-1] if output.strip() else f"exit code {code}"
        self._notify.notify(
            "error", "Remote - SSH was not installed", f"{editor.name} said: {last}", critical=True
        )
        return False

    async def open_terminal(self, info: TunnelInfo) -> None:
        """The user's terminal running `ssh <alias>` over a ready tunnel."""
        alias = await self._hosts.prepare_host(info, explicit=True)
        if alias is None:
            return
        argv = terminal_argv(alias)
        if argv is None:
            self._desktop.copy(f"ssh {alias}")
            self._notify.notify(
                "error",
                "No terminal program found",
                f"“ssh {alias}” is in the clipboard. Set $TERMINAL to choose a terminal.",
            )
            return
        log.info("opening a terminal: %s", " ".join(argv))
        if not self._desktop.start_detached(argv):
            self._notify.notify(
                "error", "Could not start the terminal", f"{argv[0]} did not start.", critical=True
            )
