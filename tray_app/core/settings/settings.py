"""App settings (and presets) persisted as JSON under the platformdirs config dir.

File: `platformdirs.user_config_path("clearml-tray") / "settings.json"`::

    {"schema_version": 1, "settings": {...Settings fields...}, "presets": [...Preset dicts...]}

Loading never raises for bad content and never loses data silently:
- unreadable / not JSON / nested too deeply / wrong shape → the file is moved aside to
  `settings.json.bak-<timestamp>`, defaults are used, and `LoadedSettings.warnings` says so (with
  the backup path);
- not a regular file (a FIFO, /dev/zero) or larger than 8 MB → defaults and a warning; the file
  is neither read further nor moved;
- a single bad field (wrong type, out of range) → that field's default, a warning, and a copy of
  the file is kept as a backup;
- unknown keys (a newer version wrote the file) → kept in `Settings.extra` / `Preset.unknown_fields`
  and unknown top-level keys are carried over by `save_settings`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import re
import shlex
import stat
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import platformdirs

from tray_app.core.atomic import atomic_write_text, backup_file, read_at_most
from tray_app.core.settings.errors import PresetFormatError, SettingsWriteError

if typing.TYPE_CHECKING:
    from tray_app.core.settings.presets import Preset

SCHEMA_VERSION = 1
MAX_CPU_THRESHOLD_CORES = 1024
APP_NAME = "clearml-tray"
SETTINGS_FILE_NAME = "settings.json"

log = logging.getLogger(__name__)


class IdleMode(StrEnum):
    OFF = "off"
    NOTIFY = "notify"
    NOTIFY_THEN_STOP = "notify_then_stop"


@dataclass(slots=True)
class ServerProfile:
    """One ClearML server the user can switch to; `config_file` "" means the SDK's lookup."""

    name: str = "default"
    config_file: str = ""


@dataclass(slots=True)
class NotificationPrefs:
    session_ready: bool = True
    session_failed: bool = True
    tunnel_problems: bool = True
    idle_warning: bool = True
    server_unreachable: bool = False


@dataclass(slots=True)
class IdlePolicy:
    mode: IdleMode = IdleMode.NOTIFY
    # Busy from this many cores at work on the machine: an idle notebook, VS Code server and
    # sshd stay well under half a core, a training loop or a build keeps at least one busy.
    # (Until 0.1 the threshold was a share of the whole machine, `cpu_threshold_percent`; such
    # a value is dropped on load: one core of 64 is 1.56 %.)
    cpu_threshold_cores: float = 0.5
    gpu_threshold_percent: float = 5.0  # of the busiest GPU
    window_minutes: int = 60
    grace_minutes: int = 15
    # "Your job finished": tell when a session busy on its GPUs goes quiet (opt-in).
    job_finished_notice: bool = False


@dataclass(slots=True)
class Settings:
    profiles: list[ServerProfile] = field(default_factory=lambda: [ServerProfile()])
    active_profile: str = "default"
    poll_interval_s: int = 15
    show_all_users: bool = False
    editor_command: str = ""  # "" = detect VS Code / Cursor / VSCodium
    clearml_session: str = ""  # "" = the bundled clearml-session, else the installed one
    open_editor_when_ready: bool = True
    notifications: NotificationPrefs = field(default_factory=NotificationPrefs)
    hotkey: str = "Ctrl+Alt+C"  # "" = no global hotkey
    start_on_login: bool = False
    idle: IdlePolicy = field(default_factory=IdlePolicy)
    tunnel_retry_limit: int = 3
    # Connect with the tunnel already up: it is opened silently when the user points at a
    # session (its submenu, the quick pick), or kept open for every running session of theirs
    # (~95 MB of memory each).
    tunnel_on_intent: bool = True
    warm_tunnels: bool = False
    # Warm tunnels at most: how many, and how much memory together (their CLIs and ssh).
    warm_tunnels_max: int = 3
    warm_tunnels_max_mb: int = 500
    workspace_folder: str = ""  # a folder whose .vscode/clearml.json adds presets
    # The queue of the last launch (dialog or preset): the New session dialog starts on it.
    last_queue: str = ""
    # Keys of the "settings" object written by a newer version; saved back unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def active(self) -> ServerProfile:
        for profile in self.profiles:
            if profile.name == self.active_profile:
                return profile
        return self.profiles[0] if self.profiles else ServerProfile()


