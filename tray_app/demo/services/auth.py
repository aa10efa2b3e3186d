"""auth.*: login with key/secret or a token, credentials (apiserver/services/auth.py).

Tested in tests/unit/demo/test_emulator.py (login, tokens, key and token failures).
"""

from __future__ import annotations

import jwt

from tray_app.demo.errors import bad_request, validation_error
from tray_app.demo.query import require
from tray_app.demo.services.base import Call, Doc, endpoint
from tray_app.demo.state import Credential, EmulatorState


def issue_token(state: EmulatorState, user_id: str, expiration_sec: float | None = None) -> str:
    user = state.users[user_id]
    now = state.now().timestamp()
    lifetime = state.token_lifetime if expiration_sec is None else float(expiration_sec)
    claims = {
        "auth_type": "Bearer",
        "identity": {
            "user": user_id,
            "company": state.company_id,
            "role": user.get("role", "user"),
            "user_name": user["name"],
            "company_name": state.company_name,
        },
        "session_id": state.new_id(),
        "iat": int(now),
        "exp": int(now + lifetime),
        "api_version": state.api_version,
        "server_version": state.server_version,
        "server_build": state.server_build,
        "feature_set": "basic",
    }
    return jwt.encode(claims, state.jwt_secret, algorithm="HS256")


def verify_token(state: EmulatorState, token: str) -> str:
    """The user id a Bearer token names, or ApiError 401/30."""
    from tray_app.demo.errors import invalid_token

    try:
        # exp is checked against the emulator's clock below; pyjwt would check iat against the
        # real clock and reject every token issued after `advance_time`.
        claims = jwt.decode(
            token,
            state.jwt_secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise invalid_token("Signature verification failed") from exc
    except jwt.PyJWTError as exc:
        raise invalid_token(str(exc) or "Invalid token") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= state.now().timestamp():
        raise invalid_token("Signature has expired")
    user_id = (claims.get("identity") or {}).get("user")
    if user_id not in state.users:
        raise invalid_token("Unknown user")
    return str(user_id)


@endpoint("auth.login")
def auth_login(call: Call, body: Doc) -> Doc:
    exp = body.get("expiration_sec")
    if exp is not None:
        try:
            exp_i = int(exp)
        except (TypeError, ValueError) as exc:
            raise validation_error("invalid expiration_sec", expiration_sec=exp) from exc
        if exp_i <= 0 or exp_i > 31536000:
            raise validation_error(
                "expiration_sec must be between 1 and 31536000", expiration_sec=exp_i
            )
        return {"token": issue_token(call.state, call.user_id or "", exp_i)}
    return {"token": issue_token(call.state, call.user_id or "")}


@endpoint("auth.create_credentials")
def auth_create_credentials(call: Call, body: Doc) -> Doc:
    state = call.state
    access = "EMU" + state.new_id()[:27].upper()
    secret = state.new_id() + state.new_id()[:18]
    label = str(body.get("label") or "")
    state.credentials[access] = Credential(
        access, secret, call.user_id or "", label, state.now_iso()
    )
    creds: Doc = {"access_key": access, "secret_key": secret}
    if label:
        creds["label"] = label
    return {"credentials": creds}


@endpoint("auth.get_credentials")
def auth_get_credentials(call: Call, body: Doc) -> Doc:
    return {
        "credentials": [
            {"access_key": c.access_key, "label": c.label, "last_used": None, "created": c.created}
            for c in call.state.credentials.values()
            if c.user_id == call.user_id
        ]
    }


@endpoint("auth.revoke_credentials")
def auth_revoke_credentials(call: Call, body: Doc) -> Doc:
    require(body, "access_key")
    cred = call.state.credentials.get(body["access_key"])
    if cred is None or cred.user_id != call.user_id:
        raise bad_request(61, "Access key not found for user", None, access_key=body["access_key"])
    del call.state.credentials[body["access_key"]]
    return {"revoked": 1}
