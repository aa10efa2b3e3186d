"""SessionService and `clearml-tray list` against a server that pages wrongly or sends bad rows.

A real loopback server (tests/support/hostile_server.py) plays a server that ignores `page`,
never stops sending full pages, caps pages below 500, or mixes malformed tasks into its list.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.hostile_server import HostileRequest, HostileServer, Reply, envelope, make_jwt

from tray_app.core.server import sessions as sessions_module
from tray_app.core.server.api import ClearMLClient
from tray_app.core.server.config import ServerConfig
from tray_app.core.server.errors import ClearMLUnavailable
from tray_app.core.server.sessions import MACHINE_METRICS_KEY, SessionService
from tray_app.list_command import run_list

ME = "u-me"
TOKEN = make_jwt({"identity": {"user": ME, "user_name": "Me"}, "exp": 4_000_000_000})


def row(i: int | str, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": f"t{i}",
        "name": f"session {i}",
        "status": "in_progress",
        "system_tags": ["interactive"],
        "user": {"id": ME, "name": "Me"},
        "created": "2026-01-01T00:00:00",
    }
    task.update(extra)
    return task


def server_for(
    rows: Callable[[int, int], list[Any]], workers: Any = None
) -> Callable[[HostileRequest], Reply]:
    """`rows(page, page_size)` → that page's tasks; everything else answered plainly."""

    def handler(request: HostileRequest) -> Reply:
        if request.endpoint == "auth.login":
            return envelope({"token": TOKEN})
        if request.endpoint == "workers.get_all":
            return envelope({"workers": [] if workers is None else workers})
        if request.endpoint == "tasks.get_all_ex":
            body = request.json()
            return envelope({"tasks": rows(int(body.get("page", 0)), int(body["page_size"]))})
        return envelope({})

    return handler


def capped(all_rows: list[Any], cap: int) -> Callable[[int, int], list[Any]]:
    """A real server's paging with `services._mongo.max_page_size = cap`."""

    def rows(page: int, size: int) -> list[Any]:
        size = min(size, cap)
        return all_rows[page * size : (page + 1) * size]

    return rows


def service_for(srv: HostileServer) -> SessionService:
    cfg = ServerConfig(api_server=srv.url, web_server="", files_server="", auth_token=TOKEN)
    return SessionService(ClearMLClient(cfg, max_retries=0))


async def snapshot_of(srv: HostileServer, times: int = 1) -> list[Any]:
    service = service_for(srv)
    try:
        return [await service.snapshot() for _ in range(times)]
    finally:
        await service.client.aclose()


async def test_a_server_that_ignores_page_is_not_asked_forever(caplog):
    everything = [row(i) for i in range(2000)]
    with HostileServer(server_for(lambda page, size: everything[:500])) as srv:
        (snap,) = await snapshot_of(srv)
        assert srv.count("tasks.get_all_ex") == 2
    assert len(snap.sessions) == 500
    assert "ignores paging" in caplog.text


async def test_a_server_that_never_stops_sending_full_pages_is_cut_off(monkeypatch, caplog):
    monkeypatch.setattr(sessions_module, "MAX_PAGES", 6)

    def endless(page: int, size: int) -> list[Any]:
        return [row(f"{page}-{i}") for i in range(size)]

    with HostileServer(server_for(endless)) as srv:
        (snap,) = await snapshot_of(srv)
        assert srv.count("tasks.get_all_ex") == 6
    assert len(snap.sessions) == 6 * 500
    assert "still sent full pages" in caplog.text


async def test_a_server_capping_pages_below_500_does_not_truncate_the_list():
    everything = [row(i) for i in range(250)]
    with HostileServer(server_for(capped(everything, 100))) as srv:
        first, second = await snapshot_of(srv, times=2)
    assert {s.id for s in first.sessions} == {t["id"] for t in everything}
    assert {s.id for s in second.sessions} == {t["id"] for t in everything}


async def test_a_short_list_on_a_capped_server_costs_one_request_once_known():
    everything = [row(i) for i in range(60)]
    with HostileServer(server_for(capped(everything, 100))) as srv:
        service = service_for(srv)
        async with service.client:
            first = await service.snapshot()
            before = srv.count("tasks.get_all_ex")
            second = await service.snapshot()
            assert srv.count("tasks.get_all_ex") == before + 1
            # The list grows past the cap: a first page longer than ever is checked.
            everything.extend(row(i) for i in range(60, 230))
            grown = await service.snapshot()
    assert len(first.sessions) == len(second.sessions) == 60
    assert len(grown.sessions) == 230


MALFORMED: list[Any] = [
    5,
    "a task",
    None,
    [],
    {"id": 5},
    {"id": ["x"]},
    {"id": ""},
    row("b1", tags=5),
    row("b2", tags="abc"),
    row("b3", tags=[1, 2]),
    row("b4", runtime=["a"]),
    row("b5", runtime="x"),
    row("b6", hyperparams=[1]),
    row("b7", hyperparams={"properties": [1]}),
    row("b8", last_metrics=5),
    row("b9", execution="q"),
    row("b10", user=[1]),
    row("b11", name={"x": 1}),
    row("b12", status=7),
]
# Odd values in a sound structure: shown, with the odd field left blank.
ODD: list[Any] = [
    row("o1", created=1e300),
    row("o2", created="garbage", started=float("nan")),
    row("o3", runtime={"gpu_count": "inf", "_ssh_user": 5, "external_tcp_port": 99_999_999}),
    row("o4", hyperparams={"properties": {"external_ssh_port": {"value": {"a": 1}}}}),
    row("o5", last_metrics={MACHINE_METRICS_KEY: [1]}),
    row("o6", execution={"queue": [1, 2]}, last_worker="w"),
]


async def test_malformed_tasks_are_skipped_and_logged_and_the_rest_shown(caplog):
    good = [row("good1"), row("good2")]
    rows = [good[0], *MALFORMED, *ODD, good[1]]
    with HostileServer(server_for(lambda page, size: rows if page == 0 else [], workers=5)) as srv:
        (snap,) = await snapshot_of(srv)
    ids = {s.id for s in snap.sessions}
    assert ids == {"tgood1", "tgood2", *(t["id"] for t in ODD)}
    odd = {s.id: s for s in snap.sessions}
    assert odd["to1"].created is None and odd["to2"].created is None
    assert odd["to3"].ssh_port is None and odd["to3"].gpu_count is None
    assert "malformed task" in caplog.text
    assert "skipped 19 malformed tasks" in caplog.text


async def test_tasks_that_are_not_a_list_are_a_malformed_reply():
    def not_a_list(page: int, size: int) -> Any:
        return {"t1": row(1)}

    with (
        HostileServer(server_for(not_a_list)) as srv,
        pytest.raises(ClearMLUnavailable, match="malformed reply"),
    ):
        await snapshot_of(srv)


def test_list_prints_the_good_sessions_and_no_traceback(tmp_path: Path, capsys, caplog):
    caplog.set_level(logging.CRITICAL)
    rows = [row("good1"), *MALFORMED, *ODD]
    with HostileServer(server_for(lambda page, size: rows if page == 0 else [])) as srv:
        conf = tmp_path / "clearml.conf"
        conf.write_text(
            json.dumps(
                {
                    "api": {
                        "api_server": srv.url,
                        "web_server": srv.url,
                        "files_server": srv.url,
                        "credentials": {"access_key": "AK", "secret_key": "SK"},
                    }
                }
            )
        )
        args = argparse.Namespace(all_users=False, json=False, config_file=str(conf), debug=False)
        code = run_list(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "session good1" in out
    assert "Traceback" not in out + err
