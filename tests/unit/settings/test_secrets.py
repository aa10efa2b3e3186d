"""SecretStore: system keyring first, a loud 600-mode file fallback, an index without values."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.file_keyring import BACKEND as FILE_KEYRING
from support.file_keyring import FileKeyring

from tray_app.core.redact import redact, unregister_all_secrets
from tray_app.core.settings.errors import SecretStoreError
from tray_app.core.settings.secrets import (
    FILE,
    KEYRING,
    SERVICE,
    SecretStore,
    api_secret_key,
    keyring_problem,
    preset_password_key,
    session_password_key,
    unusable_reason,
)


class PlaintextKeyring(FileKeyring):
    """keyrings.alt's unencrypted file backend, as the store knows it: by its class path
    (keyrings.alt is not installed with the tests: see support/file_keyring.py)."""


PlaintextKeyring.__module__ = "keyrings.alt.file"


class RefusingKeyring(keyring.backend.KeyringBackend):
    """A backend that exists but refuses every write (like a locked keyring)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the keyring is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError("not there")


class LockedOnReadKeyring(RefusingKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    yield
    unregister_all_secrets()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def plaintext() -> FileKeyring:
    # The test environment's "system" backend (PYTHON_KEYRING_BACKEND in tests/conftest.py).
    backend = keyring.get_keyring()
    assert isinstance(backend, FileKeyring)
    return backend


def _index(store: SecretStore) -> dict[str, dict[str, object]]:
    return json.loads(store.index_path.read_text())


def test_key_name_helpers_are_distinct() -> None:
    names = {api_secret_key("default"), session_password_key("abc"), preset_password_key("gpu")}
    assert len(names) == 3
    assert session_password_key("0123") == "session-password/0123"


# --- system backend --------------------------------------------------------------------------


def test_default_store_uses_the_configured_system_backend(
    data_dir: Path, plaintext: FileKeyring
) -> None:
    store = SecretStore(data_dir=data_dir)
    assert store.backend_name == FILE_KEYRING
    assert store.is_fallback is False
    assert store.set("api-secret/default", "s3cr3t-value") == KEYRING
    assert store.get("api-secret/default") == "s3cr3t-value"
    assert plaintext.get_password(SERVICE, "api-secret/default") == "s3cr3t-value"
    assert store.where("api-secret/default") == KEYRING
    assert not store.fallback_path.exists()


def test_default_paths_are_under_the_user_data_dir(isolated_home: Path) -> None:
    store = SecretStore()
    base = isolated_home / ".local" / "share" / "clearml-tray"
    assert store.fallback_path == base / "secrets.json"
    assert store.index_path == base / "secrets-index.json"


def test_delete_removes_the_secret_and_its_index_entry(data_dir: Path) -> None:
    store = SecretStore(data_dir=data_dir)
    store.set("session-password/t1", "pw-pw-pw")
    store.delete("session-password/t1")
    assert store.get("session-password/t1") is None
    assert store.where("session-password/t1") is None
    store.delete("session-password/t1")  # absent: no error


def test_missing_secret_is_none(data_dir: Path) -> None:
    assert SecretStore(data_dir=data_dir).get("nope") is None


def test_a_secret_from_the_keyring_without_index_entry_is_found(
    data_dir: Path, plaintext: FileKeyring
) -> None:
    plaintext.set_password(SERVICE, "api-secret/other", "set-elsewhere")
    assert SecretStore(data_dir=data_dir).get("api-secret/other") == "set-elsewhere"


# --- fallback --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [keyring.backends.fail.Keyring(), keyring.backends.null.Keyring()],
    ids=["fail", "null"],
)
def test_unusable_backend_forces_the_file_fallback(
    data_dir: Path, backend: keyring.backend.KeyringBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store = SecretStore(backend, data_dir=data_dir)
    assert store.is_fallback is True
    assert store.warning is not None
    assert str(store.fallback_path) in store.warning
    assert "not in your system keyring" in store.warning
    assert any(r.levelno == logging.WARNING and "system keyring" in r.getMessage()
               for r in caplog.records)  # fmt: skip

    assert store.set("api-secret/default", "file-secret-1") == FILE
    assert stat.S_IMODE(store.fallback_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.fallback_path.parent.stat().st_mode) == 0o700
    assert store.get("api-secret/default") == "file-secret-1"
    assert store.where("api-secret/default") == FILE


def test_chainer_with_nothing_to_chain_is_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring.backends.chainer.ChainerBackend, "backends", [])
    assert unusable_reason(keyring.backends.chainer.ChainerBackend()) is not None


