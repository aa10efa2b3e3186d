"""Which files make up the ClearML configuration in use, for following their changes.

The candidates the SDK reads (config.py `candidate_files`: `CLEARML_CONFIG_FILE` or the
settings' file, else `~/trains.conf` and `~/clearml.conf`), present or not, so that a
`clearml-init` writing a missing one is noticed; and the files they `include`, found in their
text (quoted file names, `required(...)` and `file(...)` forms, relative to the including
file), a few levels deep. Reading an include that does not parse is the loader's business: a
name that only looks like an include costs one `stat`.

Tested in tests/unit/server/test_config_files.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from tray_app.core.server.config import candidate_files, read_config_text

MAX_FILES = 32  # a configuration with more files than this is not followed past them
_INCLUDE = re.compile(
    r"^[ \t]*include\s+(?:required\s*\(\s*)?(?:file\s*\(\s*)?\"([^\"\n]+)\"", re.MULTILINE
)


def included_files(text: str, base: Path) -> list[Path]:
    """The files `text` includes, resolved against `base` (the including file's folder)."""
    found = []
    for match in _INCLUDE.finditer(text):
        name = os.path.expanduser(match.group(1))
        if "://" in name:
            continue  # URL includes are refused by the loader anyway
        path = Path(name)
        found.append(path if path.is_absolute() else base / path)
    return found


def config_files(
    config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Every file whose change may change the configuration (present or not)."""
    env = os.environ if env is None else env
    files: list[Path] = list(candidate_files(config_file, env))
    todo = list(files)
    while todo and len(files) < MAX_FILES:
        path = todo.pop(0)
        try:
            text = read_config_text(path)
        except Exception:  # missing, unreadable, not text: its own stamp says when it changes
            continue
        for include in included_files(text, path.parent):
            if include not in files and len(files) < MAX_FILES:
                files.append(include)
                todo.append(include)
    return files
