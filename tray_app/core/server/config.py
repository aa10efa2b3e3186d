"""clearml.conf discovery and parsing, resolved exactly as the ClearML SDK resolves it.

The rules mirror the SDK (`clearml/backend_config/defs.py`, `config.py`,
`backend_api/session/session.py`, `backend_api/utils.py`) so that the tray talks to the same
server with the same keys as `clearml-session` and the user's scripts:

* `CLEARML_CONFIG_FILE` (legacy `TRAINS_CONFIG_FILE`) names the only file read; otherwise
  `~/trains.conf` and then `~/clearml.conf` are each parsed on their own and deep-merged, the
  later one winning. A missing file is skipped.
* `CLEARML_*` (then legacy `TRAINS_*`) environment variables override the files; empty values
  count as unset, values are stripped.
* api host = env or `api.api_server` or legacy `api.host` or the hosted default; the web and
  files hosts are derived from it when not given (`api.` → `app.` / `files.`, or port 8008 →
  8080 / 8081).
* `api.verify_certificate` (or `CLEARML_API_HOST_VERIFY_CERT`) is a boolean, or else a CA
  bundle path.

Only what the tray uses is checked beyond that: the API server must be an http(s) URL it can
reach; the web server is used for "Open in ClearML web UI" links only, so one that is not an
http(s) URL just gives no link (`web_link_base`). The files server is the SDK's business (S3,
GCS, Azure, a shared folder…): any value the SDK takes is taken, and one it cannot read (a
number, an object) leaves `files_server` empty instead of stopping the tray.

An explicit `config_file` (the app's "ClearML config file" setting) plays the role of
`CLEARML_CONFIG_FILE`.

Tested in tests/unit/server/test_config_errors.py and, against the real SDK,
test_config_differential.py.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlsplit, urlunparse

from tray_app.core.atomic import read_at_most
from tray_app.core.server.errors import (
    ConfigInvalid,
    ConfigNotFound,
    CredentialsMissing,
)

DEFAULT_API_HOST = "https://api.clear.ml"
DEFAULT_WEB_HOST = "https://app.clear.ml"
DEFAULT_FILES_HOST = "https://files.clear.ml"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    api_server: str
    web_server: str
    files_server: str
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    auth_token: str = field(default="", repr=False)
    verify: bool | str = True  # False, True, or a CA bundle path
    source: tuple[Path, ...] = ()  # the files that were read, in merge order


# --- environment -----------------------------------------------------------------------------


def _env_value(env: Mapping[str, str], *names: str) -> str | None:
    """The SDK's EnvEntry: the first non-empty (after strip) of the names, else None."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _home(env: Mapping[str, str]) -> Path:
    key = "USERPROFILE" if os.name == "nt" else "HOME"
    home = env.get(key)
    return Path(home) if home else Path.home()


def _expand_user(path: str, env: Mapping[str, str]) -> Path:
    if path == "~" or path.startswith(("~/", "~" + os.sep)):
        return _home(env) / path[2:] if len(path) > 1 else _home(env)
    return Path(os.path.expanduser(path))


def candidate_files(
    config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path, ...]:
    """The files the SDK would read, in merge order (existing or not)."""
    env = os.environ if env is None else env
    if config_file is not None and str(config_file).strip():
        return (_expand_user(str(config_file).strip(), env),)
    override = _env_value(env, "CLEARML_CONFIG_FILE", "TRAINS_CONFIG_FILE")
    if override:
        return (_expand_user(override, env),)
    home = _home(env)
    return (home / "trains.conf", home / "clearml.conf")


# --- HOCON parsing ---------------------------------------------------------------------------

# pyhocon reads `os.environ` for `${?VAR}` and would fetch `include url(...)` from the network.
# Both are redirected while one file is parsed: substitutions see the caller's `env`, and URL
# includes are refused (a config file must not make the tray talk to arbitrary hosts).
_PARSE_LOCK = threading.Lock()


class _Outside:
    """Whether a parse reached outside its own text: an include, an environment variable."""

    def __init__(self) -> None:
        self.reached = False


class _WatchedEnv:
    """The caller's `env` as pyhocon reads it (`os.environ.get`), noting that it did."""

    def __init__(self, environ: Mapping[str, str], outside: _Outside) -> None:
        self._environ = environ
        self._outside = outside

    def get(self, key: str, default: str | None = None) -> str | None:
        self._outside.reached = True
        return self._environ.get(key, default)

    def __getitem__(self, key: str) -> str:
        self._outside.reached = True
        return self._environ[key]

    def __contains__(self, key: object) -> bool:
        self._outside.reached = True
        return key in self._environ