def test_no_keyring_at_all_falls_back(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> keyring.backend.KeyringBackend:
        raise keyring.errors.NoKeyringError("No recommended backend was available")

    monkeypatch.setattr(keyring, "get_keyring", broken)
    store = SecretStore(data_dir=data_dir)
    assert store.is_fallback
    assert store.set("x-name", "value-1") == FILE
    assert store.get("x-name") == "value-1"


def test_backend_that_raises_on_set_falls_back_loudly(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store = SecretStore(RefusingKeyring(), data_dir=data_dir)
    assert store.is_fallback is False  # it looked fine until it refused
    assert store.set("preset-password/gpu", "fixed-pw-1") == FILE
    assert store.is_fallback is True
    assert store.warning is not None and "could not store a secret: the keyring is locked" in (
        store.warning
    )
    assert store.get("preset-password/gpu") == "fixed-pw-1"
    assert stat.S_IMODE(store.fallback_path.stat().st_mode) == 0o600
    assert any("could not store a secret" in r.getMessage() for r in caplog.records)


def test_reads_go_to_the_backend_recorded_in_the_index(
    data_dir: Path, plaintext: FileKeyring
) -> None:
    SecretStore(keyring.backends.fail.Keyring(), data_dir=data_dir).set("n1", "in-the-file")
    # Later the system keyring works, and holds a different value under the same name.
    plaintext.set_password(SERVICE, "n1", "in-the-keyring")
    store = SecretStore(data_dir=data_dir)
    assert store.get("n1") == "in-the-file"
    assert store.is_fallback  # some secrets still live in the file
    # Writing again moves it into the keyring and removes the plain copy.
    assert store.set("n1", "new-value") == KEYRING
    assert store.get("n1") == "new-value"
    assert "n1" not in json.loads(store.fallback_path.read_text())["secrets"]


def test_locked_keyring_on_read_raises_a_clear_error(data_dir: Path) -> None:
    store = SecretStore(LockedOnReadKeyring(), data_dir=data_dir)
    store.set("api-secret/default", "kept-in-keyring")
    with pytest.raises(SecretStoreError, match="could not be read from the system keyring") as err:
        store.get("api-secret/default")
    assert "the keyring is locked. Unlock it" in str(err.value)


class SecretServiceNotAvailableException(Exception):  # secretstorage's, by name
    pass


def _wrapped(cause: Exception) -> Exception:
    """As keyring raises it: an InitError from the secretstorage error."""
    try:
        raise keyring.errors.InitError(f"Failed to create the collection: {cause}.") from cause
    except keyring.errors.InitError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (keyring.errors.KeyringLocked("Failed to unlock the collection!"), "the keyring is locked"),
        (
            keyring.errors.InitError("Failed to create the collection: Prompt dismissed.."),
            "no default keyring, or its unlock prompt could not be shown",
        ),
        (
            RuntimeError("The Secret Service daemon is neither running nor activatable"),
            "no keyring service (such as GNOME Keyring or KWallet) runs on the D-Bus session bus",
        ),
        (SecretServiceNotAvailableException("no bus"), "no keyring service"),
        (_wrapped(SecretServiceNotAvailableException("no bus")), "no keyring service"),
        (OSError("disk full"), "the keyring reported: disk full"),
    ],
)
def test_keyring_failures_are_put_in_words(error: Exception, words: str) -> None:
    assert words in keyring_problem(error)
    if not isinstance(error, OSError):
        assert str(error) not in keyring_problem(error)  # not the raw error text


