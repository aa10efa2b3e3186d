"""What clearml.conf says, cached for `clearml-tray list`: no pyhocon while the files are unchanged.

Importing pyhocon (and pyparsing) and parsing a clearml.conf is ~65 ms, a third of a `list`
that asks the server. The settings the resolution reads (`core/server/config.py` `FileValues`)
are kept in `<user cache dir>/clearml-tray/clearml-conf.json`, keyed by each candidate file's
path and stat (device, inode, size, mtime and ctime in ns; a missing file too, so that one
appearing is seen). The environment is applied afresh at every load (`config.resolve`).

The secret key is never written: the cache keeps where it stands in the file (which file,
start and end) and reads it from there, the file being unchanged (stat checked before and
after the read). Nothing is cached when that cannot be known for sure: the secret is not
written verbatim exactly once in the files, the files use an include or an environment
variable, or a server URL carries a password. Any problem with the cache file is a miss.

An entry is checked against the files it claims to come from, never trusted for where it
points: its files must be exactly the candidates that exist, and it carries an HMAC of its
content keyed by a digest of those files' text (read again at every hit: microseconds, it is
the parse that costs). An entry rewritten to name another server, another file or another
place for the secret does not verify without the configuration's own text, and is a miss.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TypeGuard

from tray_app import APP_NAME
from tray_app.core.server.config import (
    SECRET_KEY,
    SETTINGS,
    VERIFY,
    FileValues,
    ServerConfig,
    candidate_files,
    read_config_text,
    read_files,
    redact_url,
    resolve,
)

CACHE_VERSION = 2
FILE_NAME = "clearml-conf.json"
MAX_CACHE_BYTES = 64 * 1024
URL_SETTINGS = ("api.api_server", "api.host", "api.web_server", "api.files_server")

Signature = list[list[object]]  # [[path, stat fields or None], ...] as JSON holds it


def cache_file(env: Mapping[str, str]) -> Path:
    """`<user cache dir>/clearml-tray/clearml-conf.json`."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        # platformdirs' rule, without its import (~8 ms, a tenth of a cached `list`).
        base = env.get("XDG_CACHE_HOME", "")
        if not base.strip():
            base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
        return Path(base) / APP_NAME / FILE_NAME
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / FILE_NAME


