"""docker-compose.yaml: the ClearML server stack + a sessions agent, pinned and health-checked,
with separate pre-created credentials for the user and the agent; compose/agent_start.py run
against the emulator (the agent's login check, its health check, the user's clearml.conf)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from support.emulator import EmulatorHandle

from tray_app.core.server.config import load_server_config
from tray_app.demo.bll.workers import register_worker

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
AGENT_START = ROOT / "compose" / "agent_start.py"
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
    published = [port for s in compose["services"].values() for port in s.get("ports", [])]
    assert {port.split(":")[-2] for port in published} == {"8008", "8080", "8081", "10022"}
    # The default keys are public: the ports are on this machine only unless CLEARML_BIND says.
    assert all(port.startswith("${CLEARML_BIND:-127.0.0.1}:") for port in published)


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
            if volume == "./compose:/opt/clearml-tray:ro":
                continue  # the agent's start script, read-only
            assert volume.startswith("${CLEARML_DATA_DIR:-./clearml-data}/"), (name, volume)


def load_agent_start() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_start", AGENT_START)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agent_serves_the_sessions_queue(compose: dict[str, Any]) -> None:
    agent = compose["services"]["clearml-agent"]
    assert agent["command"] == ["python3", "/opt/clearml-tray/agent_start.py"]
    command = load_agent_start().INSTALL_AND_RUN
    assert "clearml-agent daemon --queue sessions --create-queue" in command
    assert re.search(r"clearml-agent==\d+\.\d+\.\d+", command)
    assert agent["environment"]["CLEARML_API_HOST"] == "http://apiserver:8008"


def default(value: str) -> str:
    """The default of a `${VAR:-default}` compose value (must have one)."""
    match = re.fullmatch(r"\$\{(\w+):-(.+)\}", value)
    assert match, f"{value} has no default"
    return match.group(2)


def test_user_and_agent_have_separate_pre_created_credentials(compose: dict[str, Any]) -> None:
    api = compose["services"]["apiserver"]["environment"]
    agent = compose["services"]["clearml-agent"]["environment"]
    prefix = "CLEARML__secure__credentials__"
    agent_key = api[f"{prefix}services_agent__user_key"]
    agent_secret = api[f"{prefix}services_agent__user_secret"]
    user_key = api[f"{prefix}local_user__user_key"]
    user_secret = api[f"{prefix}local_user__user_secret"]
    assert api[f"{prefix}local_user__role"] == "user"  # not admin, and a backend user too
    # The agent logs in with the agent's keys, and knows the user's only to print the conf.
    assert (agent["CLEARML_API_ACCESS_KEY"], agent["CLEARML_API_SECRET_KEY"]) == (
        agent_key,
        agent_secret,
    )
    assert (agent["CLEARML_USER_ACCESS_KEY"], agent["CLEARML_USER_SECRET_KEY"]) == (
        user_key,
        user_secret,
    )
    # Both have working defaults (the first start needs no .env), and they differ: one key on
    # two accounts makes the server log the user in as whichever account it finds first.
    assert default(user_key) != default(agent_key)
    assert default(user_secret) != default(agent_secret)
    assert "EGRTCO8JMSIGI6S39GTP43NFWXDQOW" not in COMPOSE.read_text()  # not the public test user


def test_deleted_files_are_deleted(compose: dict[str, Any]) -> None:
    services = compose["services"]
    key = "CLEARML__services__async_urls_delete__fileserver__url_prefixes"
    for name in ("apiserver", "async_delete"):
        prefixes = yaml.safe_load(services[name]["environment"][key])
        assert prefixes == ["http://localhost:8081", "http://fileserver:8081"], name
    assert services["apiserver"]["environment"]["CLEARML__services__async_urls_delete__enabled"]
    entrypoint = services["async_delete"]["entrypoint"]
    assert entrypoint[entrypoint.index("--fileserver-host") + 1] == "http://fileserver:8081"


def test_agent_healthcheck_runs_the_script(compose: dict[str, Any]) -> None:
    check = compose["services"]["clearml-agent"]["healthcheck"]["test"]
    assert check == ["CMD", "python3", "/opt/clearml-tray/agent_start.py", "--health"]


def _agent_env(emulator: EmulatorHandle, key: str, secret: str) -> dict[str, str]:
    return {
        "CLEARML_API_HOST": emulator.url,
        "CLEARML_API_ACCESS_KEY": key,
        "CLEARML_API_SECRET_KEY": secret,
        "CLEARML_WORKER_ID": "sessions-agent",
        "CLEARML_USER_ACCESS_KEY": emulator.access_key,
        "CLEARML_USER_SECRET_KEY": emulator.secret_key,
        "CLEARML_PUBLIC_API_HOST": emulator.url,
    }


def test_health_check_fails_until_the_worker_is_registered(emulator: EmulatorHandle) -> None:
    env = _agent_env(emulator, emulator.access_key, emulator.secret_key)
    run = [sys.executable, str(AGENT_START), "--health"]
    assert subprocess.run(run, env=env, timeout=60).returncode == 1
    with emulator.state.lock:
        register_worker(emulator.state, "sessions-agent", emulator.state.current_user_id, "")
    assert subprocess.run(run, env=env, timeout=60).returncode == 0
    wrong = _agent_env(emulator, emulator.access_key, "not-the-secret")
    assert subprocess.run(run, env=wrong, timeout=60).returncode == 1
    closed = {**env, "CLEARML_API_HOST": "http://127.0.0.1:9"}
    assert subprocess.run(run, env=closed, timeout=60).returncode == 1


def test_refused_keys_wait_instead_of_a_restart_loop(
    emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_agent_start()
    waited: list[bool] = []
    started: list[list[str]] = []
    env = _agent_env(emulator, emulator.access_key, "not-the-secret")
    code = module.main(
        [],
        env,
        sleep=lambda _s: None,
        execvp=lambda _f, argv: started.append(argv),
        wait_forever=lambda: waited.append(True),
    )
    assert waited == [True] and started == [] and code == 1
    err = capsys.readouterr().err
    assert "refuses the agent's credentials" in err and "not-the-secret" not in err
    env = _agent_env(emulator, emulator.access_key, emulator.secret_key)
    module.main([], env, sleep=lambda _s: None, execvp=lambda _f, argv: started.append(argv))
    assert started == [["bash", "-c", module.INSTALL_AND_RUN]]


def test_the_printed_user_conf_logs_the_tray_in(emulator: EmulatorHandle, tmp_path: Path) -> None:
    env = _agent_env(emulator, "unused", "unused")
    printed = subprocess.run(
        [sys.executable, str(AGENT_START), "--user-conf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    conf = tmp_path / "clearml-local.conf"
    conf.write_text(printed)
    config = load_server_config(conf, env={"HOME": str(tmp_path)})
    assert config.api_server == emulator.url
    assert (config.access_key, config.secret_key) == (emulator.access_key, emulator.secret_key)
    module = load_agent_start()
    module.login(config.api_server, config.access_key, config.secret_key)  # accepted


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
