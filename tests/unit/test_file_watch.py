"""Following the user's files: a change is acted on once it holds still, once."""

from __future__ import annotations

import os
from pathlib import Path

from tray_app.core.file_watch import FileWatch


def _watch(paths: list[Path]) -> tuple[FileWatch, list[int]]:
    watch, calls = FileWatch(), []

    async def changed() -> None:
        calls.append(1)

    watch.watch("conf", lambda: paths, changed)
    return watch, calls


async def test_a_change_is_acted_on_once_after_it_holds_still(tmp_path: Path) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text("api { }\n")
    watch, calls = _watch([conf])
    assert await watch.check_once() == []  # the first look is the starting point
    conf.write_text("api { api_server: x }\n")
    assert await watch.check_once() == []  # changed: wait one look (an editor mid-save)
    assert await watch.check_once() == ["conf"] and calls == [1]
    assert await watch.check_once() == [] and calls == [1]  # once per change


async def test_a_file_that_appears_or_is_replaced_counts(tmp_path: Path) -> None:
    conf = tmp_path / "clearml.conf"
    watch, calls = _watch([conf])
    await watch.check_once()
    conf.write_text("written by clearml-init\n")  # it did not exist
    await watch.check_once()
    await watch.check_once()
    assert calls == [1]
    # An editor that saves through a new file renamed over the old one: same size, new inode.
    other = tmp_path / "clearml.conf.new"
    other.write_text("written by clearml-init\n")
    os.replace(other, conf)
    await watch.check_once()
    await watch.check_once()
    assert calls == [1, 1]


async def test_a_change_still_under_way_waits_until_it_stops(tmp_path: Path) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text("a")
    watch, calls = _watch([conf])
    await watch.check_once()
    for text in ("ab", "abc", "abcd"):  # still being written at every look
        conf.write_text(text)
        await watch.check_once()
    assert calls == []
    await watch.check_once()
    assert calls == [1]


async def test_new_files_to_follow_are_a_new_start_and_rearm_takes_our_own_write(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("1")
    second.write_text("2")
    paths = [first]
    watch, calls = _watch(paths)
    await watch.check_once()
    paths[:] = [second]  # another profile chosen: applied by whoever chose it
    await watch.check_once()
    await watch.check_once()
    assert calls == []
    second.write_text("written by the app itself")
    await watch.rearm("conf")
    await watch.check_once()
    await watch.check_once()
    assert calls == []


async def test_a_failing_reaction_does_not_end_the_watch(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("1")
    watch, seen = FileWatch(), []

    async def broken() -> None:
        seen.append(1)
        raise RuntimeError("a bug")

    watch.watch("c", lambda: [conf], broken)
    await watch.check_once()
    for text in ("2", "3"):
        conf.write_text(text)
        await watch.check_once()
        await watch.check_once()
    assert seen == [1, 1]


async def test_a_change_right_after_the_start_is_not_missed(tmp_path: Path) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text("wrong secret")
    watch, calls = _watch([conf])
    await watch.start()  # the app read the file just before
    try:
        conf.write_text("the right secret")  # fixed before the first periodic look
        await watch.check_once()
        await watch.check_once()
        assert calls == [1]
    finally:
        await watch.stop()