def test_loose_fallback_file_permissions_are_tightened(data_dir: Path) -> None:
    store = SecretStore(keyring.backends.fail.Keyring(), data_dir=data_dir)
    store.set("n", "value-2")
    store.fallback_path.chmod(0o644)
    assert store.get("n") == "value-2"
    assert stat.S_IMODE(store.fallback_path.stat().st_mode) == 0o600


def test_damaged_index_is_ignored_not_fatal(data_dir: Path) -> None:
    store = SecretStore(data_dir=data_dir)
    store.set("n", "value-3")
    store.index_path.write_text("{garbage")
    assert SecretStore(data_dir=data_dir).get("n") == "value-3"


def test_values_read_or_written_are_redacted_from_logs(data_dir: Path) -> None:
    store = SecretStore(keyring.backends.fail.Keyring(), data_dir=data_dir)
    store.set("n", "unique-secret-value")
    assert redact("log line unique-secret-value") == "log line ***"


# --- the index holds no values ----------------------------------------------------------------

_secret = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30).map(
    lambda s: "val:" + s
)  # the prefix keeps values from matching index words by chance


@settings(max_examples=40, deadline=None)
@given(values=st.lists(_secret, min_size=1, max_size=4, unique=True), fallback=st.booleans())
def test_index_never_contains_secret_values(
    tmp_path_factory: pytest.TempPathFactory, values: list[str], fallback: bool
) -> None:
    data_dir = tmp_path_factory.mktemp("idx")
    backend = keyring.backends.fail.Keyring() if fallback else RefusingKeyringThatStores()
    store = SecretStore(backend, data_dir=data_dir)
    for i, value in enumerate(values):
        store.set(f"secret-{i}", value)
    raw = store.index_path.read_text()
    for value in values:
        assert value not in raw
        assert json.dumps(value)[1:-1] not in raw
    assert set(_index(store)["secrets"]) == {f"secret-{i}" for i in range(len(values))}
    for i, value in enumerate(values):
        assert store.get(f"secret-{i}") == value


