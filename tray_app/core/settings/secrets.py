"""Secrets in the system keyring (service `clearml-tray`), with a visible file fallback.

The system backend (`keyring.get_keyring()`) is preferred. When there is none (the `fail` / `null`
backends, a chainer with nothing to chain) or it refuses a secret (locked, D-Bus error…), the
secret goes to a JSON file readable only by the user (mode 600) and the store says so loudly:
`is_fallback`, `warning` (a sentence for the UI) and a WARNING log record. Keyring failures are
put in words (`keyring_problem`: locked, no keyring service on the bus, …), not raw errors.

A small index (`secrets-index.json`, names → backend, never values) remembers where each secret
went, so a read goes to the right place even after the system keyring comes back.
Every value that passes through the store is registered with `redact` so it never reaches a log.

What is kept here is what the user asked to keep: a preset's fixed password (and an API
secret). Session passwords never come here: the tray holds them in memory only
(core/tunnels/session_passwords.py); `remove_stale_session_passwords()` deletes those an
earlier version stored, in a thread nobody waits for (a locked keyring may never answer).

What the store reports is the backend that really takes a secret: keyring's chainer (what it
builds when several backends are installed) writes to its first backend, so that one is named,
and judged. A backend that stores secrets unencrypted (keyrings.alt's `PlaintextKeyring`, when
it is the one in use) is used, but reported: `is_secure` is False and `warning` says where the
secrets lie in plain text.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import keyring.core
import keyring.errors
import platformdirs

from tray_app.core.atomic import atomic_write_text
from tray_app.core.redact import register_secret
from tray_app.core.settings.errors import SecretStoreError

SERVICE = "clearml-tray"
APP_NAME = "clearml-tray"
FALLBACK_FILE_NAME = "secrets.json"
INDEX_FILE_NAME = "secrets-index.json"

KEYRING = "keyring"
FILE = "file"

log = logging.getLogger(__name__)


def api_secret_key(profile: str) -> str:
    """Keyring entry name of the ClearML API secret of server profile `profile`."""
    return f"api-secret/{profile}"


def session_password_key(task_id: str) -> str:
    """Keyring entry name an earlier version gave the SSH password of session `task_id` (only
    to remove what it left)."""
    return f"session-password/{task_id}"


def preset_password_key(preset_name: str) -> str:
    """Keyring entry name of the fixed SSH password of preset `preset_name`."""
    return f"preset-password/{preset_name}"


@dataclass(frozen=True, slots=True)
class _Location:
    backend: str  # KEYRING or FILE
    keyring_backend: str = ""  # class path of the system backend, for the user's information


def _backend_name(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def effective_backend(backend: Any) -> Any:
    """The backend that takes a secret written to `backend`: a chainer's first (by keyring's
    priority, the order it tries them in), else `backend` itself."""
    if isinstance(backend, keyring.backends.chainer.ChainerBackend):
        chained = list(backend.backends)
        return chained[0] if chained else backend
    return backend


def backend_title(backend: Any) -> str:
    """A backend's name for people ("SecretService Keyring"), with its class path."""
    name = getattr(type(backend), "name", "") or type(backend).__qualname__
    return f"{name} ({_backend_name(backend)})"


def unusable_reason(backend: Any) -> str | None:
    """Why `backend` cannot hold secrets (None = it looks usable)."""
    if isinstance(backend, keyring.backends.fail.Keyring):
        return "no system keyring backend is available"
    if isinstance(backend, keyring.backends.null.Keyring):
        return "the keyring is disabled (null backend)"
    if isinstance(backend, keyring.backends.chainer.ChainerBackend) and not backend.backends:
        return "no system keyring backend is available"
    return None


# Backends that write secrets to disk without encryption (module, class name).
_PLAINTEXT_BACKENDS = frozenset({("keyrings.alt.file", "PlaintextKeyring")})


def insecure_reason(backend: Any) -> str | None:
    """Why `backend` holds secrets in plain text (None = it encrypts them, as far as we know).
    Only the backend that takes the secrets counts: a chainer that merely also holds a
    plaintext backend after GNOME Keyring writes to GNOME Keyring."""
    item = effective_backend(backend)
    cls = type(item)
    if (cls.__module__, cls.__qualname__) in _PLAINTEXT_BACKENDS:
        where = getattr(item, "file_path", "") or "a file"
        return (
            f"the keyring backend in use ({_backend_name(item)}) stores them unencrypted in {where}"
        )
    return None


