"""`clearml-tray` and `python -m tray_app`."""

import sys

# Hidden entries of the executable, for what ssh and the tray itself start: a packaged app
# (PyInstaller) has no Python to run `-m` with, so its one executable is these programs too.
ASKPASS_ENTRY = "_askpass"  # the SSH_ASKPASS helper (tray_app/askpass.py)
CLEARML_SESSION_ENTRY = "_clearml-session"  # the bundled clearml-session CLI


def run_clearml_session(args: list[str]) -> int:
    """The `clearml_session` this app carries, as its own `clearml-session` script runs it."""
    # The tray reads its output as it comes: no block buffering behind a pipe (a bundle does
    # not read PYTHONUNBUFFERED).
    sys.stdout.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    import builtins

    # The CLI ends with `exit(1)`, a builtin that `site` adds and a bundle does without.
    for name in ("exit", "quit"):
        if not hasattr(builtins, name):
            setattr(builtins, name, sys.exit)
    sys.argv = ["clearml-session", *args]
    from clearml_session.__main__ import main as cli_main

    result = cli_main()
    return result if isinstance(result, int) else 0


def main() -> int:
    entry = sys.argv[1] if len(sys.argv) > 1 else ""
    if entry == ASKPASS_ENTRY:
        from tray_app.askpass import main as askpass_main

        return askpass_main(sys.argv[2:])
    if entry == CLEARML_SESSION_ENTRY:
        return run_clearml_session(sys.argv[2:])
    # `clearml-tray list` answered by a running tray needs neither argparse nor the rest of the
    # command line (tray_app/cli.py); a status bar runs it every few seconds.
    from tray_app.list_command import run_from_tray

    code = run_from_tray(sys.argv[1:])
    if code is not None:
        return code
    from tray_app.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
