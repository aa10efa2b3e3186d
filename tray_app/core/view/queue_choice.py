"""Which queue the New session dialog starts on: the one last launched on, else one free now."""

from __future__ import annotations

from collections.abc import Sequence

from tray_app.core.server.models import QueueInfo


def preselected_queue(queues: Sequence[QueueInfo], last_used: str = "") -> str:
    """The queue to put in an empty Queue field ("" = none worth suggesting).

    The last used queue wins while the server still has it (or before the list has loaded:
    the user's habit is a better guess than nothing); a queue deleted since falls back to an
    interactive queue with a free worker, else any queue with a free worker.
    """
    last = last_used.strip()
    if last and (not queues or any(q.name == last for q in queues)):
        return last
    free = [q for q in queues if q.free_workers > 0]
    interactive = [q for q in free if q.interactive]
    best = (interactive or free)[:1]
    return best[0].name if best else ""
