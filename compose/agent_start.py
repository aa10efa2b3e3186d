"""Start script of docker-compose.yaml's `clearml-agent` container (Python standard library only).

    python3 agent_start.py              check both logins, then install and run the agent
    python3 agent_start.py --user-conf  print the user's clearml.conf (for the tray, the SDK)
    python3 agent_start.py --health     exit 0 only while the agent's worker is registered

The apiserver creates both accounts at its start from `CLEARML__secure__credentials__…`
settings (clearml-server `apiserver/mongo/initialize/__init__.py`): `services_agent` (admin)
for this agent, `local_user` (a normal user) for you. Keys come from `.env` or the compose
file's local-only defaults, so the very first `docker compose up -d --wait` has working keys.

When the server refuses the agent's keys the script says so and waits instead of exiting: an
exit would make Docker restart the container, re-running apt and pip in a loop against a
server that keeps answering 401. The health check then reports the container unhealthy.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence

RETRY_S = 5.0
CONNECT_ATTEMPTS = 60  # five minutes for the apiserver to answer at all

INSTALL_AND_RUN = (
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
    "git openssh-server curl >/dev/null && "
    "pip install -q clearml-agent==2.0.7 && "
    "exec clearml-agent daemon --queue sessions --create-queue --foreground"
)


class LoginRefused(Exception):
    """The server answered, and said no (wrong key or secret)."""


def _post(api: str, endpoint: str, key: str, secret: str, body: Mapping[str, object]) -> dict:
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    request = urllib.request.Request(
        f"{api.rstrip('/')}/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise LoginRefused(f"{endpoint}: HTTP 401") from exc
        raise


def login(api: str, key: str, secret: str) -> None:
    """`auth.login` with these keys; LoginRefused on 401, OSError when unreachable."""
    if not key or not secret:
        raise LoginRefused("no access key or secret key is set")
    _post(api, "auth.login", key, secret, {})


def login_when_up(
    api: str,
    key: str,
    secret: str,
    *,
    attempts: int = CONNECT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Log in, waiting while the apiserver does not answer yet. LoginRefused / OSError."""
    for attempt in range(attempts):
        try:
            login(api, key, secret)
            return
        except LoginRefused:
            raise
        except (OSError, ValueError):
            if attempt == attempts - 1:
                raise
            sleep(RETRY_S)


def user_conf(env: Mapping[str, str]) -> str:
    """The user's clearml.conf: the published ports on this machine and the user's keys."""
    api = env.get("CLEARML_PUBLIC_API_HOST", "http://localhost:8008")
    web = env.get("CLEARML_PUBLIC_WEB_HOST", "http://localhost:8080")
    files = env.get("CLEARML_PUBLIC_FILES_HOST", "http://localhost:8081")
    key = env.get("CLEARML_USER_ACCESS_KEY", "")
    secret = env.get("CLEARML_USER_SECRET_KEY", "")
    return (
        "# The local ClearML server of docker-compose.yaml (user local_user).\n"
        "api {\n"
        f"    api_server: {api}\n"
        f"    web_server: {web}\n"
        f"    files_server: {files}\n"
        "    credentials {\n"
        f'        "access_key" = "{key}"\n'
        f'        "secret_key" = "{secret}"\n'
        "    }\n"
        "}\n"
    )


def healthy(env: Mapping[str, str]) -> bool:
    """The agent's worker is registered and reported within the last two minutes."""
    try:
        data = _post(
            env["CLEARML_API_HOST"],
            "workers.get_all",
            env["CLEARML_API_ACCESS_KEY"],
            env["CLEARML_API_SECRET_KEY"],
            {"last_seen": 120},
        )
    except (OSError, ValueError, KeyError, LoginRefused):
        return False
    workers = (data.get("data") or {}).get("workers") or []
    return any(w.get("id") == env.get("CLEARML_WORKER_ID") for w in workers)


def main(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    execvp: Callable[[str, list[str]], object] = os.execvp,
    wait_forever: Callable[[], None] | None = None,
) -> int:
    if "--user-conf" in argv:
        sys.stdout.write(user_conf(env))
        return 0
    if "--health" in argv:
        return 0 if healthy(env) else 1
    api = env["CLEARML_API_HOST"]
    problem = ""
    try:
        login_when_up(
            api, env["CLEARML_API_ACCESS_KEY"], env["CLEARML_API_SECRET_KEY"], sleep=sleep
        )
    except LoginRefused as exc:
        problem = (
            f"The server at {api} refuses the agent's credentials ({exc}). The apiserver "
            "creates them at its start from CLEARML_AGENT_ACCESS_KEY / CLEARML_AGENT_SECRET_KEY "
            "(.env or the compose defaults): after changing them run `docker compose up -d` so "
            "that both containers get the same keys."
        )
    except (OSError, ValueError) as exc:
        problem = f"The server at {api} does not answer ({exc})."
    if problem:
        print(f"clearml-agent not started: {problem}", file=sys.stderr, flush=True)
        # Waiting, not exiting: see the module docstring. The health check fails meanwhile.
        (wait_forever or (lambda: _wait_forever(sleep)))()
        return 1
    try:
        login(api, env.get("CLEARML_USER_ACCESS_KEY", ""), env.get("CLEARML_USER_SECRET_KEY", ""))
    except (LoginRefused, OSError, ValueError) as exc:
        print(
            f"warning: the server refuses the user's credentials ({exc}); the clearml.conf "
            "that `--user-conf` prints will not work until CLEARML_USER_ACCESS_KEY / "
            "CLEARML_USER_SECRET_KEY match on both containers.",
            file=sys.stderr,
            flush=True,
        )
    print("credentials accepted; installing and starting clearml-agent", flush=True)
    execvp("bash", ["bash", "-c", INSTALL_AND_RUN])
    return 0


def _wait_forever(sleep: Callable[[float], None]) -> None:
    while True:
        sleep(3600)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
