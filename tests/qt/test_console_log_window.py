"""Show log: the server console log reads oldest first and follows new lines like tail -f."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from support.qt_wait import until

from tray_app.core.server.models import LogLine
from tray_app.qt.console_log import format_lines
from tray_app.qt.windows import Windows

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def _line(seconds: int, msg: str) -> LogLine:
    return LogLine(timestamp=T0 + timedelta(seconds=seconds), msg=msg)


def test_lines_are_chronological_and_banners_read_top_to_bottom() -> None:
    # As the server sends them: newest first; a banner's lines share one timestamp.
    newest_first = [_line(5, "ready"), _line(1, "banner 2 of 2"), _line(1, "banner 1 of 2")]
    text = format_lines(newest_first)
    messages = [row.split("  ", 1)[1] for row in text.splitlines()]
    assert messages == ["banner 1 of 2", "banner 2 of 2", "ready"]


async def test_the_window_follows_the_end_and_refreshes(qapp: Any) -> None:
    served = [[_line(i, f"line {i}") for i in range(200)][::-1]]
    calls: list[int] = []

    async def reload() -> list[LogLine]:
        calls.append(1)
        return served[-1]

    windows = Windows()
    windows.console_log("Console log — s (ab12cd34)", served[0], reload)
    (window,) = windows._open
    text = window.plain_text().splitlines()
    assert text[0].endswith("line 0") and text[-1].endswith("line 199")
    bar = window.text.verticalScrollBar()
    await until(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), "the end in view")

    served.append([_line(i, f"line {i}") for i in range(201)][::-1])
    window.refresh_button.click()
    await until(lambda: window.reloads == 1, "the reload")
    assert window.plain_text().splitlines()[-1].endswith("line 200")
    assert bar.value() == bar.maximum()  # still following the end

    window.close()
    assert not window._timer.isActive()  # a closed window stops asking the server
    assert "Following: read again every 5 s" in window.primary.note.text()


async def test_show_log_offers_both_logs_and_the_launcher_tab_follows_the_child(qapp: Any) -> None:
    async def reload() -> list[LogLine]:
        return [_line(0, "on the machine")]

    windows = Windows()
    windows.console_log(
        "Log — train (ab12cd34)",
        [_line(0, "on the machine")],
        reload,
        launcher=("launch-1", "Creating new session\n"),
    )
    (window,) = windows._open
    assert window.windowTitle() == "Log — train (ab12cd34)"
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == [
        "On the machine (ClearML console log)",
        "On this computer (clearml-session)",
    ]
    assert window.launcher is not None
    assert "nothing needs typing" in window.launcher.note.text()
    # The child keeps printing under its first key (the launch's): the tab follows it.
    windows.child_output("launch-1", "Remote machine ready\n")
    assert window.launcher.plain_text().splitlines() == [
        "Creating new session",
        "Remote machine ready",
    ]
    assert "on the machine" in window.plain_text()
    window.close()
    await until(lambda: not windows.session_logs["launch-1"], "the closed window to be let go")


async def test_a_launch_log_window_is_titled_with_the_session_once_it_is_named(qapp: Any) -> None:
    windows = Windows()
    windows.follow_log("launch-1", "Creating new session\n", "gpu-box")
    window = windows.log_windows["launch-1"]
    assert window.windowTitle() == "clearml-session log — gpu-box"
    assert "Live:" in window.primary.note.text()
    windows.retitle_logs({"launch-1": "gpu-box (ab12cd34)"})
    assert window.windowTitle() == "clearml-session log — gpu-box (ab12cd34)"
    windows.child_output("launch-1", "ready\n")
    assert window.plain_text().endswith("ready\n") or window.plain_text().endswith("ready")
    window.close()
