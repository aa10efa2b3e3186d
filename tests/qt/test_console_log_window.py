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
