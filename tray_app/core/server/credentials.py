"""ClearML keys entered in the tray: read what the web UI gives, check it, write clearml.conf.

The ClearML web UI (Settings → Workspace → Create new credentials) hands out an `api { … }`
block — the one `clearml-init` asks to paste — with the web, API and files servers and the
access and secret keys. `parse_pasted` reads that block (or a bare `credentials { … }`, or the
two keys alone); `from_fields` takes the keys and one server address typed by hand, deriving the
other two addresses the way `clearml-init` does (app./api./files., ports 8080/8008/8081).

Nothing is saved before the server has accepted the keys (`CredentialsFlow.submit` logs in
with them). Then clearml.conf is written as `clearml-init` writes it: a new file gets its `api`
section (and, when the ClearML SDK is installed, the SDK's default `sdk` section after it, as
`clearml-init` appends it); an existing file gets its keys and addresses replaced where they
stand, or, where they cannot be found once each, an `api` section added at its end that
overrides the ones above (HOCON merges objects, the later value wins). The old file is kept as
a backup, the new one written atomically with mode 600 (it holds a secret).

Tested in tests/unit/server/test_credentials.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tray_app.core.atomic import atomic_write_text, backup_file
from tray_app.core.server.config import ServerConfig, url_problem
from tray_app.core.server.errors import ClearMLAuthError, ClearMLError

log = logging.getLogger(__name__)

MAX_PASTE = 16 * 1024
_KEY = re.compile(r"^[A-Za-z0-9+/=_.:-]{4,256}$")


@dataclass(frozen=True, slots=True)
class Credentials:
    api_server: str
    web_server: str
    files_server: str
    access_key: str
    secret_key: str = field(repr=False)


class CredentialsProblem(ValueError):
    """What is wrong with what was entered, in words (never the secret)."""


def _clean_url(url: str, what: str) -> str:
    url = url.strip().rstrip("/")
    if url and "://" not in url:
        # clearml-init's rule: an address with a port is plain http, one without is https.
        url = ("http://" if ":" in url else "https://") + url
    problem = url_problem(url) if url else "is empty"
    if problem:
        raise CredentialsProblem(f"The {what} address {url!r} {problem}.")
    return url


def _with_host(url: str, old: str, new: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(old, new, 1)))


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{host}:{port}"))


def derive_servers(address: str) -> tuple[str, str, str]:
    """(api, web, files) from one address, web or API, as `clearml-init` derives them."""
    url = _clean_url(address, "server")
    parts = urlsplit(url)
    host = parts.hostname or ""
    for api, web, files in (("demoapi.", "demoapp.", "demofiles."), ("api.", "app.", "files.")):
        if host.startswith(web):
            return _with_host(url, web, api), url, _with_host(url, web, files)
        if host.startswith(api):
            return url, _with_host(url, api, web), _with_host(url, api, files)
    if parts.port == 8080:
        return _with_port(url, 8008), url, _with_port(url, 8081)
    if parts.port == 8008:
        return url, _with_port(url, 8080), _with_port(url, 8081)
    # One address for everything (a proxy by path, the demo server): used as it is.
    return url, url, url


def _check_keys(access_key: str, secret_key: str) -> tuple[str, str]:
    access_key, secret_key = access_key.strip(), secret_key.strip()
    if not access_key or not secret_key:
        raise CredentialsProblem("Both the access key and the secret key are needed.")
    for name, value in (("access key", access_key), ("secret key", secret_key)):
        if not _KEY.match(value):
            raise CredentialsProblem(
                f"The {name} holds characters ClearML keys do not have (spaces, quotes?)."
            )
    return access_key, secret_key


def from_fields(access_key: str, secret_key: str, server: str) -> Credentials:
    """The keys and one server address typed by hand."""
    access_key, secret_key = _check_keys(access_key, secret_key)
    api, web, files = derive_servers(server)
    return Credentials(api, web, files, access_key, secret_key)


def parse_pasted(text: str, server: str = "") -> Credentials:
    """What the web UI's "Copy to clipboard" gives (`api { … }`), a bare `credentials { … }`,
    or `access_key` / `secret_key` lines; `server` stands in for addresses it does not name.
    Raises CredentialsProblem in words."""
    if len(text) > MAX_PASTE:
        raise CredentialsProblem("That is far longer than a credentials block.")
    if re.search(r"^\s*include\b|\$\{", text, re.MULTILINE):
        raise CredentialsProblem("Paste the block as the web UI gives it (no include, no ${…}).")
    try:
        from pyhocon import ConfigFactory, ConfigTree
        from pyparsing import ParseBaseException

        tree = ConfigFactory.parse_string(text)
    except (ParseBaseException, Exception) as exc:  # pyhocon raises several kinds
        log.debug("pasted credentials do not parse: %s", type(exc).__name__)
        raise CredentialsProblem(
            "This does not read as the block the web UI gives: paste it whole, from “api {” "
            "to the last “}”, or type the keys below."
        ) from None
    api = tree.get("api", None) if isinstance(tree, ConfigTree) else None
    section = api if isinstance(api, ConfigTree) else tree
    creds = section.get("credentials", None) if isinstance(section, ConfigTree) else None
    keys = creds if isinstance(creds, ConfigTree) else section

    def text_of(tree: object, key: str) -> str:
        value = tree.get(key, "") if isinstance(tree, ConfigTree) else ""
        return value.strip() if isinstance(value, str) else ""

    access_key, secret_key = _check_keys(text_of(keys, "access_key"), text_of(keys, "secret_key"))
    api_server = text_of(section, "api_server") or text_of(section, "host")
    web_server = text_of(section, "web_server")
    files_server = text_of(section, "files_server")
    given = api_server or web_server or server
    if not given:
        raise CredentialsProblem("The block names no server: enter its address below.")
    api_d, web_d, files_d = derive_servers(api_server if api_server else given)
    if web_server and not api_server:
        api_d, web_d, files_d = derive_servers(web_server)
    return Credentials(
        _clean_url(api_server, "API") if api_server else api_d,
        _clean_url(web_server, "web") if web_server else web_d,
        _clean_url(files_server, "files") if files_server else files_d,
        access_key,
        secret_key,
    )


# --- clearml.conf ---------------------------------------------------------------------------------


def api_section(creds: Credentials) -> str:
    """The `api` section as `clearml-init` writes it."""
    return (
        "api {\n"
        "    # Notice: 'host' is the api server (default port 8008), not the web server.\n"
        f"    api_server: {creds.api_server}\n"
        f"    web_server: {creds.web_server}\n"
        f"    files_server: {creds.files_server}\n"
        f"    # Credentials are generated using the webapp, {creds.web_server}/settings\n"
        "    # Override with os environment: CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY\n"
        f'    credentials {{"access_key": "{creds.access_key}", '
        f'"secret_key": "{creds.secret_key}"}}\n'
        "}\n"
    )


def sdk_defaults() -> str:
    """The installed ClearML SDK's default `sdk` section, which `clearml-init` appends after
    `sdk `; "" without the SDK (the SDK uses those defaults anyway)."""
    try:
        spec = importlib.util.find_spec("clearml")
    except (ImportError, ValueError):
        return ""
    for folder in (spec.submodule_search_locations or []) if spec else []:
        default = Path(folder) / "config" / "default" / "sdk.conf"
        try:
            return "sdk " + default.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return ""


def _replace_once(text: str, old: str, new: str) -> str | None:
    if not old or text.count(old) != 1:
        return None
    return text.replace(old, new)


def updated_text(old_text: str, old: ServerConfig | None, creds: Credentials, when: str) -> str:
    """clearml.conf with `creds` in it: replaced where the old values stand once each, else an
    `api` section appended that overrides the earlier ones."""
    if not old_text.strip():
        return "# ClearML SDK configuration file\n" + api_section(creds) + sdk_defaults()
    if old is not None and old.access_key and old.secret_key:
        text: str | None = old_text
        for before, after in (
            (old.secret_key, creds.secret_key),
            (old.access_key, creds.access_key),
        ):
            text = _replace_once(text, before, after) if text is not None else None
        if text is not None and old.api_server == creds.api_server:
            return text
        if text is not None and old.api_server != creds.api_server:
            for before, after in (
                (old.api_server, creds.api_server),
                (old.web_server, creds.web_server),
                (old.files_server, creds.files_server),
            ):
                if text is not None and before != after:
                    text = _replace_once(text, before, after)
            if text is not None:
                return text
    return (
        old_text.rstrip("\n")
        + f"\n\n# Keys entered in ClearML Session Tray on {when}; they override those above.\n"
        + api_section(creds)
    )


def write_config(path: Path, old: ServerConfig | None, creds: Credentials) -> Path | None:
    """Write `creds` into `path` (created if missing); the backup's path, if there was a file."""
    try:
        from tray_app.core.server.config import read_config_text

        old_text = read_config_text(path)
    except FileNotFoundError:
        old_text = ""
    backup = backup_file(path) if old_text else None
    text = updated_text(old_text, old, creds, datetime.now().strftime("%Y-%m-%d %H:%M"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text, mode=0o600)
    return backup


# --- the flow -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Saved:
    path: Path
    backup: Path | None
    user: str


class CredentialsFlow:
    """Check keys against their server, then write them where the configuration lives."""

    def __init__(
        self,
        *,
        target: Callable[[], Path],
        current: Callable[[], ServerConfig | None],
        login: Callable[[Credentials], Awaitable[str]],
        reload: Callable[[], Awaitable[None]],
    ) -> None:
        self._target = target  # the clearml.conf to write
        self._current = current  # what the tray uses now (whose keys are replaced)
        self._login = login  # logs in with the keys: the user's name, or ClearMLError
        self._reload = reload  # the server source reads the file again

    async def submit(self, creds: Credentials) -> Saved:
        """Raises CredentialsProblem (in words) when the server refuses them or cannot be
        reached; nothing is written then."""
        try:
            user = await self._login(creds)
        except ClearMLAuthError:
            raise CredentialsProblem(
                f"{creds.api_server} refused these keys: check that both were copied whole "
                "(a new pair can be made in the web UI)."
            ) from None
        except ClearMLError as exc:
            raise CredentialsProblem(f"The keys were not checked: {exc}") from None
        path = self._target()
        try:
            backup = await asyncio.to_thread(write_config, path, self._current(), creds)
        except OSError as exc:
            raise CredentialsProblem(
                f"{path} could not be written ({exc.strerror or 'refused'}); nothing changed."
            ) from None
        log.info("ClearML keys for %s written to %s (backup %s)", creds.api_server, path, backup)
        await self._reload()
        return Saved(path, backup, user)


async def login_with(creds: Credentials) -> str:
    """Log in with `creds` (one attempt and one retry): the user's name as the server says."""
    from tray_app.core.server.api import ClearMLClient

    config = ServerConfig(
        creds.api_server, creds.web_server, creds.files_server, creds.access_key, creds.secret_key
    )
    async with ClearMLClient(config, max_retries=1, timeout=10.0) as client:
        info = await client.login()
    return info.user_name
