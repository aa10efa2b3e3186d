"""Print what the real ClearML SDK resolves from the current HOME and environment, as JSON.

Run in a subprocess (the SDK reads its config files once per process, at import time):
`python tests/support/sdk_config_oracle.py`. Used by the config differential tests.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    result: dict[str, object] = {}
    try:
        from clearml.backend_api.session.defs import (
            ENV_ACCESS_KEY,
            ENV_AUTH_TOKEN,
            ENV_HOST_VERIFY_CERT,
            ENV_SECRET_KEY,
        )
        from clearml.backend_api.session.session import Session
        from clearml.backend_config.converters import strtobool
        from clearml.config import ConfigWrapper

        config = ConfigWrapper._init()
        result["api_server"] = Session.get_api_server_host(config)
        try:
            result["web_server"] = Session.get_app_server_host(config)
        except Exception as exc:  # no web server: the SDK cannot build a session
            result["web_server"] = None
            result["error"] = f"{type(exc).__name__}: {exc}"
        try:
            result["files_server"] = Session.get_files_server_host(config)
        except Exception as exc:  # raised only where the SDK uploads or downloads a file
            result["files_server"] = None
            result["files_server_error"] = f"{type(exc).__name__}: {exc}"
        # The same expressions as Session._connect and
        # backend_api.utils.get_http_session_with_retry.
        token = ENV_AUTH_TOKEN.get()
        if token:
            result.update(access_key="", secret_key="", auth_token=token)
        else:
            result["access_key"] = ENV_ACCESS_KEY.get(
                default=(config.get("api.credentials.access_key", None) or Session.default_key)
            )
            result["secret_key"] = ENV_SECRET_KEY.get(
                default=(config.get("api.credentials.secret_key", None) or Session.default_secret)
            )
            result["auth_token"] = ""
        verify = ENV_HOST_VERIFY_CERT.get(default=config.get("api.verify_certificate", True))
        try:
            result["verify"] = bool(strtobool(verify) if isinstance(verify, str) else verify)
        except (ValueError, AttributeError):
            result["verify"] = verify
    except Exception as exc:  # the differential test compares "fails" with "fails"
        result["error"] = f"{type(exc).__name__}: {exc}"
    json.dump(result, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