def keyring_problem(exc: BaseException) -> str:
    """What went wrong with the system keyring, in words for the user (not the raw error)."""
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    # secretstorage's SecretServiceNotAvailableException (keyring wraps it in an InitError), or
    # keyring's own check for the daemon.
    if any(
        type(e).__name__ == "SecretServiceNotAvailableException"
        or "neither running nor activatable" in str(e)
        for e in chain
    ):
        return "no keyring service (such as GNOME Keyring or KWallet) runs on the D-Bus session bus"
    if isinstance(exc, keyring.errors.KeyringLocked):
        return "the keyring is locked"
    if isinstance(exc, keyring.errors.InitError):
        return (
            "the keyring could not be opened: there is no default keyring, or its unlock "
            "prompt could not be shown"
        )
    return f"the keyring reported: {exc or type(exc).__name__}"


UNLOCK_HINT = (
    "Unlock it (log in to your desktop session again, or open your keyring manager such as "
    "Passwords and Keys) and try again."
)


class SecretStore:
    """get / set / delete secrets by name; see the module docstring for the fallback rules.

    One per process, built once and passed to whoever needs it (its lock orders the
    read-modify-write of the index and the fallback file). Building it is free: the keyring
    backend is chosen on first use, which callers do off the event loop.
    """

    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        fallback_path: str | os.PathLike[str] | None = None,
        index_path: str | os.PathLike[str] | None = None,
        service: str = SERVICE,
    ) -> None:
        directory = Path(data_dir) if data_dir else platformdirs.user_data_path(APP_NAME)
        self.fallback_path = (
            Path(fallback_path) if fallback_path else directory / FALLBACK_FILE_NAME
        )
        self.index_path = Path(index_path) if index_path else directory / INDEX_FILE_NAME
        self.service = service
        self._lock = threading.RLock()
        self._given = backend
        self._resolved = False
        self._chosen: keyring.backend.KeyringBackend | None = None
        self._why: str | None = None

    def _resolve(self) -> None:
        """Choose the backend (once): keyring may import every backend and ask D-Bus."""
        if self._resolved:
            return
        with self._lock:
            if self._resolved:
                return
            backend, reason = self._given, None
            if backend is None:
                try:
                    backend = keyring.get_keyring()
                except Exception as exc:  # a broken keyring config must not stop the app
                    reason = keyring_problem(exc)
            self._chosen = backend
            self._why = reason if reason is not None else unusable_reason(backend)
            self._resolved = True
            if self._why is not None:
                self._announce()
            if self._file_entries():
                self._ensure_reason("some secrets were stored in the fallback file earlier")

    @property
    def _backend(self) -> keyring.backend.KeyringBackend | None:
        self._resolve()
        return self._chosen

    @property
    def _reason(self) -> str | None:
        self._resolve()
        return self._why

    # --- public state ---------------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        """Class path of the system keyring backend that takes the secrets ("" if none could
        be loaded): a chainer's first backend, not the chainer."""
        if self._backend is None:
            return ""
        return _backend_name(effective_backend(self._backend))

    def describe(self) -> str:
        """Where secrets go, in a sentence for the About box (it may ask D-Bus: call it off
        the event loop)."""
        warning = self.warning
        if warning is not None:
            return warning
        assert self._backend is not None
        return (
            "Passwords you ask the tray to keep (a preset's fixed password) are in the system "
            f"keyring: {backend_title(effective_backend(self._backend))}. Session passwords "
            "are kept in the tray's memory only."
        )

    @property
    def is_fallback(self) -> bool:
        """True when some secrets are (or new ones would be) kept in the plain fallback file."""
        return self._reason is not None

    @property
    def is_secure(self) -> bool:
        """False when secrets are (or would be) kept anywhere unencrypted."""
        return self._reason is None and self._insecure_backend() is None

    def _insecure_backend(self) -> str | None:
        if self._backend is None:
            return None
        try:
            return insecure_reason(self._backend)
        except Exception:  # a broken backend object: judged by its use, not here
            return None

    @property
    def warning(self) -> str | None:
        """A sentence for the UI when secrets are not safely kept (fallback file or a
        plaintext backend), else None."""
        if self._reason is None:
            insecure = self._insecure_backend()
            if insecure is None:
                return None
            return (
                f"Secrets are not stored securely: {insecure}. Anyone who can read that file "
                "can read them. Install or unlock a system keyring (e.g. GNOME Keyring or "
                "KWallet) and remove PYTHON_KEYRING_BACKEND / the keyringrc that selects it."
            )
        return (
            f"Secrets are not in your system keyring ({self._reason}). They are stored in "
            f"{self.fallback_path}, a file only your user account can read, but not encrypted. "
            "Install or unlock a keyring (e.g. GNOME Keyring or KWallet) to keep them safer."
        )

    def where(self, name: str) -> str | None:
        """ "keyring" or "file" for a known secret, None if the index does not know it."""
        location = self._read_index().get(name)
        return location.backend if location else None

    # --- operations ----------------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        """The secret `name`, or None if it is not stored anywhere.

        Raises SecretStoreError when the backend holding it (or, for a name the index does not
        know, the system keyring) cannot be read (e.g. locked).
        """
        with self._lock:
            location = self._read_index().get(name)
            value: str | None
            if location is not None and location.backend == FILE:
                value = self._read_file().get(name)
            elif location is not None:
                value = self._keyring_get(name, strict=True)
            else:
                # Unknown to the index (written by another tool or a lost index): look in both;
                # a keyring that could not be asked is said so when the file has nothing either.
                problem: SecretStoreError | None = None
                try:
                    value = self._keyring_get(name, strict=self._usable_backend())
                except SecretStoreError as exc:
                    value, problem = None, exc
                if value is None:
                    value = self._read_file().get(name)
                if value is None and problem is not None:
                    raise problem
            if value is not None:
                register_secret(value)
            return value

    def set(self, name: str, value: str) -> str:
        """Store `value` under `name`; returns where it went ("keyring" or "file")."""
        if not name:
            raise ValueError("a secret needs a name")
        register_secret(value)
        with self._lock:
            index = self._read_index()
            if self._usable_backend() and self._keyring_set(name, value):
                index[name] = _Location(KEYRING, self.backend_name)
                self._write_index(index)
                # A stale plain-text copy must not outlive the move into the keyring.
                self._file_remove(name)
                return KEYRING
            secrets = self._read_file()
            secrets[name] = value
            self._write_file(secrets)
            index[name] = _Location(FILE)
            self._write_index(index)
            log.warning("secret %r stored in the fallback file %s", name, self.fallback_path)
            return FILE

    def delete(self, name: str) -> None:
        """Remove `name` wherever it is; deleting an absent secret is not an error."""
        with self._lock:
            if self._usable_backend():
                try:
                    self._backend.delete_password(self.service, name)  # type: ignore[union-attr]
                except keyring.errors.PasswordDeleteError:
                    pass  # it was not there
                except Exception as exc:  # a locked / broken keyring: report, keep the index
                    if self.where(name) == KEYRING:
                        raise SecretStoreError(
                            f"The secret {name!r} could not be deleted from the system keyring: "
                            f"{keyring_problem(exc)}."
                        ) from exc
            self._file_remove(name)
            index = self._read_index()
            if index.pop(name, None) is not None:
                self._write_index(index)

    def remove_stale_session_passwords(self, keep: Collection[str] = ()) -> list[str]:
        """Delete the session passwords (`session-password/<task id>`) a crashed run left.

        Call at start, before any tunnel runs: a clean exit deletes its own, so whatever is
        still indexed belongs to a run that died. Task ids in `keep` are left alone. Returns
        the names removed; one that cannot be deleted now (a locked keyring) is logged and
        tried again next time.
        """
        prefix = session_password_key("")
        kept = {session_password_key(task_id) for task_id in keep}
        removed: list[str] = []
        with self._lock:
            stale = [n for n in self._read_index() if n.startswith(prefix) and n not in kept]
            for name in stale:
                try:
                    self.delete(name)
                except SecretStoreError as exc:
                    log.warning("stale session password not removed: %s", exc)
                    continue
                removed.append(name)
        if removed:
            log.info("removed %d session password(s) left by an earlier version", len(removed))
        return removed

    def remove_stale_session_passwords_later(self) -> threading.Thread:
        """`remove_stale_session_passwords` in a daemon thread: at start, and never waited
        for (a locked keyring may wait for its unlock prompt for as long as it likes)."""

        def run() -> None:
            try:
                self.remove_stale_session_passwords()
            except Exception as exc:  # the index or the keyring: tried again next start
                log.warning("stale session passwords not removed: %s", exc)

        thread = threading.Thread(target=run, name="stale-session-passwords", daemon=True)
        thread.start()
        return thread

    # --- keyring ---------------------------------------------------------------------------------

    def _usable_backend(self) -> bool:
        return self._backend is not None and unusable_reason(self._backend) is None

    def _keyring_get(self, name: str, *, strict: bool) -> str | None:
        if not self._usable_backend():
            if strict:
                raise SecretStoreError(
                    f"The secret {name!r} is in the system keyring, which is not available now."
                )
            return None
        try:
            return self._backend.get_password(self.service, name)  # type: ignore[union-attr]
        except Exception as exc:  # KeyringLocked, D-Bus errors…: the secret is unreachable
            problem = keyring_problem(exc)
            if strict:
                hint = f" {UNLOCK_HINT}" if isinstance(exc, keyring.errors.KeyringLocked) else ""
                raise SecretStoreError(
                    f"The secret {name!r} could not be read from the system keyring: "
                    f"{problem}.{hint}"
                ) from exc
            log.warning("system keyring lookup of %r failed: %s", name, problem)
            return None

    def _keyring_set(self, name: str, value: str) -> bool:
        try:
            self._backend.set_password(self.service, name, value)  # type: ignore[union-attr]
        except Exception as exc:  # KeyringLocked, PasswordSetError, D-Bus errors…
            self._ensure_reason(f"it could not store a secret: {keyring_problem(exc)}")
            return False
        return True

    def _ensure_reason(self, reason: str) -> None:
        if self._why is None:
            self._why = reason
            self._announce()

    def _announce(self) -> None:
        log.warning("%s", self.warning)

    # --- fallback file and index ------------------------------------------------------------------

    def _prepare_dir(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretStoreError(f"{path} cannot be read: {exc.strerror}") from exc
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SecretStoreError(f"{path} is damaged (not valid JSON)") from exc
        if not isinstance(document, dict):
            raise SecretStoreError(f"{path} is damaged (not a JSON object)")
        return document

    def _read_file(self) -> dict[str, str]:
        path = self.fallback_path
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                log.warning(
                    "fallback secrets file %s had mode %o; restricting it to 600", path, mode
                )
                path.chmod(0o600)
        secrets = self._read_json(path).get("secrets", {})
        if not isinstance(secrets, dict):
            raise SecretStoreError(f'{path} is damaged ("secrets" is not an object)')
        return {str(k): str(v) for k, v in secrets.items()}

    def _write_file(self, secrets: dict[str, str]) -> None:
        self._prepare_dir(self.fallback_path)
        document = {"version": 1, "service": self.service, "secrets": secrets}
        try:
            atomic_write_text(self.fallback_path, json.dumps(document, indent=2) + "\n", mode=0o600)
        except OSError as exc:
            raise SecretStoreError(
                f"The secret could not be saved to {self.fallback_path}: {exc.strerror}"
            ) from exc

    def _file_remove(self, name: str) -> None:
        secrets = self._read_file()
        if name in secrets:
            del secrets[name]
            self._write_file(secrets)

    def _file_entries(self) -> list[str]:
        try:
            return [n for n, loc in self._read_index().items() if loc.backend == FILE]
        except SecretStoreError as exc:
            log.warning("%s", exc)
            return []

    def _read_index(self) -> dict[str, _Location]:
        try:
            entries = self._read_json(self.index_path).get("secrets", {})
        except SecretStoreError as exc:
            # The index holds no values: losing it only costs a lookup in both places.
            log.warning("%s; ignoring it", exc)
            return {}
        index: dict[str, _Location] = {}
        if isinstance(entries, dict):
            for name, entry in entries.items():
                if isinstance(entry, dict) and entry.get("backend") in (KEYRING, FILE):
                    index[str(name)] = _Location(
                        entry["backend"], str(entry.get("keyring_backend", ""))
                    )
        return index

    def _write_index(self, index: dict[str, _Location]) -> None:
        self._prepare_dir(self.index_path)
        entries: dict[str, dict[str, str]] = {}
        for name, location in sorted(index.items()):
            entries[name] = {"backend": location.backend}
            if location.keyring_backend:
                entries[name]["keyring_backend"] = location.keyring_backend
        document = {"version": 1, "service": self.service, "secrets": entries}
        try:
            atomic_write_text(self.index_path, json.dumps(document, indent=2) + "\n", mode=0o600)
        except OSError as exc:
            raise SecretStoreError(
                f"The secrets index {self.index_path} could not be written: {exc.strerror}"
            ) from exc
