"""SSH_ASKPASS helper: print the session password named by CLEARML_TRAY_ASKPASS_KEY.

ssh runs it when it needs the password: for the editor's master connection, and for
clearml-session's own ssh (the shim in core.ssh_master). It reads the keyring (or the visible
fallback store) and prints nothing else; a missing password is an error on stderr. It answers
password prompts only: a key's passphrase or a host key question gets no answer (ssh then
skips the key, or refuses the host, as the user did not agree to it).
"""

from __future__ import annotations

import os
import sys

from tray_app.core.settings.errors import SecretStoreError
from tray_app.core.settings.secrets import SecretStore
from tray_app.core.tunnels.ssh_master import ASKPASS_KEY_ENV


def main() -> int:
    prompt = " ".join(sys.argv[1:])
    if prompt and "password" not in prompt.lower():
        print(f"clearml-tray askpass: not a password prompt: {prompt.strip()}", file=sys.stderr)
        return 1
    name = os.environ.get(ASKPASS_KEY_ENV, "")
    if not name:
        print(f"clearml-tray askpass: {ASKPASS_KEY_ENV} is not set", file=sys.stderr)
        return 1
    try:
        password = SecretStore.for_reading(name).get(name)
    except SecretStoreError as exc:  # e.g. the keyring is locked: ssh shows this line
        print(f"clearml-tray askpass: {exc}", file=sys.stderr)
        return 1
    if not password:
        print(f"clearml-tray askpass: no stored password for {name}", file=sys.stderr)
        return 1
    sys.stdout.write(password + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