@dataclass(slots=True)
class LoadedSettings:
    settings: Settings
    presets: list[Preset]
    warnings: list[str] = field(default_factory=list)  # user-facing sentences for the UI
    backup_path: Path | None = None  # where the old file was moved / copied, if it was


def default_settings_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / SETTINGS_FILE_NAME


# --- validation ---------------------------------------------------------------------------------

_MODIFIERS = {"ctrl": "Ctrl", "control": "Ctrl", "alt": "Alt", "shift": "Shift", "meta": "Meta",
              "super": "Super", "win": "Super"}  # fmt: skip
_NAMED_KEYS = {
    "space", "tab", "return", "enter", "escape", "esc", "backspace", "insert", "ins", "delete",
    "del", "home", "end", "pgup", "pageup", "pgdown", "pagedown", "up", "down", "left", "right",
    "print", "pause", "menu",
}  # fmt: skip
_PUNCTUATION_KEYS = set("`-=[];',./\\")


def hotkey_problem(hotkey: str) -> str | None:
    """Why `hotkey` is not a usable global shortcut like "Ctrl+Alt+C" (None = fine or "")."""
    if hotkey == "":
        return None
    parts = hotkey.split("+")
    if len(parts) < 2 or any(p.strip() == "" for p in parts):
        return f"hotkey {hotkey!r} must look like 'Ctrl+Alt+C': modifiers and one key joined by '+'"
    *mods, key = (p.strip() for p in parts)
    seen: set[str] = set()
    for mod in mods:
        canonical = _MODIFIERS.get(mod.lower())
        if canonical is None:
            return f"hotkey {hotkey!r}: {mod!r} is not a modifier (Ctrl, Alt, Shift, Meta, Super)"
        if canonical in seen:
            return f"hotkey {hotkey!r} repeats {canonical}"
        seen.add(canonical)
    if not seen - {"Shift"}:
        return f"hotkey {hotkey!r} needs Ctrl, Alt, Meta or Super (Shift alone is not enough)"
    lowered = key.lower()
    if lowered in _MODIFIERS:
        return f"hotkey {hotkey!r} has no key after the modifiers (e.g. {hotkey}+C)"
    if not (
        (len(key) == 1 and ((key.isalnum() and key.isascii()) or key in _PUNCTUATION_KEYS))
        or re.fullmatch(r"f([1-9]|1[0-9]|2[0-4])", lowered)
        or lowered in _NAMED_KEYS
    ):
        return f"hotkey {hotkey!r}: {key!r} is not a key name (a letter, digit, F1-F24, Space…)"
    return None


def _problems(settings: Settings) -> list[tuple[str, str]]:
    """(field path, reason) for every invalid value; the path is what load falls back on."""
    out: list[tuple[str, str]] = []
    if not 5 <= settings.poll_interval_s <= 3600:
        out.append(
            ("poll_interval_s", f"poll interval {settings.poll_interval_s} s is not in 5..3600 s")
        )
    problem = hotkey_problem(settings.hotkey)
    if problem:
        out.append(("hotkey", problem))
    idle = settings.idle
    if not 0 < idle.cpu_threshold_cores <= MAX_CPU_THRESHOLD_CORES:
        out.append(
            (
                "idle.cpu_threshold_cores",
                f"idle CPU threshold {idle.cpu_threshold_cores} cores is not in "
                f"0..{MAX_CPU_THRESHOLD_CORES} (more than 0)",
            )
        )
    if not 0 <= idle.gpu_threshold_percent <= 100:
        out.append(
            (
                "idle.gpu_threshold_percent",
                f"idle GPU threshold {idle.gpu_threshold_percent}% is not in 0..100",
            )
        )
    if idle.window_minutes <= 0:
        out.append(
            ("idle.window_minutes", f"idle window {idle.window_minutes} min must be more than 0")
        )
    if idle.grace_minutes <= 0:
        out.append(
            (
                "idle.grace_minutes",
                f"idle grace period {idle.grace_minutes} min must be more than 0",
            )
        )
    if not 1 <= settings.tunnel_retry_limit <= 20:
        out.append(
            (
                "tunnel_retry_limit",
                f"tunnel retry limit {settings.tunnel_retry_limit} is not in 1..20",
            )
        )
    if not 1 <= settings.warm_tunnels_max <= 50:
        out.append(
            (
                "warm_tunnels_max",
                f"at most {settings.warm_tunnels_max} warm tunnels is not in 1..50",
            )
        )
    if not 100 <= settings.warm_tunnels_max_mb <= 65536:
        out.append(
            (
                "warm_tunnels_max_mb",
                f"a memory cap of {settings.warm_tunnels_max_mb} MB for warm tunnels is not in "
                "100..65536 MB",
            )
        )
    if not settings.profiles:
        out.append(("profiles", "there must be at least one server profile"))
    names = [p.name for p in settings.profiles]
    if any(not n.strip() for n in names):
        out.append(("profiles", "a server profile has an empty name"))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        out.append(("profiles", "server profile names must be unique: " + ", ".join(duplicates)))
    if settings.profiles and settings.active_profile not in names:
        out.append(
            ("active_profile", f"the active profile {settings.active_profile!r} does not exist")
        )
    if settings.editor_command:
        try:
            if not shlex.split(settings.editor_command):
                raise ValueError("empty")
        except ValueError as exc:
            out.append(
                (
                    "editor_command",
                    f"editor command {settings.editor_command!r} cannot be parsed: {exc}",
                )
            )
    if settings.clearml_session and any(c in settings.clearml_session for c in "\n\r\0"):
        out.append(("clearml_session", "the clearml-session path has a line break in it"))
    return out


