"""Presets: named sets of `clearml-session` (0.17) arguments, and the argv they "prepare".

`build_argv` is pure: it never touches the disk, the keyring or a shell. It emits exactly the
flags and value syntax of the real CLI's argparse (`clearml_session/__main__.py: setup_parser`):
`--flag true|false` for its `nargs='?'` booleans, bare `--verbose` for its `store_true` ones,
repeated values after `--packages` / `--session-tags` (`nargs='*'`), and `--flag=value` when a
value starts with `-` (otherwise argparse would take the value for an option).

The CLI 0.17 has no idle-timeout option (the remote script only has a "todo: auto spin down"), so
presets have none either; the app's own idle policy (settings.IdlePolicy) covers it.

Workspace presets: `<folder>/.vscode/clearml.json`, plain JSON (no comments)::

    {"presets": [{"name": "gpu", "queue": "gpu-queue", "docker_image": "nvidia/cuda:12.4",
                  "packages": ["torch"], "requirements_file": "requirements.txt"}]}

Each preset uses the same keys as an exported preset (`preset_to_dict`); only `name` and `queue`
are required. Relative `requirements_file`, `init_script` and `upload_files` paths are resolved
against the workspace folder.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import shlex
import stat
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from tray_app.core.atomic import read_at_most
from tray_app.core.settings.errors import PresetError, PresetFormatError, PresetInvalid
from tray_app.core.untrusted import display_text, valid_host, valid_ssh_user

PRESETS_FILE_VERSION = 1
MAX_PRESETS_CHARS = 4 * 1024 * 1024  # a presets file is kilobytes; bigger ones are refused
WORKSPACE_PRESETS_PATH = Path(".vscode") / "clearml.json"
MASK = "***"


class PasswordPolicy(StrEnum):
    RANDOM = "random"  # a new random password per session (`--randomize`)
    FIXED = "fixed"  # a password kept in the keyring; the preset only names the keyring entry


@dataclass(slots=True)
class Preset:
    name: str
    queue: str = ""
    docker_image: str = ""
    docker_args: str = ""
    packages: list[str] = field(default_factory=list)
    requirements_file: str = ""
    init_script: str = ""
    user_folder: str = ""
    project: str = ""
    session_name: str = ""
    tags: list[str] = field(default_factory=list)
    public_ip: bool | None = None
    remote_ssh_port: int | None = None
    jupyter_lab: bool | None = None
    vscode_server: bool | None = None
    vscode_version: str = ""
    vscode_extensions: list[str] = field(default_factory=list)
    username: str = ""
    password_policy: PasswordPolicy = PasswordPolicy.RANDOM
    # Keyring entry name of the fixed password ("" = secrets.preset_password_key(name)).
    password_ref: str = ""
    keepalive: bool | None = None
    store_workspace: str = ""
    continue_session: str = ""
    # The registry's answer to "Restore workspace from session id=… [Y]/n? ", which the CLI asks
    # with store_workspace set and no continue_session (not an argv option).
    restore_workspace: bool = True
    # The CLI deletes the user's older stopped sessions unless told not to.
    disable_session_cleanup: bool = True
    verbose: bool = False
    git_credentials: bool | None = None
    upload_files: str = ""
    base_task_id: str = ""
    force_dropbear: bool | None = None
    disable_fingerprint_check: bool = False
    extra_args: list[str] = field(default_factory=list)
    # Keys written by a newer version of the app; kept so that saving never loses them.
    unknown_fields: dict[str, Any] = field(default_factory=dict)

    def password_keyring_key(self) -> str:
        if self.password_ref:
            return self.password_ref
        from tray_app.core.settings.secrets import preset_password_key

        return preset_password_key(self.name)


# Every option of clearml-session 0.17's parser (checked against the real parser in the tests).
KNOWN_FLAGS: frozenset[str] = frozenset(
    {
        "--version", "--attach", "--shutdown", "-S", "--shell", "--debugging-session", "--queue",
        "--router-enabled", "--docker", "--docker-args", "--public-ip", "--remote-ssh-port",
        "--vscode-server", "--vscode-version", "--vscode-extensions", "--jupyter-lab",
        "--upload-files", "--continue-session", "--store-workspace", "--git-credentials",
        "--user-folder", "--packages", "--requirements", "--init-script", "--config-file",
        "--remote-gateway", "--base-task-id", "--project", "--session-name", "--session-tags",
        "--disable-session-cleanup", "--keepalive", "--queue-excluded-tag", "--queue-include-tag",
        "--skip-docker-network", "--password", "--randomize", "--username", "--force-dropbear",
        "--disable-store-defaults", "--disable-fingerprint-check", "--verbose", "--yes", "-y",
        "-h", "--help",
    }
)  # fmt: skip

# Flags the tray owns: a preset passing them would break how the app drives the CLI
# (`--yes` attaches to the newest running session instead of creating one, etc.).
RESERVED_FLAGS: frozenset[str] = frozenset(
    {
        "--yes", "-y", "--attach", "--shutdown", "-S", "--shell", "--config-file", "--password",
        "--randomize", "--version", "-h", "--help",
    }
)  # fmt: skip

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHITESPACE = re.compile(r"\s")
_STR_FIELDS = (
    "name", "queue", "docker_image", "docker_args", "requirements_file", "init_script",
    "user_folder", "project", "session_name", "vscode_version", "username", "password_ref",
    "store_workspace", "continue_session", "upload_files", "base_task_id",
)  # fmt: skip
_LIST_FIELDS = ("packages", "tags", "vscode_extensions", "extra_args")
_OPT_BOOL_FIELDS = (
    "public_ip", "jupyter_lab", "vscode_server", "keepalive", "git_credentials", "force_dropbear",
)  # fmt: skip
_BOOL_FIELDS = (
    "disable_session_cleanup", "verbose", "disable_fingerprint_check", "restore_workspace",
)  # fmt: skip


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def validate_preset(preset: Preset, *, check_files: bool = True) -> list[str]:
    """Reasons why `preset` cannot be run (empty list = valid). `check_files` stats local files."""
    reasons: list[str] = []
    if not preset.name.strip():
        reasons.append("the name is empty")
    elif preset.name != preset.name.strip():
        reasons.append("the name starts or ends with spaces")
    elif len(preset.name) > 100:
        reasons.append("the name is longer than 100 characters")
    if not preset.queue.strip():
        reasons.append("no queue is set (clearml-session would ask for one interactively)")
    for name in _STR_FIELDS:
        if _CONTROL.search(getattr(preset, name)):
            reasons.append(f"{name} contains a line break or control character")
    for name in _LIST_FIELDS:
        for item in getattr(preset, name):
            if _CONTROL.search(item):
                reasons.append(f"{name} entry {item!r} contains a line break or control character")
    for name, label in (("packages", "package"), ("tags", "tag")):
        for item in getattr(preset, name):
            if not item.strip():
                reasons.append(f"an empty {label} in {name}")
            elif item.startswith("-"):
                reasons.append(
                    f"{label} {item!r} starts with '-' (clearml-session would read it as an option)"
                )
    for ext in preset.vscode_extensions:
        if not ext.strip() or "," in ext or _WHITESPACE.search(ext):
            reasons.append(
                f"VS Code extension {ext!r} must be one non-empty id without commas or spaces"
            )
    reasons.extend(_ssh_value_problems(preset))
    for name, label in (
        ("username", "username"),
        ("vscode_version", "VS Code version"),
        ("continue_session", "continue-session id"),
        ("base_task_id", "base task id"),
        ("queue", "queue"),
    ):
        value: str = getattr(preset, name)
        if value and value.startswith("-"):
            reasons.append(f"the {label} {value!r} starts with '-'")
        if name != "queue" and _WHITESPACE.search(value):
            reasons.append(f"the {label} {value!r} contains spaces")
    if preset.remote_ssh_port is not None and not 1 <= preset.remote_ssh_port <= 65535:
        reasons.append(f"remote SSH port {preset.remote_ssh_port} is not in 1..65535")
    if preset.continue_session and not preset.store_workspace:
        reasons.append("continue session needs a store-workspace folder to restore")
    for name, label in (("requirements_file", "requirements file"), ("init_script", "init script")):
        # argparse's FileType reads "-" as stdin, which the tray keeps for the prompts.
        if getattr(preset, name).startswith("-"):
            reasons.append(f"the {label} path starts with '-' (write ./{getattr(preset, name)})")
    if check_files:
        for name, label in (
            ("requirements_file", "requirements file"),
            ("init_script", "init script"),
        ):
            path = getattr(preset, name)
            # clearml-session opens these while parsing its arguments: a missing one is fatal.
            if path and not Path(path).expanduser().is_file():
                reasons.append(f"the {label} {path!r} does not exist")
        if preset.upload_files and not Path(preset.upload_files).expanduser().exists():
            reasons.append(f"the upload path {preset.upload_files!r} does not exist")
    reasons.extend(_extra_args_problems(preset.extra_args))
    reasons.extend(_repeated_field_problems(preset))
    return reasons


def _flag_values(args: list[str], flag: str) -> list[str]:
    """The values given to `flag` in `args` (`--flag value` and `--flag=value`)."""
    found: list[str] = []
    for index, arg in enumerate(args):
        name, sep, inline = arg.partition("=")
        if name == flag:
            found.append(inline if sep else (args[index + 1] if index + 1 < len(args) else ""))
    return found


def _ssh_value_problems(preset: Preset) -> list[str]:
    """Values that end up in an ssh command line or in `~/.ssh/config` (the session's user,
    the gateway's host): a quote, a space or a `$` there would break them, or worse."""
    reasons: list[str] = []
    users = ([preset.username] if preset.username else []) + _flag_values(
        preset.extra_args, "--username"
    )
    for user in users:
        if not valid_ssh_user(user):
            reasons.append(
                f"the user name {user!r} may hold only letters, digits, '.', '_' and '-' (ssh "
                "and its config file would take anything else as more than a name)"
            )
    for host in _flag_values(preset.extra_args, "--remote-gateway"):
        if not valid_host(host):
            reasons.append(
                f"the remote gateway {host!r} is not a host name or an IP address (no spaces, "
                "quotes or user names)"
            )
    return reasons


# Options a field of the preset already sets: a second one in the extra arguments would win
# silently over the field the user sees (argparse keeps the last).
FIELD_FLAGS: dict[str, tuple[str, str]] = {
    "--queue": ("queue", "Queue"),
    "--docker": ("docker_image", "Docker image"),
}


def _repeated_field_problems(preset: Preset) -> list[str]:
    reasons: list[str] = []
    for arg in preset.extra_args:
        if not arg.startswith("--"):
            continue
        flag = _flag_name(arg)
        field_label = FIELD_FLAGS.get(flag)
        if field_label is None:
            continue
        name, label = field_label
        if flag == "--queue" or getattr(preset, name):
            reasons.append(f"extra argument {flag} repeats the {label} field: set it there only")
    return reasons


def _extra_args_problems(extra_args: list[str]) -> list[str]:
    reasons: list[str] = []
    if extra_args and not extra_args[0].startswith("-"):
        reasons.append(f"extra arguments must start with an option, not {extra_args[0]!r}")
    for arg in extra_args:
        if not arg.startswith("-") or arg == "-" or _is_negative_number(arg):
            continue
        flag = _flag_name(arg)
        if flag in RESERVED_FLAGS:
            reasons.append(f"extra argument {flag} is managed by the app and not allowed")
        elif flag not in KNOWN_FLAGS:
            reasons.append(f"extra argument {flag} is not a clearml-session 0.17 option")
    return reasons


def _is_negative_number(arg: str) -> bool:
    return re.fullmatch(r"-\d+(\.\d+)?", arg) is not None


def _value(flag: str, value: str) -> list[str]:
    # argparse treats a separate "-x..." token as an option; the joined form is unambiguous.
    if value.startswith("-"):
        return [f"{flag}={value}"]
    return [flag, value]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def state_file_text(password: str) -> str:
    """The CLI's state file (`--config-file`) holding a fixed session password.

    clearml-session takes `password` from its state file when `--password` is not given, and
    keeps it while `randomize` is false (`get_user_inputs`, `load_state` in its __main__.py).
    """
    return json.dumps({"password": password, "randomize": False})


def build_argv(
    preset: Preset,
    *,
    executable: str = "clearml-session",
    config_file: str | None = None,
    password: str | None = None,
) -> list[str]:
    """The argv that starts a new session from `preset` (no `--yes`: the registry answers prompts).

    `config_file` is the per-child state file (`--config-file`); `password` is the fixed password
    read from the keyring by the caller (required iff the policy is FIXED). It never goes into
    argv, which any local user can read in /proc/<pid>/cmdline: the caller writes it into the
    state file (`state_file_text`), where the CLI takes it as "the previous password".
    Raises PresetInvalid when the preset has problems (files are not checked: this is pure).
    """
    reasons = validate_preset(preset, check_files=False)
    if preset.password_policy is PasswordPolicy.FIXED and not password:
        reasons.append("the password policy is 'fixed' but no password was given")
    if preset.password_policy is PasswordPolicy.RANDOM and password:
        reasons.append("a password was given but the password policy is 'random'")
    if reasons:
        raise PresetInvalid(preset.name, reasons)

    argv = [executable]
    if config_file:
        argv += _value("--config-file", config_file)
    argv += _value("--queue", preset.queue)
    if preset.docker_image:
        argv += _value("--docker", preset.docker_image)
    if preset.docker_args:
        argv += _value("--docker-args", preset.docker_args)
    if preset.packages:
        argv += ["--packages", *preset.packages]
    if preset.requirements_file:
        argv += _value("--requirements", preset.requirements_file)
    if preset.init_script:
        argv += _value("--init-script", preset.init_script)
    if preset.user_folder:
        argv += _value("--user-folder", preset.user_folder)
    if preset.project:
        argv += _value("--project", preset.project)
    # The task is named after the preset unless the preset names it: the menu, the notices and
    # the web UI then all call it the same (the CLI's default is "Interactive Session"). The
    # server refuses task names under 3 characters: such a preset keeps the CLI's default.
    name = preset.session_name or (preset.name if len(preset.name.strip()) >= 3 else "")
    if name:
        argv += _value("--session-name", name)
    if preset.tags:
        argv += ["--session-tags", *preset.tags]
    if preset.public_ip is not None:
        argv += ["--public-ip", _bool(preset.public_ip)]
    if preset.remote_ssh_port is not None:
        argv += ["--remote-ssh-port", str(preset.remote_ssh_port)]
    if preset.jupyter_lab is not None:
        argv += ["--jupyter-lab", _bool(preset.jupyter_lab)]
    if preset.vscode_server is not None:
        argv += ["--vscode-server", _bool(preset.vscode_server)]
    if preset.vscode_version:
        argv += _value("--vscode-version", preset.vscode_version)
    if preset.vscode_extensions:
        argv += _value("--vscode-extensions", ",".join(preset.vscode_extensions))
    if preset.username:
        argv += _value("--username", preset.username)
    if preset.password_policy is PasswordPolicy.FIXED:
        pass  # in the state file; without --randomize the CLI keeps it
    else:
        # `--randomize` takes optional values (nargs='*'): an option must follow it, which the
        # always-present `--disable-session-cleanup` below guarantees.
        argv += ["--randomize"]
    argv += ["--disable-session-cleanup", _bool(preset.disable_session_cleanup)]
    if preset.keepalive is not None:
        argv += ["--keepalive", _bool(preset.keepalive)]
    if preset.store_workspace:
        argv += _value("--store-workspace", preset.store_workspace)
    if preset.continue_session:
        argv += _value("--continue-session", preset.continue_session)
    if preset.git_credentials is not None:
        argv += ["--git-credentials", _bool(preset.git_credentials)]
    if preset.upload_files:
        argv += _value("--upload-files", preset.upload_files)
    if preset.base_task_id:
        argv += _value("--base-task-id", preset.base_task_id)
    if preset.force_dropbear is not None:
        argv += ["--force-dropbear", _bool(preset.force_dropbear)]
    if preset.disable_fingerprint_check:
        argv += ["--disable-fingerprint-check"]
    if preset.verbose:
        argv += ["--verbose"]
    argv += preset.extra_args
    return argv


def build_attach_argv(
    task_id: str, *, executable: str = "clearml-session", config_file: str | None = None
) -> list[str]:
    """The argv that attaches to the running session `task_id` (`--attach <id> --yes`).

    With an explicit id, `--yes` only skips the confirmation prompts; it cannot pick another
    session. Raises PresetError for an empty or option-like id.
    """
    if not task_id or task_id.startswith("-") or _WHITESPACE.search(task_id):
        raise PresetError(f"{task_id!r} is not a session id")
    argv = [executable]
    if config_file:
        argv += _value("--config-file", config_file)
    return [*argv, "--attach", task_id, "--yes"]


def mask_argv(argv: list[str]) -> list[str]:
    """`argv` with the value of `--password` replaced by `***` (for logs and the dialog)."""
    masked: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            masked.append(MASK)
            hide_next = False
        elif arg == "--password":
            masked.append(arg)
            hide_next = True
        elif arg.startswith("--password="):
            masked.append(f"--password={MASK}")
        else:
            masked.append(arg)
    return masked


def display_command(argv: list[str]) -> str:
    """The masked command line as the user would type it in a POSIX shell."""
    return shlex.join(mask_argv(argv))


# --- dict / JSON --------------------------------------------------------------------------------

_FIELD_NAMES = tuple(f.name for f in fields(Preset) if f.name != "unknown_fields")


def preset_to_dict(preset: Preset) -> dict[str, Any]:
    """JSON-ready dict with every field (unknown keys from newer versions included)."""
    data: dict[str, Any] = dict(preset.unknown_fields)
    for name in _FIELD_NAMES:
        value = getattr(preset, name)
        if isinstance(value, PasswordPolicy):
            value = value.value
        elif isinstance(value, list):
            value = list(value)
        data[name] = value
    return data


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def preset_from_dict(data: object, *, strict: bool = True, where: str = "") -> Preset:
    """Build a Preset from parsed JSON. `strict` rejects unknown keys (else keeps them).

    Raises PresetFormatError naming `where` (file / position), the preset and the field.
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise PresetFormatError(f"{prefix}a preset must be a JSON object, got {_type_name(data)}")
    raw_name = data.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise PresetFormatError(f"{prefix}a preset has no 'name' (a non-empty string is required)")
    # Names and values come from a file someone else may have written: shown bounded and clean.
    label = f"{prefix}preset '{display_text(raw_name, 60)}'"

    def bad(field_name: str, expected: str) -> PresetFormatError:
        got = data[field_name]
        return PresetFormatError(
            f"{label}: field '{display_text(field_name, 60)}' must be {expected}, got "
            f"{_type_name(got)} {display_text(_short_repr(got), 80)}"
        )

    values: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in data.items():
        if key in _STR_FIELDS:
            if not isinstance(value, str):
                raise bad(key, "a string")
        elif key in _LIST_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad(key, "a list of strings")
            value = list(value)
        elif key in _OPT_BOOL_FIELDS:
            if value is not None and not isinstance(value, bool):
                raise bad(key, "true, false or null")
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise bad(key, "true or false")
        elif key == "remote_ssh_port":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise bad(key, "a whole number or null")
        elif key == "password_policy":
            try:
                value = PasswordPolicy(value)
            except ValueError:
                allowed = ", ".join(repr(p.value) for p in PasswordPolicy)
                raise bad(key, f"one of {allowed}") from None
        elif key == "password":
            raise PresetFormatError(
                f'{label}: presets never hold passwords; use "password_policy": "fixed" and '
                "set the password in the app (it is kept in the system keyring)"
            )
        else:
            if strict:
                raise PresetFormatError(f"{label}: unknown field '{display_text(key, 60)}'")
            unknown[key] = value
            continue
        values[key] = value
    return Preset(**values, unknown_fields=unknown)


def presets_to_json(presets: list[Preset]) -> str:
    """Export document: {"version": 1, "presets": [...]} (no secrets in it, ever)."""
    document = {
        "version": PRESETS_FILE_VERSION,
        "presets": [preset_to_dict(p) for p in presets],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# Reasons a preset is incomplete rather than unsafe: fine in a file, asked for at launch.
_INCOMPLETE = ("no queue is set", "continue session needs")


def import_problems(preset: Preset) -> list[str]:
    """What makes a preset from a file unacceptable: `validate_preset` without the local file
    checks and without what is merely incomplete (an empty queue is chosen at launch)."""
    return [p for p in validate_preset(preset, check_files=False) if not p.startswith(_INCOMPLETE)]


def _short_repr(value: object) -> str:
    try:
        return reprlib.repr(value)
    except RecursionError:
        return "…"


def presets_from_json(
    text: str, *, source: str = "presets JSON", strict: bool = True, validate: bool = True
) -> list[Preset]:
    """Parse an exported (or workspace) presets document; also accepts a bare list of presets.

    Raises PresetFormatError with the source, line/column for JSON syntax errors, and the preset
    and field for content errors; duplicate names are an error too. With `validate` (the
    default) every preset must also pass `validate_preset` (local files are not checked): an
    imported preset gets no less scrutiny than one made in the dialog.
    """
    if len(text) > MAX_PRESETS_CHARS:
        raise PresetFormatError(
            f"{source}: larger than {MAX_PRESETS_CHARS // (1024 * 1024)} MB; not a presets file?"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetFormatError(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise PresetFormatError(f"{source}: the JSON is nested too deeply") from None
    if isinstance(document, dict):
        if "presets" not in document:
            raise PresetFormatError(f'{source}: the top-level object has no "presets" list')
        items = document["presets"]
        if not isinstance(items, list):
            raise PresetFormatError(f'{source}: "presets" must be a list, got {_type_name(items)}')
    elif isinstance(document, list):
        items = document
    else:
        raise PresetFormatError(
            f'{source}: expected an object with a "presets" list, got {_type_name(document)}'
        )
    presets: list[Preset] = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        where = f"{source}, preset #{index}"
        try:
            preset = preset_from_dict(item, strict=strict, where=where)
        except RecursionError:
            raise PresetFormatError(f"{where}: nested too deeply") from None
        if validate:
            problems = import_problems(preset)
            if problems:
                shown = "; ".join(display_text(p, 200) for p in problems[:5])
                raise PresetFormatError(
                    f"{where} ('{display_text(preset.name, 60)}') is not valid: {shown}"
                )
        if preset.name in seen:
            raise PresetFormatError(
                f"{source}: two presets are named '{display_text(preset.name, 60)}'"
            )
        seen.add(preset.name)
        presets.append(preset)
    return presets


# Local files and folders that hold credentials: a preset uploading them (or anything that
# contains them) sends them to the remote machine and, through the task, to the server.
_SENSITIVE_HOME_PATHS = (
    ".ssh", ".aws", ".gnupg", ".kube", ".docker", ".netrc", ".git-credentials", ".clearml.conf",
    "clearml.conf", "trains.conf", ".config", ".azure", ".local/share/keyrings",
)  # fmt: skip


def _sensitive_upload(path: str, home: Path) -> str | None:
    """The credential location `path` is or contains (None when it is neither)."""
    target = Path(os.path.normpath(Path(path).expanduser()))
    if not target.is_absolute():
        return None
    for name in _SENSITIVE_HOME_PATHS:
        secret = home / name
        if target == secret or secret.is_relative_to(target) or target.is_relative_to(secret):
            return f"~/{name}"
    return None


def preset_disclosures(preset: Preset, home: Path | None = None) -> list[str]:
    """What launching `preset` sends or trusts that a user must see before a first launch of a
    preset they did not write (a repository's workspace presets): empty when nothing.

    Every upload (the field and `--upload-files` in the extra arguments; the requirements file
    and the init script when they hold credentials), each credential location named; git
    credentials; every endpoint that is not the default (a remote gateway, the router, a public
    IP, another SSH port); and any extra arguments, word for word. One sentence each.
    """
    home = home or Path.home()
    args = preset.extra_args
    notes: list[str] = []
    uploads = ([preset.upload_files] if preset.upload_files else []) + _flag_values(
        args, "--upload-files"
    )
    for value in uploads:
        secret = _sensitive_upload(value, home) if value else None
        held = f", which holds {secret} (credentials)" if secret else ""
        notes.append(f"uploads {display_text(value, 200) or '(nothing named)'}{held}")
    for name, label in (
        ("requirements_file", "sends the requirements file"),
        ("init_script", "sends the init script"),
    ):
        path: str = getattr(preset, name)
        if path and (secret := _sensitive_upload(path, home)):
            notes.append(f"{label} {display_text(path, 200)}, which holds {secret} (credentials)")
    if preset.git_credentials or _truthy(_flag_values(args, "--git-credentials")):
        notes.append("sends your git credentials (~/.git-credentials and ~/.gitconfig)")
    for host in _flag_values(args, "--remote-gateway"):
        notes.append(f"connects through the gateway {display_text(host, 200) or '(none given)'}")
    if _truthy(_flag_values(args, "--router-enabled")):
        notes.append("routes the session's ports through the server's router")
    if preset.public_ip or _truthy(_flag_values(args, "--public-ip")):
        notes.append("publishes the session on the machine's public IP address")
    ports = ([str(preset.remote_ssh_port)] if preset.remote_ssh_port else []) + _flag_values(
        args, "--remote-ssh-port"
    )
    for port in ports:
        notes.append(f"serves SSH on remote port {display_text(port, 20)}")
    if args:
        notes.append(f"passes extra arguments: {display_text(' '.join(args), 300)}")
    return notes


def _truthy(values: list[str]) -> bool:
    """An option given as a flag or with a true value (clearml-session's `true`/`yes`/`1`)."""
    return any(value.strip().lower() in ("", "true", "yes", "1", "on") for value in values)


def read_presets_text(path: Path) -> str:
    """The text of a presets file: a regular file of at most MAX_PRESETS_CHARS bytes, UTF-8.

    Opened non-blocking, so a FIFO in a repository's .vscode/ cannot hang the tray. Raises
    FileNotFoundError when absent and PresetFormatError (naming the file) for anything else.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PresetFormatError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PresetFormatError(f"{path}: cannot be read: not a regular file")
        data = read_at_most(fd, MAX_PRESETS_CHARS + 1)
    except OSError as exc:
        raise PresetFormatError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_PRESETS_CHARS:
        raise PresetFormatError(f"{path}: larger than {MAX_PRESETS_CHARS // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PresetFormatError(f"{path}: cannot be read: not UTF-8 text") from None


def load_workspace_presets(folder: str | os.PathLike[str]) -> list[Preset]:
    """Presets from `<folder>/.vscode/clearml.json`; [] when the file does not exist.

    Relative file paths in the presets are resolved against `folder`.
    Raises PresetFormatError (unreadable file, bad JSON, bad preset) naming the file.
    """
    base = Path(folder).expanduser()
    path = base / WORKSPACE_PRESETS_PATH
    try:
        text = read_presets_text(path)
    except FileNotFoundError:
        return []
    presets = presets_from_json(text, source=str(path), strict=True)
    resolved: list[Preset] = []
    for preset in presets:
        for name in ("requirements_file", "init_script", "upload_files"):
            value: str = getattr(preset, name)
            if value and not Path(value).expanduser().is_absolute():
                setattr(preset, name, str(base / value))
        resolved.append(preset)
    return resolved
