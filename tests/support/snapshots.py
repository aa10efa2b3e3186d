"""Sample snapshots with every field set (and a few left empty), for round-trip tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tray_app.core.server.models import Session, SessionState, Snapshot


def full_snapshot(fetched_at: datetime | None = None, *, all_users: bool = True) -> Snapshot:
    now = fetched_at or datetime.now(UTC)
    mine = Session(
        id="0123456789abcdef0123456789abcdef",
        name="gpu box «ü» <b>x</b>",
        status="in_progress",
        state=SessionState.RUNNING,
        status_message="",
        project_id="p1",
        project_name="DevOps",
        queue_id="q1",
        queue_name="gpu-a100",
        creator_id="u1",
        creator_name="Me",
        is_own=True,
        tags=("interactive", "a b"),
        created=now - timedelta(days=2),
        started=now - timedelta(days=1, hours=2, minutes=5),
        last_update=now - timedelta(seconds=7),
        status_changed=now - timedelta(days=1),
        worker_id="worker:0",
        hostname="box-1",
        private_ip="10.0.0.5",
        public_address="127.0.103.5",
        ssh_port=10022,
        ssh_user="root",
        jupyter_port=8888,
        vscode_port=None,
        jupyter_url="http://127.0.103.5:8888/?token=t",
        cpu_cores=32,
        ram_total_gb=251.5,
        gpu_count=2,
        gpu_type="A100",
        gpu_memory="80 GB",
        cpu_percent=41,  # an int where a float may be: printed back as an int
        ram_used_gb=12.3,
        gpu_percent=50.0,
        gpu_memory_used_gb=None,
        web_url="http://web/projects/p1/experiments/0123",
    )
    starting = Session(
        id="1111111111aaaaaaaaaa222222222222",
        name="Interactive Session",
        status="in_progress",
        state=SessionState.STARTING,
        creator_id="u1",
        creator_name="Me",
        queue_name="sessions",
        created=now - timedelta(minutes=3),
    )
    theirs = Session(
        id="fedcba9876543210fedcba9876543210",
        name="Bob's",
        status="queued",
        state=SessionState.QUEUED,
        creator_id="u2",
        creator_name="Bob",
        is_own=False,
        queue_name="sessions",
        created=now - timedelta(minutes=3),
    )
    sessions = (mine, starting, theirs) if all_users else (mine, starting)
    return Snapshot(
        sessions=sessions,
        fetched_at=now,
        user_id="u1",
        user_name="Me",
        server="http://127.0.0.1:9",
        web_server="http://127.0.0.1:9",
        all_users=all_users,
    )