def _soft_problems(settings: Settings) -> list[str]:
    """Problems that may be temporary (an unmounted drive): reported, never reset on load."""
    out: list[str] = []
    for profile in settings.profiles:
        if profile.config_file and not Path(profile.config_file).expanduser().is_file():
            out.append(
                f"server profile {profile.name!r}: the config file "
                f"{profile.config_file!r} does not exist"
            )
    if settings.workspace_folder and not Path(settings.workspace_folder).expanduser().is_dir():
        out.append(f"the workspace folder {settings.workspace_folder!r} does not exist")
    if settings.clearml_session:
        program = Path(settings.clearml_session).expanduser()
        if not (program.is_file() and os.access(program, os.X_OK)):
            out.append(
                f"the clearml-session {settings.clearml_session!r} is not an executable file"
            )
    return out


def validate_settings(settings: Settings) -> list[str]:
    """User-facing reasons why `settings` should not be saved as is (empty list = valid)."""
    return [reason for _, reason in _problems(settings)] + _soft_problems(settings)


# --- (de)serialisation --------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if f.name == "extra":
                continue
            data[f.name] = _to_json(getattr(value, f.name))
        return data
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    data = dict(settings.extra)
    data.update(_to_json(settings))
    return data


class _BadValue(Exception):
    pass


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _coerce(value: Any, tp: Any, path: str, warnings: list[str]) -> Any:
    """Convert parsed JSON `value` to type `tp`, raising _BadValue when it does not fit."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise _BadValue("is not an object")
        return _build(tp, value, f"{path}.", warnings)
    if origin is list:
        (item_type,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _BadValue("is not a list")
        return [_coerce(v, item_type, f"{path}[{i}]", warnings) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _BadValue("is not an object")
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(m.value for m in tp)
            raise _BadValue(f"is not one of {allowed}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise _BadValue("is not true/false")
        return value
    if tp is int:
        # 30.0 (a hand-edited file, another JSON writer) is still clearly 30.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _BadValue("is not a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _BadValue("is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _BadValue("is not a string")
        return value
    raise _BadValue(f"has an unsupported type {tp!r}")


def _build(cls: type, data: dict[str, Any], prefix: str, warnings: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    defaults = cls()
    kwargs: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if f.name == "extra" or f.name not in data:
            continue
        path = f"{prefix}{f.name}"
        try:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], path, warnings)
        except _BadValue as exc:
            default = getattr(defaults, f.name)
            warnings.append(
                f"Setting '{path}' {_describe(data[f.name])} {exc}; "
                f"using the default {_describe(_to_json(default))}."
            )
    unknown = {k: v for k, v in data.items() if k not in known or k == "extra"}
    if "extra" in known:
        kwargs["extra"] = unknown
    elif unknown:
        log.info("ignoring unknown settings keys under %r: %s", prefix or ".", sorted(unknown))
    return cls(**kwargs)


def _reset_field(settings: Settings, path: str) -> Any:
    defaults = Settings()
    target: Any = settings
    source: Any = defaults
    *parents, leaf = path.split(".")
    for part in parents:
        target = getattr(target, part)
        source = getattr(source, part)
    default = getattr(source, leaf)
    setattr(target, leaf, default)
    return default


def settings_from_dict(data: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Settings from the parsed "settings" object, with per-field fallback and warnings."""
    warnings: list[str] = []
    settings: Settings = _build(Settings, data, "", warnings)
    for path, reason in _problems(settings):
        if path == "active_profile" and settings.profiles:
            settings.active_profile = settings.profiles[0].name
            warnings.append(f"{reason}; using {settings.active_profile!r} instead.")
            continue
        default = _reset_field(settings, path)
        warnings.append(f"{reason}; using the default {_describe(_to_json(default))}.")
        if path == "profiles" and settings.active_profile not in {
            p.name for p in settings.profiles
        }:
            settings.active_profile = settings.profiles[0].name
    return settings, warnings


