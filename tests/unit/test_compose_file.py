"""docker-compose.yaml: the ClearML server stack + a sessions agent, pinned and health-checked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yaml"
SERVER_PARTS = {"apiserver", "webserver", "fileserver", "async_delete"}
STACK = SERVER_PARTS | {"elasticsearch", "mongo", "redis", "clearml-agent"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_the_whole_stack_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == STACK


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert re.fullmatch(r"\d+(\.\d+)+(-[\w.-]+)?", tag), f"{name}: {image} is not pinned"
    server_images = {compose["services"][n]["image"] for n in SERVER_PARTS}
    assert len(server_images) == 1, "apiserver/webserver/fileserver/async_delete: one release"


def test_ports(compose: dict[str, Any]) -> None:
    ports = {
        port.split(":")[0]
        for service in compose["services"].values()
        for port in service.get("ports", [])
    }
    assert {"8008", "8080", "8081", "10022"} <= ports


def test_health_checks_gate_the_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("apiserver", "webserver", "fileserver", "elasticsearch", "mongo", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for dependency in ("mongo", "redis", "elasticsearch"):
        assert services["apiserver"]["depends_on"][dependency]["condition"] == "service_healthy"
    assert services["clearml-agent"]["depends_on"]["apiserver"]["condition"] == "service_healthy"


def test_volumes_live_under_the_data_dir(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            assert volume.startswith("${CLEARML_DATA_DIR:-./clearml-data}/"), (name, volume)


def test_agent_serves_the_sessions_queue(compose: dict[str, Any]) -> None:
    agent = compose["services"]["clearml-agent"]
    command = " ".join(agent["command"])
    assert "clearml-agent daemon --queue sessions --create-queue" in command
    assert re.search(r"clearml-agent==\d+\.\d+\.\d+", command)
    assert agent["environment"]["CLEARML_API_HOST"] == "http://apiserver:8008"


def test_docker_compose_accepts_it() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed here: the YAML checks above stand in for it")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("`docker compose` is not available here: the YAML checks stand in for it")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
