"""`clearml-tray` and `python -m tray_app`."""

import sys


def main() -> int:
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