def _presets_from_list(items: list[Any], warnings: list[str]) -> list[Preset]:
    # Imported here: `clearml-tray list` reads the idle policy without the presets' code.
    from tray_app.core.settings.presets import preset_from_dict

    presets: list[Preset] = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        try:
            preset = preset_from_dict(item, strict=False, where=f"saved preset #{index}")
        except PresetFormatError as exc:
            warnings.append(f"{exc}; this preset was skipped.")
            continue
        if preset.name in seen:
            warnings.append(
                f"Two saved presets are named {preset.name!r}; the second one was skipped."
            )
            continue
        seen.add(preset.name)
        presets.append(preset)
    return presets


# --- load / save --------------------------------------------------------------------------------


# settings.json holds options and presets: kilobytes. A bigger "settings file" is not ours.
MAX_SETTINGS_BYTES = 8 * 1024 * 1024


class _NotRegular(Exception):
    pass


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes.

    Opened non-blocking: a FIFO in its place neither blocks the start nor is read forever.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegular("is not a regular file (a pipe or a device?)")
        data = read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _NotRegular(f"is larger than {limit // (1024 * 1024)} MB")
    return data


def _move_aside(path: Path) -> Path | None:
    try:
        backup = backup_file(path)
        path.unlink()
    except OSError as exc:
        log.warning("could not move the broken settings file %s aside: %s", path, exc)
        return None
    return backup


