"""clearml.conf discovery and parsing, exactly as the ClearML SDK resolves it.

SKELETON: the dataclass and the exception types are the contract; `load_server_config` is
implemented by the config work item.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(Exception):
    """Any problem with the ClearML client configuration; `str()` is user-facing."""


class ConfigNotFound(ConfigError):
    pass


class ConfigInvalid(ConfigError):
    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class CredentialsMissing(ConfigError):
    pass


@dataclass(frozen=True, slots=True)
class ServerConfig:
    api_server: str
    web_server: str
    files_server: str
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    auth_token: str = field(default="", repr=False)
    verify: bool | str = True  # False, True, or a CA bundle path
    source: tuple[Path, ...] = ()


def load_server_config(
    config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> ServerConfig:
    raise NotImplementedError
