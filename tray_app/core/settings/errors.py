"""The settings wing's errors: the user's own files and secrets that cannot be used.

    Exception
     ├── SettingsError             settings.json could not be written (`str()` says why)
     │    └── SettingsWriteError   ... and which file
     ├── ValueError
     │    └── PresetError          a preset or a presets file is not usable
     │         ├── PresetInvalid   a preset's values (its name and every reason)
     │         └── PresetFormatError  a presets JSON document (file, preset, field)
     └── SecretStoreError          a secret could not be read, stored or deleted

A settings file that cannot be read is not an error: it is moved aside, the defaults are used
and a warning says so (settings.load_settings).

Raised and worded in tests/unit/settings/test_settings.py, test_presets.py and test_secrets.py.
"""

from __future__ import annotations

from pathlib import Path


class SettingsError(Exception):
    """Settings could not be persisted; `str()` is user-facing."""


class SettingsWriteError(SettingsError):
    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class PresetError(ValueError):
    """A preset (or a presets file) is not usable; `str()` is user-facing."""


class PresetInvalid(PresetError):
    def __init__(self, name: str, reasons: list[str]) -> None:
        super().__init__(f"preset '{name}' is invalid: " + "; ".join(reasons))
        self.name = name
        self.reasons = reasons


class PresetFormatError(PresetError):
    """A presets JSON document is malformed; names the file, preset and field when known."""


class SecretStoreError(Exception):
    """A secret could not be read, stored or deleted; `str()` is user-facing."""
