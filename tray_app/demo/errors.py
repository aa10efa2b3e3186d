"""API errors with the ClearML server's codes, subcodes and message format.

Tested in tests/unit/demo/test_emulator_conformance.py (subcodes) and test_emulator.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _format_value(value: Any) -> str:
    if isinstance(value, list | tuple | set):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def format_message(
    base: str, extra: str | None = None, info: Mapping[str, Any] | None = None
) -> str:
    """`Default msg (extra): k=v, k2=(a, b)` as the server builds it."""
    msg = base
    if extra:
        msg += f" ({extra})"
    if info:
        msg += ": " + ", ".join(f"{k}={_format_value(v)}" for k, v in info.items())
    return msg


class ApiError(Exception):
    """An error reply: HTTP status == result_code, plus subcode and message."""

    def __init__(self, code: int, subcode: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.subcode = subcode
        self.msg = msg


def bad_request(subcode: int, base: str, extra: str | None = None, **info: Any) -> ApiError:
    return ApiError(400, subcode, format_message(base, extra, info))


def validation_error(extra: str, **info: Any) -> ApiError:
    return bad_request(12, "Validation error", extra, **info)


def missing_fields(fields: Iterable[str]) -> ApiError:
    """A required field of a request data model is missing: jsonmodels' ValidationError, which
    the server reports as 400/12 (service_repo/validators.py). Almost every endpoint is so."""
    return bad_request(12, "Validation error", "field is required!", fields=list(fields))


def missing_required_fields(fields: Iterable[str]) -> ApiError:
    """An endpoint declared with `required_fields` (projects.create, tasks.get_by_id_ex):
    400/11 `missing_required_fields` (apierrors/errors.conf)."""
    return bad_request(11, "Missing required fields", None, missing=list(fields))


def invalid_task_id(**info: Any) -> ApiError:
    return bad_request(101, "Invalid task id", None, **info)


def invalid_task_status(extra: str | None = None, **info: Any) -> ApiError:
    return bad_request(110, "Invalid task status", extra, **info)


def invalid_queue_id(**info: Any) -> ApiError:
    return bad_request(701, "Invalid queue id", None, **info)


def invalid_project_id(**info: Any) -> ApiError:
    return bad_request(401, "Invalid project id", None, **info)


def invalid_user_id(**info: Any) -> ApiError:
    return bad_request(301, "Invalid user id", None, **info)  # errors.conf 400/301


def endpoint_not_found(name: str, version: str) -> ApiError:
    return ApiError(404, 0, f"Unable to find endpoint for name {name} and version {version}")


def unauthorized(subcode: int, extra: str, detail: str | None = None) -> ApiError:
    msg = f"Unauthorized ({extra})"
    if detail:
        msg += f" ({detail})"
    return ApiError(401, subcode, msg)


def invalid_token(reason: str) -> ApiError:
    return ApiError(
        401, 30, format_message("Invalid token", "invalid jwt token", {"reason": reason})
    )