class _OsWithEnv:
    def __init__(self, environ: Mapping[str, str], outside: _Outside) -> None:
        self.environ = _WatchedEnv(environ, outside)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _refuse_url(url: str, *args: Any, **kwargs: Any) -> Any:
    raise _UrlIncludeRefused(url)


class _UrlIncludeRefused(Exception):
    pass


class _IncludeRefused(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# A clearml.conf is a few kilobytes; pyhocon needs about ten seconds per megabyte. Bigger files
# (and FIFOs, devices such as /dev/zero) are refused instead of read: they would hang or exhaust
# the tray at every start.
MAX_CONFIG_BYTES = 256 * 1024


def read_config_text(path: Path) -> str:
    """The text of one config file: a regular file of at most MAX_CONFIG_BYTES, UTF-8.

    Raises `_IncludeRefused` (not a regular file, too large), OSError, UnicodeDecodeError.
    The file is opened non-blocking so that a FIFO swapped in after a check cannot hang us.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise _IncludeRefused(str(path), "not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise _IncludeRefused(
                str(path), f"larger than {MAX_CONFIG_BYTES // 1024} KB ({info.st_size} bytes)"
            )
        data = read_at_most(fd, MAX_CONFIG_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise _IncludeRefused(str(path), f"larger than {MAX_CONFIG_BYTES // 1024} KB")
    return data.decode("utf-8")


def _bounded_parse_file(original: Any, outside: _Outside) -> Any:
    """pyhocon's `parse_file` (what includes use), reading through `read_config_text`."""
    from pyhocon.config_parser import DEFAULT_SUBSTITUTION

    def parse_file(
        cls: Any, filename: str, encoding: str = "utf-8", required: bool = True, **kw: Any
    ) -> Any:
        outside.reached = True
        try:
            text = read_config_text(Path(filename))
        except (FileNotFoundError, IsADirectoryError):
            # What pyhocon (and so the SDK) does: skipped unless `required`.
            return original.__func__(cls, filename, encoding, required, **kw)
        except UnicodeDecodeError as exc:
            raise _IncludeRefused(filename, "not UTF-8 text") from exc
        return cls.parse_string(
            text,
            os.path.dirname(filename),
            kw.get("resolve", True),
            kw.get("unresolved_value", DEFAULT_SUBSTITUTION),
        )

    return classmethod(parse_file)


@contextmanager
def _pyhocon_sandbox(env: Mapping[str, str], outside: _Outside) -> Iterator[Any]:
    import pyhocon.config_parser as parser_module
    from pyhocon import ConfigFactory

    with _PARSE_LOCK:
        saved_os = parser_module.os
        saved_url = ConfigFactory.__dict__["parse_URL"]
        saved_file = ConfigFactory.__dict__["parse_file"]
        parser_module.os = _OsWithEnv(env, outside)
        ConfigFactory.parse_URL = staticmethod(_refuse_url)
        ConfigFactory.parse_file = _bounded_parse_file(saved_file, outside)
        try:
            yield ConfigFactory
        finally:
            parser_module.os = saved_os
            ConfigFactory.parse_URL = saved_url
            ConfigFactory.parse_file = saved_file


_LINE_IN_MESSAGE = re.compile(r"line:?\s*(\d+)")
# The SDK's bundled pyhocon fork fails on `include required(file("x"))` (TypeError in its
# include handler), so clearml-session and scripts could not use such a file: say so up front
# instead of connecting with a configuration nothing else can read.
_SDK_UNREADABLE_INCLUDE = re.compile(
    r"^[ \t]*include\s+required\s*\(\s*(?:file|url|classpath)\s*\(", re.M
)


# An include statement, even one whose glob matches nothing yet (so that no parse_file call
# reveals it): such a configuration depends on more than its own text.
_INCLUDE = re.compile(r"\binclude\s+(?:required\s*\(\s*)?(?:\"|url\s*\(|file\s*\(|package\s*\()")


# pyparsing says what it expected as its grammar, which is thousands of characters for a line
# that is not HOCON at all (a pasted terminal line, say): that is no message for a person.
_SHORT_EXPECTATION = 40
_SETTING_MARKS = re.compile(r"[:={}\[\]]|^\s*include\b")


def syntax_problem(text: str, line: int, column: int, expected: str) -> tuple[str, int]:
    """pyparsing's failure as (words a person can act on, the line to name).

    A bare line (no `:`, `=`, braces or include) makes pyparsing read it as a key and fail
    where its value was due, the next line with content or past the end: the line named is the
    bare one. Its text is not repeated (a stray line may be a pasted secret)."""
    if len(expected) <= _SHORT_EXPECTATION:
        return f"syntax error near column {column}: {expected}", line
    lines = text.splitlines()
    for number in range(min(line - 1, len(lines)), 0, -1):
        content = lines[number - 1].strip()
        if not content or content.startswith(("#", "//")):
            continue
        if not _SETTING_MARKS.search(content):
            return "not a setting (`key: value` or `key { … }`)", number
        break
    return "syntax error: a line here or just above is not `key: value` or `key { … }`", line


def _parse_file(path: Path, env: Mapping[str, str], outside: _Outside) -> tuple[Any, str]:
    """Parse one file into a pyhocon ConfigTree (and its text), or raise ConfigInvalid with
    file and line. `outside` notes whether it used an include or an environment variable."""
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    try:
        text = read_config_text(path)
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigInvalid("the file is not valid UTF-8 text", path, line) from exc
    except _IncludeRefused as exc:
        raise ConfigInvalid(f"cannot be used: {exc.reason}", path) from exc
    except OSError as exc:
        raise ConfigInvalid(f"cannot be read ({exc.strerror or exc})", path) from exc
    unreadable = _SDK_UNREADABLE_INCLUDE.search(text)
    if unreadable:
        raise ConfigInvalid(
            'the ClearML SDK cannot read `include required(file("..."))`; '
            'write `include required("...")` instead',
            path,
            text.count("\n", 0, unreadable.start()) + 1,
        )
    if _INCLUDE.search(text):
        outside.reached = True
    try:
        with _pyhocon_sandbox(env, outside) as factory:
            tree = factory.parse_string(text, basedir=str(path.parent))
    except _UrlIncludeRefused as exc:
        raise ConfigInvalid(
            f"includes a URL ({exc}); only file includes are supported", path
        ) from exc
    except _IncludeRefused as exc:
        raise ConfigInvalid(
            f"the included file {exc.path} cannot be used: {exc.reason}", path
        ) from exc
    except ParseBaseException as exc:
        words, line = syntax_problem(text, exc.lineno, exc.col, exc.msg)
        raise ConfigInvalid(words, path, line) from exc
    except ConfigException as exc:
        message = str(exc)
        match = _LINE_IN_MESSAGE.search(message)
        raise ConfigInvalid(message, path, int(match.group(1)) if match else None) from exc
    except OSError as exc:  # a required include that does not exist
        missing = getattr(exc, "filename", None) or str(exc)
        raise ConfigInvalid(f"included file cannot be read: {missing}", path) from exc
    except RecursionError as exc:
        raise ConfigInvalid(
            "includes or substitutions are circular, or objects are nested too deeply", path
        ) from exc
    from pyhocon import ConfigTree

    if not isinstance(tree, ConfigTree):
        raise ConfigInvalid("the top level must be an object ({ ... })", path)
    return tree, text


def _get(tree: Any, key: str, path: tuple[Path, ...]) -> Any:
    from pyhocon.exceptions import ConfigException

    try:
        return tree.get(key, None)
    except ConfigException as exc:
        where = path[-1] if path else None
        raise ConfigInvalid(f"'{key}' cannot be read: {exc}", where) from exc


def _scalar(tree: Any, key: str, path: tuple[Path, ...]) -> str:
    """A text setting, "" when absent; an object or a list there is an error, never ignored
    (ignoring `api { api_server { … } }` would send the keys to the hosted server)."""
    value = _get(tree, key, path)
    if isinstance(value, dict | list):
        kind = "an object" if isinstance(value, dict) else "a list"
        raise ConfigInvalid(f"'{key}' must be a text value, not {kind}", path[-1] if path else None)
    return _text(value)


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- resolution (the SDK's Session.get_*_host) -----------------------------------------------


def redact_url(url: str) -> str:
    """`url` with a password in it replaced by *** (for messages)."""
    return re.sub(r"(://[^/@\s:]*:)[^/@\s]*@", r"\1***@", url)


def url_problem(url: str) -> str:
    """Why `url` cannot be a server address ("" when it can), as a sentence fragment."""
    if any(not ch.isprintable() or ch.isspace() for ch in url):
        return "contains spaces or control characters (a line break?)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            return "has a port outside 1-65535"
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has a port outside 1-65535"
    return ""


def web_link_base(web_server: str) -> str:
    """The web server as a base for links the tray opens: "" when it is not an http(s) URL
    with a host (the SDK takes any text there; the tray only opens what a browser should)."""
    return web_server.rstrip("/") if web_server and not url_problem(web_server) else ""


def derive_web_server(api_server: str) -> str:
    if api_server == DEFAULT_API_HOST:
        return DEFAULT_WEB_HOST
    if "://demoapi." in api_server:
        return api_server.replace("://demoapi.", "://demoapp.", 1)
    if "://api." in api_server:
        return api_server.replace("://api.", "://app.", 1)
    try:
        port = urlparse(api_server).port
    except ValueError:
        port = None
    if port == 8008:
        return api_server.replace(":8008", ":8080", 1)
    raise ConfigInvalid(
        f"cannot derive the web server address from the API server {api_server!r}: "
        "set api.web_server (or CLEARML_WEB_HOST)"
    )


def derive_files_server(api_server: str, web_server: str) -> str:
    if api_server == DEFAULT_API_HOST:
        return DEFAULT_FILES_HOST
    parsed = urlparse(web_server)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if port:
        parsed = parsed._replace(netloc=parsed.netloc.replace(f":{port}", ":8081", 1))
    elif parsed.netloc.startswith("demoapp."):
        parsed = parsed._replace(netloc=parsed.netloc.replace("demoapp.", "demofiles.", 1))
    elif parsed.netloc.startswith("app."):
        parsed = parsed._replace(netloc=parsed.netloc.replace("app.", "files.", 1))
    else:
        parsed = parsed._replace(netloc=parsed.netloc + ":8081")
    return str(urlunparse(parsed))


_TRUE = {"y", "yes", "t", "true", "on", "1"}
_FALSE = {"n", "no", "f", "false", "off", "0"}


def resolve_verify(value: Any) -> bool | str:
    """`api.verify_certificate`: a truth string or bool, otherwise a CA bundle path."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return value
    return bool(value)


# The text settings that the resolution reads from the files.
ACCESS_KEY = "api.credentials.access_key"
SECRET_KEY = "api.credentials.secret_key"
SETTINGS = (
    ACCESS_KEY,
    SECRET_KEY,
    "api.api_server",
    "api.host",
    "api.web_server",
    "api.files_server",
)
VERIFY = "api.verify_certificate"
# Settings the SDK reads as text only (`.rstrip("/")` on whatever the file holds).
TEXT_ONLY = ("api.web_server", "api.files_server")
FILES_SERVER = "api.files_server"


def _present(tree: Any, key: str) -> bool:
    """Whether `key` is written in the tree (even as null, which `get` returns as None)."""
    missing = object()
    try:
        return tree.get(key, missing) is not missing
    except Exception:
        return False


@dataclass(frozen=True, slots=True)
class FileValues:
    """What the config files say, before the environment overrides it.

    A setting that cannot be used (an object where text belongs) is kept as its problem and
    raised only if the resolution reads it, as the SDK would (an environment variable may
    stand in for it).
    """

    source: tuple[Path, ...]  # the files read, in merge order
    settings: Mapping[str, str] = field(default_factory=dict)  # SETTINGS: text, "" if absent
    problems: Mapping[str, str] = field(default_factory=dict)  # SETTINGS and VERIFY: reason
    verify: bool | str | None = None  # api.verify_certificate resolved; None when absent
    # Parsed from the files' own text alone: no include, no environment variable.
    self_contained: bool = True
    texts: tuple[str, ...] = field(default=(), repr=False)  # of `source`, same order

    def setting(self, key: str) -> str:
        if key in self.problems:
            raise ConfigInvalid(self.problems[key], self.source[-1] if self.source else None)
        return self.settings.get(key, "")


def read_files(candidates: tuple[Path, ...], env: Mapping[str, str]) -> FileValues:
    """Parse and merge the existing `candidates` (pyhocon): the settings they hold."""
    from pyhocon import ConfigTree

    read: list[Path] = []
    texts: list[str] = []
    outside = _Outside()
    tree: Any = ConfigTree()
    for path in candidates:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            # A directory on the way the user cannot enter (EACCES), a loop of links, …
            raise ConfigInvalid(f"cannot be read ({exc.strerror or exc})", path) from exc
        if stat.S_ISDIR(info.st_mode):
            continue
        parsed, text = _parse_file(path, env, outside)
        tree = ConfigTree.merge_configs(tree, parsed, copy_trees=True)
        read.append(path)
        texts.append(text)
    source = tuple(read)
    for section in ("api", "api.credentials"):
        value = _get(tree, section, source)
        if value is not None and not isinstance(value, ConfigTree):
            raise ConfigInvalid(
                f"'{section}' must be an object ({section} {{ ... }}), not {value!r}",
                source[-1] if source else None,
            )
    settings: dict[str, str] = {}
    problems: dict[str, str] = {}
    for key in SETTINGS:
        try:
            settings[key] = _scalar(tree, key, source)
        except ConfigInvalid as exc:
            problems[key] = exc.reason
    for key in TEXT_ONLY:
        # The SDK strips these as text: a number, true/false or null there fails in the SDK.
        raw = _get(tree, key, source) if key not in problems else ""
        if (raw is None and _present(tree, key)) or isinstance(raw, bool | int | float):
            problems[key] = f"'{key}' must be text, not {raw!r}"
    verify: bool | str | None = None
    try:
        raw = _get(tree, VERIFY, source)
        verify = None if raw is None else resolve_verify(raw)
    except ConfigInvalid as exc:
        problems[VERIFY] = exc.reason
    return FileValues(source, settings, problems, verify, not outside.reached, tuple(texts))


def resolve(
    files: FileValues, candidates: tuple[Path, ...], env: Mapping[str, str]
) -> ServerConfig:
    """The SDK's resolution of what the files say and the environment (pure)."""
    source = files.source
    token = _env_value(env, "CLEARML_AUTH_TOKEN") or ""
    if token:
        access_key = secret_key = ""
    else:
        access_key = _env_value(
            env, "CLEARML_API_ACCESS_KEY", "TRAINS_API_ACCESS_KEY"
        ) or files.setting(ACCESS_KEY)
        secret_key = _env_value(
            env, "CLEARML_API_SECRET_KEY", "TRAINS_API_SECRET_KEY"
        ) or files.setting(SECRET_KEY)

    if not source and not (token or access_key or secret_key):
        searched = ", ".join(str(p) for p in candidates)
        raise ConfigNotFound(f"No ClearML configuration found (looked for {searched}).", candidates)

    api_server = (
        _env_value(env, "CLEARML_API_HOST", "TRAINS_API_HOST")
        or files.setting("api.api_server")
        or files.setting("api.host")
        or DEFAULT_API_HOST
    ).rstrip("/")
    problem = url_problem(api_server)
    if problem:
        raise ConfigInvalid(
            f"the API server {redact_url(api_server)!r} {problem}", source[-1] if source else None
        )
    web_server = (
        _env_value(env, "CLEARML_WEB_HOST", "TRAINS_WEB_HOST") or files.setting("api.web_server")
    ).rstrip("/") or derive_web_server(api_server)
    files_env = _env_value(env, "CLEARML_FILES_HOST", "TRAINS_FILES_HOST")
    if files_env is None and FILES_SERVER in files.problems:
        # The SDK cannot read it either, but the tray never talks to the files server: it
        # stays unknown rather than stopping the tray.
        files_server = ""
    else:
        files_server = (files_env or files.setting(FILES_SERVER)).rstrip("/") or (
            derive_files_server(api_server, web_server)
        )

    where = source[-1] if source else None

    verify_env = _env_value(env, "CLEARML_API_HOST_VERIFY_CERT", "TRAINS_API_HOST_VERIFY_CERT")
    if VERIFY in files.problems:  # read (and failed) even when the environment overrides it
        raise ConfigInvalid(files.problems[VERIFY], where)
    if verify_env is not None:
        verify = resolve_verify(verify_env)
    else:
        verify = True if files.verify is None else files.verify

    if not (token or access_key or secret_key):
        names = ", ".join(str(p) for p in source)
        raise CredentialsMissing(
            f"{names} has no ClearML credentials: add api.credentials.access_key and secret_key "
            "(run `clearml-init`), or set CLEARML_API_ACCESS_KEY and CLEARML_API_SECRET_KEY."
        )
    return ServerConfig(
        api_server=api_server,
        web_server=web_server,
        files_server=files_server,
        access_key=access_key,
        secret_key=secret_key,
        auth_token=token,
        verify=verify,
        source=source,
    )


def load_server_config(
    config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> ServerConfig:
    """Resolve the ClearML server address and credentials as the SDK would.

    Pure apart from reading the config files; run it off the GUI thread.
    """
    env = os.environ if env is None else env
    candidates = candidate_files(config_file, env)
    return resolve(read_files(candidates, env), candidates, env)
