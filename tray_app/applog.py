"""Logging: a rotating file in the platform's log folder, stderr, and secret redaction."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import platformdirs

from tray_app import APP_NAME
from tray_app.core.redact import install_redaction

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def setup_logging(debug: bool = False, directory: Path | None = None) -> Path:
    """Configure the root logger once; returns the log file path.

    The file keeps 5 × 1 MB; it is DEBUG with `--debug`, INFO otherwise. Redaction is installed
    on every handler (and on handlers added later) so no secret reaches any record.
    """
    directory = directory or log_dir()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    formatter = logging.Formatter(LOG_FORMAT)
    path = directory / f"{APP_NAME}.log"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=5, encoding="utf-8"
        )
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    except OSError as exc:  # a read-only or full disk must not stop the app
        print(f"clearml-tray: cannot write the log file {path}: {exc}", file=sys.stderr)
    stream = logging.StreamHandler(sys.stderr)
    stream.setLevel(logging.DEBUG if debug else logging.WARNING)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    # Library chatter (every HTTP header, every executor hop) drowns the app's own debug lines.
    for noisy in ("httpcore", "httpx", "qasync", "asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The demo's SSH library logs every listener and connection (most of a demo's log): only
    # its warnings, unless --debug asks for everything.
    logging.getLogger("asyncssh").setLevel(logging.INFO if debug else logging.WARNING)
    install_redaction(root)
    return path
