"""Users (apiserver/bll/user/): a new user with an access key, a user's display name.

Tested in tests/unit/demo/test_emulator.py (the seeded users log in) and
test_emulator_tasks.py (users.get_all_ex).
"""

from __future__ import annotations

from tray_app.demo.state import Credential, Doc, EmulatorState


def add_user(
    state: EmulatorState,
    name: str,
    access_key: str,
    secret_key: str,
    *,
    user_id: str | None = None,
    role: str = "user",
    email: str | None = None,
) -> Doc:
    uid = user_id or state.seeded_id()
    given, _, family = name.partition(" ")
    user: Doc = {
        "id": uid,
        "name": name,
        "given_name": given,
        "family_name": family,
        "company": state.company_id,
        "role": role,
        "created": state.now_iso(),
        "email": email or f"{given.lower()}@example.com",
        "avatar": None,
        "preferences": {},
    }
    state.users[uid] = user
    state.credentials[access_key] = Credential(access_key, secret_key, uid, "", state.now_iso())
    return user


def user_name(state: EmulatorState, user_id: str | None) -> str:
    user = state.users.get(user_id or "")
    return str(user["name"]) if user else ""


__all__ = ["add_user", "user_name"]
