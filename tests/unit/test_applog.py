"""The log file: in the platform log folder, rotating, and never holding a secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tray_app.applog import log_dir, setup_logging
from tray_app.core.redact import register_secret, uninstall_redaction, unregister_all_secrets


@pytest.fixture
def clean_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield root
    for handler in root.handlers[:]:
        if handler not in saved[1]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[0])
    uninstall_redaction(root)
    unregister_all_secrets()


def test_log_dir_is_under_the_isolated_state_home(isolated_home: Path) -> None:
    assert log_dir().is_relative_to(isolated_home)


def test_secrets_never_reach_the_file(clean_root: logging.Logger, tmp_path: Path) -> None:
    path = setup_logging(debug=True, directory=tmp_path)
    secret = "s3cr3t-value-of-the-api-key-123"
    register_secret(secret)
    logging.getLogger("tray_app.test").info("login with %s", secret)
    logging.getLogger("tray_app.test").info("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig")
    logging.getLogger("tray_app.test").warning("clearml-session --password hunter22 --queue q")
    for handler in clean_root.handlers:
        handler.flush()
    text = path.read_text()
    assert "login with ***" in text
    assert secret not in text and "eyJzdWIi" not in text and "hunter22" not in text


def test_debug_flag_controls_the_level(clean_root: logging.Logger, tmp_path: Path) -> None:
    setup_logging(debug=False, directory=tmp_path)
    assert clean_root.level == logging.INFO
    assert logging.getLogger("httpcore").level == logging.WARNING
    # The demo's SSH library: every listener and connection only with --debug.
    assert not logging.getLogger("asyncssh").isEnabledFor(logging.INFO)
    for handler in list(clean_root.handlers):
        clean_root.removeHandler(handler)
    setup_logging(debug=True, directory=tmp_path)
    assert logging.getLogger("asyncssh").isEnabledFor(logging.INFO)


def test_rotation_keeps_five_files(clean_root: logging.Logger, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    setup_logging(debug=False, directory=logs)
    line = "x" * 1000
    for _ in range(7000):
        logging.getLogger("tray_app.test").info(line)
    files = sorted(p.name for p in logs.iterdir())
    assert files == [f"clearml-tray.log{s}" for s in ("", ".1", ".2", ".3", ".4", ".5")]


def test_unwritable_log_folder_does_not_stop_the_app(
    clean_root: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    setup_logging(directory=blocker / "logs")
    assert "cannot write the log file" in capsys.readouterr().err
