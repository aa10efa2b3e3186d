"""The server wing's errors: what the user's configuration or the server did wrong.

Exception
 ├── ConfigError               clearml.conf and CLEARML_* (`str()` says which file, line)
 │    ├── ConfigNotFound        no configuration at all: the setup window explains
 │    ├── ConfigInvalid         unreadable, unparsable or impossible values
 │    └── CredentialsMissing    a configuration without keys or token
 ├── ClearMLError              talking to the server (`str()` is a sentence for the user)
 │    ├── ClearMLAuthError      the keys or the token were refused (HTTP 401)
 │    ├── ClearMLUnavailable    no connection, timeouts, gateway errors, not ClearML JSON
 │    │    └── ClearMLOutcomeUnknown   a change was sent and no answer came: it may be done
 │    └── ClearMLRequestError   the server answered with an error envelope
 └── the transport's, raised by an `Exchange` (http.py) and worded by the client:
      ├── TransportTimeout      no answer in time
      ├── TransportFailure      no HTTP reply (refused, reset, TLS, DNS)
      ├── UnsupportedURL        a URL the exchange cannot send to
      └── TooLarge              a reply past the size the client reads

Raised and worded in tests/unit/server/test_api.py, test_api_hostile.py and test_config_errors.py.
"""

from __future__ import annotations

from pathlib import Path

ONBOARDING_TEXT = (
    "ClearML is not configured on this computer yet. To get a configuration:\n"
    "  • run your own server: `docker compose up -d` with the docker-compose.yaml that ships with "
    "ClearML Session Tray, open http://localhost:8080, create credentials under Settings → "
    "Workspace, then run `clearml-init` and paste them;\n"
    "  • or use the hosted server: sign up at https://app.clear.ml, create credentials, then run "
    "`clearml-init`;\n"
    "  • or point the tray at another clearml.conf in Settings;\n"
    "  • or try the built-in demo server (`clearml-tray --demo`)."
)


class ConfigError(Exception):
    """Any problem with the ClearML client configuration; `str()` is user-facing."""


class ConfigNotFound(ConfigError):
    """No configuration file and no credentials in the environment."""

    def __init__(self, message: str, searched: tuple[Path, ...] = ()) -> None:
        super().__init__(message)
        self.searched = searched
        self.onboarding = ONBOARDING_TEXT


class ConfigInvalid(ConfigError):
    """A configuration file that cannot be read or parsed, or that holds impossible values."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}" + (f", line {line}" if line is not None else "") + ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.reason = message


class CredentialsMissing(ConfigError):
    """A configuration was found but it holds no access key / secret key (or token)."""


class ClearMLError(Exception):
    """Any failure talking to the ClearML server; `str()` is a user-facing sentence."""

    def __init__(self, message: str, *, server: str = "") -> None:
        super().__init__(message)
        self.server = server


class ClearMLAuthError(ClearMLError):
    """The server rejected the credentials or the token (HTTP 401)."""

    def __init__(
        self,
        message: str,
        *,
        server: str = "",
        access_key: str = "",
        result_subcode: int = 0,
        result_msg: str = "",
    ) -> None:
        super().__init__(message, server=server)
        self.access_key = access_key
        self.result_subcode = result_subcode
        self.result_msg = result_msg


class ClearMLUnavailable(ClearMLError):
    """The server cannot be reached or does not answer like a ClearML API server."""


class ClearMLOutcomeUnknown(ClearMLUnavailable):
    """A change (stop, delete…) was sent and no answer came back (a gateway error, a timeout):
    the server may have made it. Never sent again blindly: the task's state decides."""

    def __init__(self, message: str, *, server: str = "", endpoint: str = "") -> None:
        super().__init__(message, server=server)
        self.endpoint = endpoint


class ClearMLRequestError(ClearMLError):
    """The server answered with an error envelope (e.g. 400/101 "Invalid task id")."""

    def __init__(
        self,
        message: str,
        *,
        server: str,
        endpoint: str,
        result_code: int,
        result_subcode: int,
        result_msg: str,
        http_status: int,
    ) -> None:
        super().__init__(message, server=server)
        self.endpoint = endpoint
        self.result_code = result_code
        self.result_subcode = result_subcode
        self.result_msg = result_msg
        self.http_status = http_status


class TooLarge(Exception):
    """From an exchange: the reply went past `max_body_bytes` (it was not read further)."""


class TransportTimeout(Exception):
    """From an exchange: no answer within the client's per-operation timeout."""


class TransportFailure(Exception):
    """From an exchange: no HTTP reply (refused, reset, TLS, DNS); `str()` says why, briefly."""


class UnsupportedURL(Exception):
    """From an exchange: the server URL is not one it can send to."""
