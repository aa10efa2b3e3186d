"""The app's background work: kept alive until done, awaited on Quit, failures logged."""

from __future__ import annotations

import asyncio
import gc

import pytest

from tray_app.core.tasks import Tasks


async def test_a_spawned_task_runs_to_its_end_though_nobody_holds_it() -> None:
    tasks, done = Tasks(), asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.01)
        gc.collect()  # a task only the loop knew of could be collected here
        done.set()

    tasks.spawn(work())
    await tasks.wait_idle()
    assert done.is_set()


async def test_waiting_covers_tasks_spawned_meanwhile() -> None:
    tasks, order = Tasks(), list[str]()

    async def second() -> None:
        await asyncio.sleep(0.01)
        order.append("second")

    async def first() -> None:
        order.append("first")
        tasks.spawn(second())

    tasks.spawn(first())
    await tasks.wait_idle()
    assert order == ["first", "second"]


async def test_a_failing_task_is_logged_and_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks, ran = Tasks(), list[bool]()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def works() -> None:
        ran.append(True)

    tasks.spawn(fails())
    tasks.spawn(works())
    await tasks.wait_idle()
    assert ran == [True]
    assert any("background task failed" in r.message for r in caplog.records)


async def test_waiting_at_quit_gives_up_on_a_task_that_never_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks, forever = Tasks(), asyncio.Event()

    async def stuck() -> None:
        await forever.wait()  # a keyring's unlock prompt nobody answers

    tasks.spawn(stuck())
    await tasks.wait_idle(0.05)
    await asyncio.sleep(0)  # the cancellation is delivered
    assert not tasks._tasks
    assert any("still running: cancelled" in r.message for r in caplog.records)
