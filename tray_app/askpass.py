"""SSH_ASKPASS helper: print the session password named by CLEARML_TRAY_ASKPASS_KEY.

ssh runs it when it needs the password for our master connection. It reads the keyring (or the
visible fallback store) and prints nothing else; a missing password is an error on stderr.
"""

from __future__ import annotations

import os
import sys

from tray_app.core.secrets import SecretStore, SecretStoreError
from tray_app.core.ssh_master import ASKPASS_KEY_ENV


def main() -> int:
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