def load_settings(path: str | os.PathLike[str] | None = None) -> LoadedSettings:
    """Read settings and presets; never raises for bad content (see the module docstring)."""
    file = Path(path) if path is not None else default_settings_path()
    try:
        raw = _read_regular(file, MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        return LoadedSettings(Settings(), [])
    except _NotRegular as exc:
        # Not moved aside: copying a FIFO or /dev/zero would hang or fill the disk.
        warning = f"The settings file {file} {exc}; using defaults."
        log.warning("%s", warning)
        return LoadedSettings(Settings(), [], [warning])
    except OSError as exc:
        # Unreadable (permissions, I/O error): don't move it, it may well be fine.
        warning = f"The settings file {file} cannot be read ({exc.strerror}); using defaults."
        log.warning("%s", warning)
        return LoadedSettings(Settings(), [], [warning])

    document: Any = None
    reason = ""
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    except json.JSONDecodeError as exc:
        reason = f"it is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    except RecursionError:
        reason = "its JSON is nested too deeply"
    if not reason:
        if not isinstance(document, dict):
            reason = "it does not hold a JSON object"
        elif not isinstance(document.get("settings", {}), dict):
            reason = 'its "settings" entry is not an object'
        elif not isinstance(document.get("presets", []), list):
            reason = 'its "presets" entry is not a list'
        elif not isinstance(document.get("schema_version", SCHEMA_VERSION), int) or isinstance(
            document.get("schema_version"), bool
        ):
            reason = "its schema_version is not a number"
    if reason:
        backup = _move_aside(file)
        where = f"it was moved to {backup}" if backup else "it could not be moved aside"
        warning = (
            f"The settings file {file} was unreadable ({reason}): {where} and the default "
            "settings are used."
        )
        log.warning("%s", warning)
        return LoadedSettings(Settings(), [], [warning], backup)

    assert isinstance(document, dict)
    warnings: list[str] = []
    version = document.get("schema_version", SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        warnings.append(
            f"The settings file {file} was written by a newer version of the app (schema "
            f"{version}); options this version does not know are kept as they are."
        )
    settings, field_warnings = settings_from_dict(document.get("settings", {}))
    presets = _presets_from_list(document.get("presets", []), field_warnings)
    backup_path: Path | None = None
    if field_warnings:
        # Nothing is lost silently: the original values stay in a copy of the file.
        try:
            backup_path = backup_file(file)
        except OSError as exc:
            log.warning("could not back up %s: %s", file, exc)
        if backup_path is not None:
            field_warnings.append(f"The original settings file was copied to {backup_path}.")
    warnings.extend(field_warnings)
    for warning in warnings:
        log.warning("%s", warning)
    return LoadedSettings(settings, presets, warnings, backup_path)


@dataclass(frozen=True, slots=True)
class SettingsProblem:
    """Why the settings file, as it is now, is not used: file, line (when known), reason."""

    file: Path
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else str(self.file)
        return f"{where}: {self.reason}"


def _line_of(text: str, warning: str) -> int | None:
    """The line of the setting a warning names ("Setting 'idle.window_minutes' …")."""
    match = re.search(r"'([A-Za-z_.\[\]0-9]+)'", warning)
    if match is None:
        return None
    key = re.split(r"[.\[]", match.group(1).rstrip("]"))[-1]
    at = text.find(f'"{key}"')
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def read_settings_file(
    path: str | os.PathLike[str] | None = None,
) -> LoadedSettings | SettingsProblem:
    """The settings file as it is now, read for a user who is editing it: nothing is moved
    aside, copied or reset. A file with any problem is not used at all (the first problem is
    returned, with its line); a missing file means the defaults."""
    file = Path(path) if path is not None else default_settings_path()
    try:
        raw = _read_regular(file, MAX_SETTINGS_BYTES)
    except FileNotFoundError:
        return LoadedSettings(Settings(), [])
    except _NotRegular as exc:
        return SettingsProblem(file, str(exc))
    except OSError as exc:
        return SettingsProblem(file, f"cannot be read ({exc.strerror})")
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        return SettingsProblem(file, "it is not UTF-8 text")
    except json.JSONDecodeError as exc:
        return SettingsProblem(file, f"not valid JSON (column {exc.colno}: {exc.msg})", exc.lineno)
    except RecursionError:
        return SettingsProblem(file, "its JSON is nested too deeply")
    if not isinstance(document, dict):
        return SettingsProblem(file, "it does not hold a JSON object")
    if not isinstance(document.get("settings", {}), dict):
        return SettingsProblem(file, 'its "settings" entry is not an object')
    if not isinstance(document.get("presets", []), list):
        return SettingsProblem(file, 'its "presets" entry is not a list')
    settings, warnings = settings_from_dict(document.get("settings", {}))
    presets = _presets_from_list(document.get("presets", []), warnings)
    if warnings:
        return SettingsProblem(file, warnings[0], _line_of(text, warnings[0]))
    return LoadedSettings(settings, presets)


def read_idle_policy(path: str | os.PathLike[str] | None = None) -> IdlePolicy:
    """The idle policy as the tray would load it, for `clearml-tray list` without a tray: read
    only (a broken file is neither moved nor copied: that is the tray's to do and say), and
    the defaults wherever the file has nothing usable."""
    file = Path(path) if path is not None else default_settings_path()
    try:
        document = json.loads(_read_regular(file, MAX_SETTINGS_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError, _NotRegular):
        return IdlePolicy()
    data = document.get("settings") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        return IdlePolicy()
    return settings_from_dict(data)[0].idle


def _existing_top_level_extras(file: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError, RecursionError, _NotRegular):
        document = json.loads(_read_regular(file, MAX_SETTINGS_BYTES).decode("utf-8"))
        if isinstance(document, dict):
            return {
                k: v
                for k, v in document.items()
                if k not in ("schema_version", "settings", "presets")
            }
    return {}


def save_settings(
    settings: Settings, presets: list[Preset], path: str | os.PathLike[str] | None = None
) -> Path:
    """Write settings and presets atomically; returns the path written.

    Raises SettingsWriteError (the previous file is left intact) when the write fails.
    """
    from tray_app.core.settings.presets import preset_to_dict

    file = Path(path) if path is not None else default_settings_path()
    document: dict[str, Any] = _existing_top_level_extras(file)
    document["schema_version"] = SCHEMA_VERSION
    document["settings"] = settings_to_dict(settings)
    document["presets"] = [preset_to_dict(p) for p in presets]
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    try:
        atomic_write_text(file, text)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            detail = "the disk is full"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            detail = "permission denied" if exc.errno != errno.EROFS else "read-only file system"
        else:
            detail = exc.strerror or str(exc)
        raise SettingsWriteError(
            f"Settings could not be saved to {file}: {detail}. The previous settings file is "
            "unchanged.",
            file,
        ) from exc
    return file
