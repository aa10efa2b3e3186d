"""Settings on disk: round trips, corrupt files, partial fallback, full disk, validation."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tray_app.core import atomic
from tray_app.core.settings.errors import SettingsWriteError
from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.core.settings.settings import (
    SCHEMA_VERSION,
    IdleMode,
    IdlePolicy,
    NotificationPrefs,
    ServerProfile,
    Settings,
    default_settings_path,
    hotkey_problem,
    load_settings,
    read_idle_policy,
    save_settings,
    settings_to_dict,
    validate_settings,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


# --- strategies ---------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_name = _text.filter(lambda s: s.strip() != "")
_pct = st.floats(min_value=0, max_value=100, allow_nan=False)
_cores = st.floats(min_value=0.01, max_value=1024, allow_nan=False)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_hotkeys = st.sampled_from(["", "Ctrl+Alt+C", "Meta+F12", "Ctrl+Shift+Space", "Super+k", "Alt+1"])


@st.composite
def settings_strategy(draw: st.DrawFn) -> Settings:
    names = draw(st.lists(_name, min_size=1, max_size=4, unique=True))
    # Paths that don't exist are kept as they are (an unmounted drive must not reset them).
    profiles = [ServerProfile(name=n, config_file=draw(_text)) for n in names]
    return Settings(
        profiles=profiles,
        active_profile=draw(st.sampled_from(names)),
        poll_interval_s=draw(st.integers(5, 3600)),
        show_all_users=draw(st.booleans()),
        editor_command=draw(st.sampled_from(["", "code", "cursor --new-window"])),
        open_editor_when_ready=draw(st.booleans()),
        notifications=NotificationPrefs(*draw(st.tuples(*[st.booleans()] * 5))),
        hotkey=draw(_hotkeys),
        start_on_login=draw(st.booleans()),
        idle=IdlePolicy(
            mode=draw(st.sampled_from(list(IdleMode))),
            cpu_threshold_cores=draw(_cores),
            gpu_threshold_percent=draw(_pct),
            window_minutes=draw(st.integers(1, 10_000)),
            grace_minutes=draw(st.integers(1, 10_000)),
            job_finished_notice=draw(st.booleans()),
        ),
        tunnel_retry_limit=draw(st.integers(1, 20)),
        workspace_folder=draw(_text),
        extra=draw(st.dictionaries(_text.map(lambda k: "x_" + k), _json, max_size=3)),
    )


_opt_bool = st.none() | st.booleans()


@st.composite
def preset_strategy(draw: st.DrawFn, name: str | None = None) -> Preset:
    return Preset(
        name=name if name is not None else draw(_name),
        queue=draw(_text),
        docker_image=draw(_text),
        docker_args=draw(_text),
        packages=draw(st.lists(_text, max_size=3)),
        requirements_file=draw(_text),
        init_script=draw(_text),
        user_folder=draw(_text),
        project=draw(_text),
        session_name=draw(_text),
        tags=draw(st.lists(_text, max_size=3)),
        public_ip=draw(_opt_bool),
        remote_ssh_port=draw(st.none() | st.integers(1, 65535)),
        jupyter_lab=draw(_opt_bool),
        vscode_server=draw(_opt_bool),
        vscode_version=draw(_text),
        vscode_extensions=draw(st.lists(_text, max_size=3)),
        username=draw(_text),
        password_policy=draw(st.sampled_from(list(PasswordPolicy))),
        password_ref=draw(_text),
        keepalive=draw(_opt_bool),
        store_workspace=draw(_text),
        continue_session=draw(_text),
        disable_session_cleanup=draw(st.booleans()),
        verbose=draw(st.booleans()),
        restore_workspace=draw(st.booleans()),
        git_credentials=draw(_opt_bool),
        upload_files=draw(_text),
        base_task_id=draw(_text),
        force_dropbear=draw(_opt_bool),
        disable_fingerprint_check=draw(st.booleans()),
        extra_args=draw(st.lists(_text, max_size=3)),
    )


@st.composite
def presets_strategy(draw: st.DrawFn) -> list[Preset]:
    names = draw(st.lists(_name, max_size=4, unique=True))
    return [draw(preset_strategy(name=n)) for n in names]


# --- round trips ----------------------------------------------------------------------------------


def test_missing_file_gives_defaults_without_warnings(path: Path) -> None:
    loaded = load_settings(path)
    assert loaded.settings == Settings()
    assert loaded.presets == []
    assert loaded.warnings == []
    assert loaded.backup_path is None


def test_default_path_is_under_the_user_config_dir(isolated_home: Path) -> None:
    assert default_settings_path() == isolated_home / ".config" / "clearml-tray" / "settings.json"


def test_save_without_path_writes_the_default_location(isolated_home: Path) -> None:
    written = save_settings(Settings(poll_interval_s=30), [])
    assert written == default_settings_path()
    assert load_settings().settings.poll_interval_s == 30


def test_saved_file_has_schema_version_and_is_private(path: Path) -> None:
    save_settings(Settings(), [Preset(name="gpu", queue="q")], path)
    document = json.loads(path.read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["presets"][0]["name"] == "gpu"
    assert path.stat().st_mode & 0o777 == 0o600


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings_value=settings_strategy(), presets=presets_strategy())
def test_settings_and_presets_round_trip(
    tmp_path_factory: pytest.TempPathFactory, settings_value: Settings, presets: list[Preset]
) -> None:
    file = tmp_path_factory.mktemp("rt") / "settings.json"
    save_settings(settings_value, presets, file)
    loaded = load_settings(file)
    assert loaded.warnings == []
    assert loaded.settings == settings_value
    assert loaded.presets == presets


def test_unknown_keys_from_a_newer_version_are_kept(path: Path) -> None:
    path.parent.mkdir(parents=True)
    document = {
        "schema_version": SCHEMA_VERSION + 1,
        "settings": {"poll_interval_s": 20, "future_option": {"a": [1, 2]}},
        "presets": [{"name": "p", "queue": "q", "future_preset_key": 7}],
        "future_section": ["x"],
    }
    path.write_text(json.dumps(document))
    loaded = load_settings(path)
    assert loaded.settings.poll_interval_s == 20
    assert loaded.settings.extra == {"future_option": {"a": [1, 2]}}
    assert loaded.presets[0].unknown_fields == {"future_preset_key": 7}
    assert any("newer version" in w for w in loaded.warnings)

    save_settings(loaded.settings, loaded.presets, path)
    saved = json.loads(path.read_text())
    assert saved["settings"]["future_option"] == {"a": [1, 2]}
    assert saved["presets"][0]["future_preset_key"] == 7
    assert saved["future_section"] == ["x"]


# --- corrupt files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"schema_version": 1, "settings": {"poll_interval_s": 3',  # truncated
        b"\x00\xff\xfe garbage \x89PNG",  # binary garbage
        b"not json at all",
        b"[1, 2, 3]",  # wrong top-level type
        b'{"schema_version": 1, "settings": [1]}',  # wrong-typed section
        b'{"schema_version": 1, "presets": {"a": 1}}',
        b'{"schema_version": "one"}',
        b"",  # empty file (crash while writing with a non-atomic editor)
    ],
    ids=[
        "truncated",
        "binary",
        "text",
        "list",
        "settings-list",
        "presets-dict",
        "version",
        "empty",
    ],
)
def test_broken_settings_file_is_backed_up_and_replaced_by_defaults(
    path: Path, content: bytes
) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    loaded = load_settings(path)

    assert loaded.settings == Settings()
    assert loaded.presets == []
    assert loaded.backup_path is not None
    assert loaded.backup_path.name.startswith("settings.json.bak-")
    assert loaded.backup_path.read_bytes() == content
    assert not path.exists()  # moved aside, not copied
    assert len(loaded.warnings) == 1
    warning = loaded.warnings[0]
    assert str(loaded.backup_path) in warning
    assert "default settings are used" in warning


def test_broken_file_warning_is_logged(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("{{{")
    load_settings(path)
    assert any("moved to" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_saving_after_corruption_creates_a_fresh_file(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    loaded = load_settings(path)
    save_settings(loaded.settings, loaded.presets, path)
    again = load_settings(path)
    assert again.warnings == []
    assert len(_backups(path)) == 1


# --- per-field fallback ---------------------------------------------------------------------------


def test_wrong_typed_field_falls_back_alone_with_a_warning(path: Path) -> None:
    path.parent.mkdir(parents=True)
    document = {
        "schema_version": 1,
        "settings": {
            "poll_interval_s": "often",
            "show_all_users": True,
            "idle": {"mode": "sometimes", "window_minutes": 30},
            "notifications": {"session_ready": 1},
        },
    }
    path.write_text(json.dumps(document))
    loaded = load_settings(path)
    assert loaded.settings.poll_interval_s == Settings().poll_interval_s
    assert loaded.settings.show_all_users is True
    assert loaded.settings.idle.mode is IdleMode.NOTIFY
    assert loaded.settings.idle.window_minutes == 30
    assert loaded.settings.notifications.session_ready is True
    text = "\n".join(loaded.warnings)
    assert "'poll_interval_s'" in text
    assert "'idle.mode'" in text
    assert "'notifications.session_ready'" in text
    # the original values are not lost
    assert loaded.backup_path is not None
    assert json.loads(loaded.backup_path.read_text()) == document
    assert str(loaded.backup_path) in text
    assert path.exists()


def test_integral_floats_are_accepted_for_whole_numbers(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text('{"settings": {"poll_interval_s": 30.0, "tunnel_retry_limit": 2.5}}')
    loaded = load_settings(path)
    assert loaded.settings.poll_interval_s == 30
    assert loaded.settings.tunnel_retry_limit == 3
    assert any("'tunnel_retry_limit' 2.5 is not a whole number" in w for w in loaded.warnings)


def test_out_of_range_values_fall_back_per_field(path: Path) -> None:
    path.parent.mkdir(parents=True)
    document = {
        "schema_version": 1,
        "settings": {
            "poll_interval_s": 1,
            "tunnel_retry_limit": 50,
            "hotkey": "Banana",
            "idle": {"gpu_threshold_percent": 150, "cpu_threshold_cores": 0, "grace_minutes": 0},
            "start_on_login": True,
        },
    }
    path.write_text(json.dumps(document))
    loaded = load_settings(path)
    s = loaded.settings
    assert (s.poll_interval_s, s.tunnel_retry_limit, s.hotkey) == (15, 3, "Ctrl+Alt+C")
    assert (s.idle.gpu_threshold_percent, s.idle.cpu_threshold_cores) == (5.0, 0.5)
    assert s.idle.grace_minutes == 15
    assert s.start_on_login is True
    assert len(loaded.warnings) == 7  # six fields + where the original was copied


def test_the_old_cpu_percentage_gives_way_to_cores(path: Path) -> None:
    """Until 0.1 the CPU threshold was a share of the whole machine; one core of 64 is 1.56 %,
    so an old value means nothing in cores: it is dropped, the default (0.5 cores) is used."""
    path.parent.mkdir(parents=True)
    document = {"settings": {"idle": {"cpu_threshold_percent": 3.0, "window_minutes": 90}}}
    path.write_text(json.dumps(document))
    loaded = load_settings(path)
    assert loaded.warnings == []
    assert (loaded.settings.idle.cpu_threshold_cores, loaded.settings.idle.window_minutes) == (
        0.5,
        90,
    )


def test_list_reads_the_idle_policy_without_touching_the_file(path: Path) -> None:
    """`clearml-tray list` without a tray judges by the same policy, read only: a broken file
    is left where it is for the tray to move aside and report."""
    assert read_idle_policy(path) == IdlePolicy()  # no file: the defaults
    path.parent.mkdir(parents=True)
    policy = {"mode": "off", "cpu_threshold_cores": 1.5, "window_minutes": 30}
    path.write_text(json.dumps({"settings": {"idle": policy}}))
    assert read_idle_policy(path) == IdlePolicy(
        mode=IdleMode.OFF, cpu_threshold_cores=1.5, window_minutes=30
    )
    path.write_text(json.dumps({"settings": {"idle": {"window_minutes": -4}}}))
    assert read_idle_policy(path).window_minutes == 60
    path.write_text("{not json")
    assert read_idle_policy(path) == IdlePolicy()
    assert path.read_text() == "{not json" and list(path.parent.iterdir()) == [path]


def test_missing_active_profile_falls_back_to_the_first(path: Path) -> None:
    path.parent.mkdir(parents=True)
    document = {
        "settings": {
            "profiles": [{"name": "work"}, {"name": "home"}],
            "active_profile": "gone",
        }
    }
    path.write_text(json.dumps(document))
    loaded = load_settings(path)
    assert loaded.settings.active_profile == "work"
    assert [p.name for p in loaded.settings.profiles] == ["work", "home"]
    assert any("'gone' does not exist" in w for w in loaded.warnings)


def test_invalid_preset_is_skipped_with_a_warning_and_others_kept(path: Path) -> None:
    path.parent.mkdir(parents=True)
    document = {
        "schema_version": 1,
        "presets": [
            {"name": "good", "queue": "q"},
            {"name": "bad", "remote_ssh_port": "ten"},
            {"name": "good", "queue": "dup"},
        ],
    }
    path.write_text(json.dumps(document))
    loaded = load_settings(path)
    assert [p.name for p in loaded.presets] == ["good"]
    text = "\n".join(loaded.warnings)
    assert "preset 'bad'" in text and "remote_ssh_port" in text
    assert "Two saved presets are named 'good'" in text


# --- write failures -------------------------------------------------------------------------------


def test_full_disk_raises_settings_write_error_and_keeps_the_old_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_settings(Settings(poll_interval_s=42), [Preset(name="keep", queue="q")], path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes half of the data, then fails like a full disk."""

        def __init__(self, handle: object) -> None:
            self._handle = handle

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()  # type: ignore[attr-defined]

        def write(self, data: bytes) -> int:
            self._handle.write(data[: len(data) // 2])  # type: ignore[attr-defined]
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_fdopen(fd: int, *args: object, **kwargs: object) -> HalfWriter:
        return HalfWriter(real_fdopen(fd, *args, **kwargs))  # type: ignore[call-overload]

    monkeypatch.setattr(atomic.os, "fdopen", fake_fdopen)
    with pytest.raises(SettingsWriteError) as info:
        save_settings(Settings(poll_interval_s=99), [], path)
    monkeypatch.undo()

    assert "disk is full" in str(info.value)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp file left
    assert load_settings(path).settings.poll_interval_s == 42


def test_permission_denied_raises_settings_write_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", deny)
    with pytest.raises(SettingsWriteError, match="permission denied"):
        save_settings(Settings(), [], path)
    assert not path.exists()


# --- validation -----------------------------------------------------------------------------------


def test_default_settings_are_valid() -> None:
    assert validate_settings(Settings()) == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"poll_interval_s": 4}, "poll interval 4 s"),
        ({"poll_interval_s": 3601}, "not in 5..3600"),
        ({"hotkey": "Ctrl+Alt"}, "no key after the modifiers"),
        ({"hotkey": "Ctrl+Foo+C"}, "not a modifier"),
        ({"hotkey": "C"}, "must look like"),
        ({"tunnel_retry_limit": 0}, "retry limit 0"),
        ({"tunnel_retry_limit": 21}, "retry limit 21"),
        ({"active_profile": "nope"}, "'nope' does not exist"),
        ({"profiles": []}, "at least one server profile"),
        ({"profiles": [ServerProfile("a"), ServerProfile("a")]}, "unique: a"),
        ({"profiles": [ServerProfile("")], "active_profile": ""}, "empty name"),
        ({"editor_command": "code 'unterminated"}, "cannot be parsed"),
        ({"profiles": [ServerProfile("default", "/no/such/clearml.conf")]}, "does not exist"),
        ({"workspace_folder": "/no/such/folder"}, "workspace folder"),
        ({"warm_tunnels_max": 0}, "at most 0 warm tunnels is not in 1..50"),
        ({"warm_tunnels_max_mb": 50}, "memory cap of 50 MB for warm tunnels"),
        ({"clearml_session": "/no/such/clearml-session"}, "is not an executable file"),
        ({"clearml_session": "/usr/bin/clearml-session\nrm"}, "has a line break"),
    ],
)
def test_validation_reports_a_clear_reason(change: dict[str, object], needle: str) -> None:
    s = Settings(**change)  # type: ignore[arg-type]
    reasons = validate_settings(s)
    assert any(needle in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("idle", "needle"),
    [
        (IdlePolicy(cpu_threshold_cores=0), "CPU threshold 0 cores"),
        (IdlePolicy(cpu_threshold_cores=2000), "CPU threshold 2000 cores"),
        (IdlePolicy(gpu_threshold_percent=100.5), "GPU threshold 100.5"),
        (IdlePolicy(window_minutes=0), "idle window 0"),
        (IdlePolicy(grace_minutes=-5), "grace period -5"),
    ],
)
def test_idle_policy_validation(idle: IdlePolicy, needle: str) -> None:
    assert any(needle in r for r in validate_settings(Settings(idle=idle)))


def test_existing_config_file_is_accepted(tmp_path: Path) -> None:
    conf = tmp_path / "clearml.conf"
    conf.write_text("api {}")
    assert validate_settings(Settings(profiles=[ServerProfile("default", str(conf))])) == []


@pytest.mark.parametrize(
    "hotkey", ["Ctrl+Alt+C", "ctrl+alt+c", "Meta+F12", "Ctrl+Shift+Space", "Super+1", "Alt+/"]
)
def test_valid_hotkeys(hotkey: str) -> None:
    assert hotkey_problem(hotkey) is None


@pytest.mark.parametrize(
    "hotkey", ["Ctrl+", "+C", "Shift+C", "Ctrl+Ctrl+C", "Hyper+C", "Ctrl+Alt+F99", "Ctrl+Alt+ä"]
)
def test_invalid_hotkeys(hotkey: str) -> None:
    assert hotkey_problem(hotkey) is not None


def test_settings_json_holds_no_extra_key_named_extra() -> None:
    data = settings_to_dict(Settings(extra={"x": 1}))
    assert "extra" not in data
    assert data["x"] == 1
