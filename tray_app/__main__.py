"""`clearml-tray` and `python -m tray_app`."""

from tray_app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