class RefusingKeyringThatStores(RefusingKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A backend that keeps secrets in memory: stands for an encrypting system keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.values.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(username)


def test_a_system_keyring_that_is_not_plaintext_is_secure(data_dir: Path) -> None:
    store = SecretStore(MemoryKeyring(), data_dir=data_dir)
    assert store.is_secure and store.warning is None


def test_the_plaintext_backend_in_use_is_reported(data_dir: Path) -> None:
    """keyrings.alt's PlaintextKeyring, chosen by PYTHON_KEYRING_BACKEND or a keyringrc, is
    used as configured but never called secure."""
    backend = PlaintextKeyring()
    store = SecretStore(backend, data_dir=data_dir)
    assert store.backend_name == "keyrings.alt.file.PlaintextKeyring"
    assert not store.is_fallback and not store.is_secure
    assert store.warning is not None and "unencrypted" in store.warning
    assert str(backend.file_path) in store.warning
    assert store.describe() == store.warning


class _Chain(keyring.backends.chainer.ChainerBackend):
    """keyring's chainer over these backends, in its order (the first takes the secrets)."""

    def __init__(self, *backends: keyring.backend.KeyringBackend) -> None:
        super().__init__()
        self._chained = list(backends)

    @property
    def backends(self) -> list[keyring.backend.KeyringBackend]:  # type: ignore[override]
        return self._chained


def _chain(*backends: keyring.backend.KeyringBackend) -> keyring.backends.chainer.ChainerBackend:
    return _Chain(*backends)


def test_a_chain_is_judged_by_the_backend_that_takes_the_secrets(data_dir: Path) -> None:
    """What keyring builds when GNOME Keyring and a plaintext backend are both installed: the
    secrets go to the first, so the store is secure and says where they are."""
    secure_first = SecretStore(_chain(MemoryKeyring(), PlaintextKeyring()), data_dir=data_dir)
    assert secure_first.is_secure and secure_first.warning is None
    assert secure_first.backend_name == f"{__name__}.MemoryKeyring"
    assert "MemoryKeyring" in secure_first.describe()
    assert "PlaintextKeyring" not in secure_first.describe()
    assert secure_first.set("n", "v") == KEYRING
    assert _index(secure_first)["secrets"]["n"]["keyring_backend"] == f"{__name__}.MemoryKeyring"

    plaintext_first = SecretStore(_chain(PlaintextKeyring(), MemoryKeyring()), data_dir=data_dir)
    assert not plaintext_first.is_secure
    assert "PlaintextKeyring" in (plaintext_first.warning or "")


def test_describe_says_session_passwords_stay_in_memory(data_dir: Path) -> None:
    text = SecretStore(MemoryKeyring(), data_dir=data_dir).describe()
    assert "system keyring" in text and "memory only" in text
    fallback = SecretStore(keyring.backends.fail.Keyring(), data_dir=data_dir)
    assert fallback.describe() == fallback.warning and "not in your system keyring" in (
        fallback.warning or ""
    )


def test_stale_session_passwords_of_a_crashed_run_are_removed(data_dir: Path) -> None:
    backend = MemoryKeyring()
    crashed = SecretStore(backend, data_dir=data_dir)
    crashed.set(session_password_key("aaaa"), "pw-one-1234")
    crashed.set(session_password_key("bbbb"), "pw-two-5678")
    crashed.set(api_secret_key("default"), "api-secret-value")
    # The run dies without cleaning up; the next start:
    store = SecretStore(backend, data_dir=data_dir)
    removed = store.remove_stale_session_passwords(keep=["bbbb"])
    assert removed == [session_password_key("aaaa")]
    assert store.get(session_password_key("aaaa")) is None
    assert backend.get_password(SERVICE, session_password_key("aaaa")) is None
    assert store.get(session_password_key("bbbb")) == "pw-two-5678"
    assert store.get(api_secret_key("default")) == "api-secret-value"
    assert store.remove_stale_session_passwords() == [session_password_key("bbbb")]
    assert store.remove_stale_session_passwords() == []


def test_stale_session_passwords_are_removed_in_a_thread_nobody_waits_for(
    data_dir: Path,
) -> None:
    """At start: a keyring that never answers (locked, waiting for its prompt) holds up
    nothing but that thread."""
    import threading

    release = threading.Event()

    class Hanging(MemoryKeyring):
        def delete_password(self, service: str, username: str) -> None:
            release.wait(30)
            super().delete_password(service, username)

    backend = Hanging()
    SecretStore(backend, data_dir=data_dir).set(session_password_key("aaaa"), "pw-one-1234")
    store = SecretStore(backend, data_dir=data_dir)
    thread = store.remove_stale_session_passwords_later()
    assert thread.daemon and thread.is_alive()  # the caller went on
    release.set()
    thread.join(10)
    assert store.get(session_password_key("aaaa")) is None


def test_the_one_store_keeps_every_secret_set_at_once(tmp_path: Path) -> None:
    """The app's one SecretStore is used from several threads at the same moment (warm
    tunnels' logins): each read-modify-write of the index and the fallback file sees the
    others'."""
    import threading

    class Refusing(FileKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise RuntimeError("no keyring")  # everything goes to the fallback file

    names = [f"session-password/{i:032x}" for i in range(12)]
    start = threading.Barrier(len(names))
    shared = SecretStore(backend=Refusing(), data_dir=tmp_path)

    def store(name: str) -> None:
        start.wait()
        shared.set(name, "pw-" + name[-4:])

    threads = [threading.Thread(target=store, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = SecretStore(backend=Refusing(), data_dir=tmp_path)
    assert {n: reader.get(n) for n in names} == {n: "pw-" + n[-4:] for n in names}


def test_building_a_store_chooses_no_backend_until_it_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app builds its store on the event loop's thread: keyring's backend search (imports,
    D-Bus) waits for the first use, which the callers make in a worker thread."""
    import keyring

    asked: list[bool] = []
    real = keyring.get_keyring

    def counting() -> object:
        asked.append(True)
        return real()

    monkeypatch.setattr(keyring, "get_keyring", counting)
    store = SecretStore(data_dir=tmp_path)
    assert asked == []
    store.set("n", "v")
    store.get("n")
    assert asked == [True]  # chosen once
