"""The tunnel wing's errors.

    OSError
     └── UnsafeSshValue    a value (from the server or a preset) that would break the ssh
                           config if written; `str()` says which and why

A launch or attach that cannot start is not an exception: `launch.prepare` returns a
`Prepared` with ok=False and the reason in words, before any process exists. A child that fails
is an event (`parser.Error`, a non-zero exit) that the reducer turns into a notice.

Raised in tests/unit/tunnels/test_ssh_config.py.
"""

from __future__ import annotations


class UnsafeSshValue(OSError):
    """A value that cannot be written into an ssh config safely; `str()` says which and why.

    An OSError so that every caller's "could not write the SSH config" handling shows it.
    """
