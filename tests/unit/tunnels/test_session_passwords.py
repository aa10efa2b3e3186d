"""The one answer a session password may give: its own prompt, its own ssh, once."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tray_app.core.instance_requests import InstanceRequests
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.tunnels.askpass_words import looks_like_password_prompt, password_prompt
from tray_app.core.tunnels.session_passwords import SessionPasswords

CLI_SSH = ["/usr/bin/ssh", "-o", "NumberOfPasswordPrompts=1", "-C", "root@10.0.0.5", "-p",
           "10022", "-L", "8022:localhost:10022"]  # fmt: skip
JUMP_SSH = ["/usr/bin/ssh", "-l", "root", "-p", "10022", "-W", "[10.0.0.5]:10022", "10.0.0.5"]


def _grants(processes: dict[int, Sequence[str]]) -> SessionPasswords:
    return SessionPasswords(argv_of=processes.get)


@pytest.mark.parametrize(
    "prompt",
    ["root@10.0.0.5's password: ", "(root@10.0.0.5) Password: ", "root@10.0.0.5's password:"],
)
def test_the_sessions_own_prompt_is_answered_once(prompt: str) -> None:
    grants = _grants({7: CLI_SSH})
    token = grants.new("s3cret", user="root", host="10.0.0.5", port=10022)
    assert grants.answer(token, prompt, 7).password == "s3cret"
    again = grants.answer(token, prompt, 7)  # a second prompt: the password was wrong
    assert again.password is None and again.why == "no session password is waiting for this ssh"


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "Enter passphrase for key '/home/u/.ssh/password_key': ",
        "Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
        "(admin@10.0.0.5) Password: ",  # another user
        "root@10.0.0.6's password: ",  # another host
        "root@10.0.0.5's password: root@10.0.0.5's password: ",
        "Password: ",  # a bare keyboard-interactive prompt: whose?
        "(root@10.0.0.5) Verification code: ",
    ],
)
def test_anything_but_that_prompt_gets_nothing(prompt: str) -> None:
    grants = _grants({7: CLI_SSH})
    token = grants.new("s3cret", user="root", host="10.0.0.5", port=10022)
    assert grants.answer(token, prompt, 7).password is None
    assert len(grants) == 1  # still there for the real prompt
    assert grants.answer(token, "root@10.0.0.5's password: ", 7).password == "s3cret"


def test_a_proxy_hop_gets_nothing_even_for_the_same_user_and_host() -> None:
    """ProxyJump's `ssh -W` to the very machine (or a ProxyCommand ssh): never answered."""
    grants = _grants({8: JUMP_SSH, 9: ["ssh", "-p", "22", "root@10.0.0.5"], 10: ["ssh"]})
    token = grants.new("s3cret", user="root", host="10.0.0.5", port=10022)
    hop = grants.answer(token, "root@10.0.0.5's password: ", 8)
    assert hop.password is None and "ProxyJump" in hop.why
    assert grants.answer(token, "root@10.0.0.5's password: ", 9).password is None  # port 22
    assert grants.answer(token, "root@10.0.0.5's password: ", 10).password is None  # no host
    assert grants.answer(token, "root@10.0.0.5's password: ", 11).password is None  # gone
    assert len(grants) == 1


def test_the_master_login_is_checked_against_its_alias_and_the_prompts_host() -> None:
    master = ["ssh", "-F", "/h/.ssh/config", "-o", "ControlMaster=yes", "-p", "8022", "-N", "-f",
              "clearml-01234567"]  # fmt: skip
    grants = _grants({5: master})
    token = grants.new(
        "pw", user="root", host="clearml-01234567", port=8022, prompt_host="127.0.0.1"
    )
    assert grants.answer(token, "root@clearml-01234567's password: ", 5).password is None
    assert grants.answer(token, "(root@127.0.0.1) Password: ", 5).password == "pw"


def test_a_reserved_token_answers_only_once_granted_and_revoking_ends_it() -> None:
    grants = _grants({7: CLI_SSH})
    token = grants.reserve()
    assert grants.answer(token, "root@10.0.0.5's password: ", 7).password is None
    assert grants.grant(token, "pw", user="root", host="10.0.0.5", port=10022)
    grants.revoke(token)
    assert not grants.grant(token, "pw", user="root", host="10.0.0.5", port=10022)
    assert grants.answer(token, "root@10.0.0.5's password: ", 7).password is None


def test_the_helpers_first_look_knows_the_two_forms_only() -> None:
    assert looks_like_password_prompt("root@127.0.103.4's password: ")
    assert looks_like_password_prompt("(root@127.0.0.1) Password: ")
    assert not looks_like_password_prompt("Enter passphrase for key '/k/password': ")
    assert not looks_like_password_prompt("")
    assert not password_prompt("root@h's password: ", "", "h")


def test_the_instance_request_answers_with_the_password_or_why_not() -> None:
    grants = _grants({7: CLI_SSH})
    token = grants.new("s3cret", user="root", host="10.0.0.5", port=10022)
    requests = InstanceRequests(
        snapshot=lambda: None,
        status=lambda: PollStatus(TrayState.OK),
        connect=lambda snapshot, ref: (False, ""),
        show=lambda: pytest.fail("an askpass request must not show the menu"),
        askpass=grants.ask,
    )
    refused = requests.handle({"cmd": "askpass", "token": token, "prompt": "Password:", "pid": 7})
    assert not refused.ok and "password" not in refused.extra
    reply = requests.handle(
        {"cmd": "askpass", "token": token, "prompt": "root@10.0.0.5's password: ", "pid": 7}
    )
    assert reply.ok and reply.extra == {"password": "s3cret"}
    assert not requests.handle({"cmd": "askpass", "token": 5, "prompt": None}).ok
