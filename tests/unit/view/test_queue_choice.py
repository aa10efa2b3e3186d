"""Which queue the New session dialog starts on: the last used one, else one free right now."""

from __future__ import annotations

from tray_app.core.server.models import QueueInfo
from tray_app.core.view.queue_choice import preselected_queue

QUEUES = [
    QueueInfo(id="1", name="default", free_workers=0, total_workers=2),
    QueueInfo(id="2", name="gpu-a100", free_workers=1, total_workers=1),
    QueueInfo(id="3", name="sessions", free_workers=2, total_workers=3, interactive=True),
]


def test_the_last_used_queue_wins_even_when_another_has_free_workers() -> None:
    assert preselected_queue(QUEUES, "default") == "default"


def test_the_last_used_queue_is_suggested_before_the_list_has_loaded() -> None:
    assert preselected_queue([], "gpu-a100") == "gpu-a100"


def test_a_last_used_queue_the_server_no_longer_has_falls_back_to_a_free_one() -> None:
    assert preselected_queue(QUEUES, "deleted-queue") == "sessions"


def test_without_a_last_used_queue_an_interactive_queue_with_a_free_worker_comes_first() -> None:
    assert preselected_queue(QUEUES) == "sessions"
    assert preselected_queue(QUEUES[:2]) == "gpu-a100"  # no interactive one: any free one


def test_nothing_is_suggested_when_no_queue_has_a_free_worker() -> None:
    assert preselected_queue(QUEUES[:1]) == ""
    assert preselected_queue([]) == ""
    assert preselected_queue([], "   ") == ""