def signature(candidates: tuple[Path, ...]) -> Signature | None:
    """Each candidate's identity and version as stat sees it; None when one cannot be told."""
    found: Signature = []
    for path in candidates:
        try:
            info = path.stat()
        except FileNotFoundError:
            found.append([str(path), None])
            continue
        except OSError:
            return None  # the parse reports it
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file"
        fields = [kind, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
        found.append([str(path), fields])
    return found


def secret_location(files: FileValues) -> list[int] | None:
    """[file index, start, end] of the secret key's only verbatim occurrence in the files' text,
    [] when there is no secret; None when it is not there exactly once (escaped, repeated)."""
    secret = files.settings.get(SECRET_KEY, "")
    if not secret:
        return []
    spots = [
        (index, start)
        for index, text in enumerate(files.texts)
        for start in _occurrences(text, secret)
    ]
    if len(spots) != 1:
        return None
    index, start = spots[0]
    return [index, start, start + len(secret)]


def _occurrences(text: str, part: str) -> list[int]:
    found: list[int] = []
    start = text.find(part)
    while start >= 0 and len(found) < 2:  # a second one already rules the cache out
        found.append(start)
        start = text.find(part, start + 1)
    return found


def _files_key(texts: tuple[str, ...] | list[str]) -> bytes:
    """A digest of the configuration files' text (each framed by its length)."""
    digest = hashlib.sha256(b"clearml-tray config cache\0")
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def _mac(entry: Mapping[str, object], key: bytes) -> str:
    body = json.dumps(
        {k: v for k, v in entry.items() if k != "mac"}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _existing_files(sig: Signature) -> list[str]:
    """The candidates that are files, in merge order: what `read_files` reads."""
    return [
        str(path) for path, fields in sig if isinstance(fields, list) and fields[:1] == ["file"]
    ]


def cache_entry(files: FileValues, sig: Signature) -> dict[str, object] | None:
    """The JSON to keep for `files` (no secret in it), or None when they cannot be cached."""
    if not files.self_contained or SECRET_KEY in files.problems:
        return None
    if any(
        redact_url(files.settings.get(key, "")) != files.settings.get(key, "")
        for key in URL_SETTINGS
    ):
        return None  # a password inside a URL is a secret too
    location = secret_location(files)
    if location is None:
        return None
    if [str(p) for p in files.source] != _existing_files(sig):
        return None  # a file came or went while it was parsed
    entry: dict[str, object] = {
        "version": CACHE_VERSION,
        "signature": sig,
        "source": [str(p) for p in files.source],
        "settings": {k: v for k, v in files.settings.items() if k != SECRET_KEY},
        "problems": dict(files.problems),
        "verify": files.verify,
        "secret_at": location,
    }
    entry["mac"] = _mac(entry, _files_key(files.texts))
    return entry


def files_from_entry(
    entry: object, sig: Signature, candidates: tuple[Path, ...]
) -> FileValues | None:
    """The cached settings if `entry` is a well-formed entry for `sig`, the secret read back
    from its file; None otherwise (a miss)."""
    if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION:
        return None
    if entry.get("signature") != sig:
        return None
    source, settings, problems = entry.get("source"), entry.get("settings"), entry.get("problems")
    verify, location, mac = entry.get("verify"), entry.get("secret_at"), entry.get("mac")
    if not (
        isinstance(source, list)
        and source == _existing_files(sig)  # the files that are there, no other
        and _text_map(settings, SETTINGS)
        and _text_map(problems, (*SETTINGS, VERIFY))
        and (verify is None or isinstance(verify, bool | str))
        and isinstance(location, list)
        and all(isinstance(n, int) and not isinstance(n, bool) for n in location)
        and isinstance(mac, str)
    ):
        return None
    paths = tuple(Path(p) for p in source)
    texts = _read_texts(paths)
    if texts is None or not hmac.compare_digest(mac, _mac(entry, _files_key(texts))):
        return None  # not written from these files' text
    values = dict(settings)
    if location:
        secret = _secret_in(texts, location)
        if secret is None:
            return None
        values[SECRET_KEY] = secret
    if signature(candidates) != sig:
        return None  # changed while it was read (an editor saving now): the parse decides
    return FileValues(paths, values, dict(problems), verify, True)


def _text_map(value: object, keys: tuple[str, ...]) -> TypeGuard[dict[str, str]]:
    return isinstance(value, dict) and all(
        k in keys and isinstance(v, str) for k, v in value.items()
    )


def _read_texts(paths: tuple[Path, ...]) -> list[str] | None:
    texts: list[str] = []
    for path in paths:
        try:
            texts.append(read_config_text(path))
        except Exception:
            return None
    return texts


def _secret_in(texts: list[str], location: list[int]) -> str | None:
    if len(location) != 3:
        return None
    index, start, end = location
    if not (0 <= index < len(texts) and 0 <= start < end <= len(texts[index])):
        return None
    return texts[index][start:end]


def load_cached(path: Path, sig: Signature, candidates: tuple[Path, ...]) -> FileValues | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CACHE_BYTES + 1)
        if len(data) > MAX_CACHE_BYTES:
            return None
        return files_from_entry(json.loads(data), sig, candidates)
    except (OSError, ValueError, RecursionError):
        return None


def store(path: Path, entry: dict[str, object]) -> None:
    from tray_app.core.atomic import atomic_write_bytes

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Not durable: the cache is rebuilt from the files whenever it is lost.
        atomic_write_bytes(path, json.dumps(entry).encode(), 0o600, durable=False)
    except OSError:
        pass  # a read-only or full cache directory: every `list` parses, as before


def load_server_config_cached(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    cache: Path | None = None,
) -> ServerConfig:
    """`config.load_server_config`, answered from the cache while the files are unchanged."""
    env = os.environ if env is None else env
    candidates = candidate_files(config_file, env)
    where = cache if cache is not None else cache_file(env)
    sig = signature(candidates)
    if sig is not None and (files := load_cached(where, sig, candidates)) is not None:
        return resolve(files, candidates, env)
    files = read_files(candidates, env)
    # Stored only if no file changed while it was parsed.
    if sig is not None and signature(candidates) == sig:
        entry = cache_entry(files, sig)
        if entry is not None:
            store(where, entry)
    return resolve(files, candidates, env)
