"""Presets: argv per option, the real CLI's parser agrees, JSON import/export, workspace files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tray_app.core.settings.errors import PresetError, PresetFormatError, PresetInvalid
from tray_app.core.settings.presets import (
    KNOWN_FLAGS,
    RESERVED_FLAGS,
    PasswordPolicy,
    Preset,
    build_argv,
    build_attach_argv,
    display_command,
    load_workspace_presets,
    mask_argv,
    preset_from_dict,
    preset_to_dict,
    presets_from_json,
    presets_to_json,
    state_file_text,
    validate_preset,
)
from tray_app.core.settings.secrets import preset_password_key

PARSER_SCRIPT = Path(__file__).parents[2] / "support" / "clearml_session_argparse.py"

# The options build_argv always emits for a minimal preset.
BASE = ["--queue", "q", "--randomize", "--disable-session-cleanup", "true"]


def argv_of(**fields: Any) -> list[str]:
    return build_argv(Preset(name="p", queue="q", **fields))


def tail(**fields: Any) -> list[str]:
    """The argv after the executable and the always-present base options."""
    argv = argv_of(**fields)
    assert argv[0] == "clearml-session"
    rest = argv[1:]
    for token in BASE:
        rest.remove(token)
    return rest


# --- the real parser, in a child process ---------------------------------------------------------


class RealParser:
    def __init__(self, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
        env["HOME"] = str(home)
        self.proc = subprocess.Popen(
            [sys.executable, str(PARSER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=home,
        )
        assert self.proc.stdout is not None
        self.options: set[str] = set(json.loads(self.proc.stdout.readline())["options"])

    def parse(self, argv: list[str]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        assert argv[0] == "clearml-session"
        self.proc.stdin.write(json.dumps(argv[1:]) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        assert "error" not in reply, reply["error"]
        return reply["args"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def real_parser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealParser]:
    parser = RealParser(tmp_path_factory.mktemp("cli-home"))
    yield parser
    parser.close()


# --- argv, one option per test -------------------------------------------------------------------


def test_minimal_preset_argv() -> None:
    assert argv_of() == ["clearml-session", *BASE]


def test_the_session_is_named_after_the_preset_unless_the_preset_names_it() -> None:
    named = build_argv(Preset(name="gpu box", queue="q"))
    assert named[named.index("--session-name") + 1] == "gpu box"
    own = build_argv(Preset(name="gpu box", queue="q", session_name="bert run"))
    assert own.count("--session-name") == 1
    assert own[own.index("--session-name") + 1] == "bert run"
    # The server refuses a task name under 3 characters: the CLI's default then.
    assert "--session-name" not in build_argv(Preset(name="x", queue="q"))


def test_executable_and_config_file() -> None:
    argv = build_argv(
        Preset(name="p", queue="q"), executable="/opt/bin/clearml-session", config_file="/d/s.json"
    )
    assert argv[:3] == ["/opt/bin/clearml-session", "--config-file", "/d/s.json"]


def test_never_passes_yes() -> None:
    assert "--yes" not in argv_of() and "-y" not in argv_of()


def test_docker_image_and_args() -> None:
    assert tail(docker_image="nvidia/cuda:12.4") == ["--docker", "nvidia/cuda:12.4"]
    assert tail(docker_args="--ipc=host -v /a:/b") == ["--docker-args=--ipc=host -v /a:/b"]
    assert tail(docker_args="-e A=1") == ["--docker-args=-e A=1"]
    assert tail(docker_args="--shm-size 8g") == ["--docker-args=--shm-size 8g"]


def test_packages_are_separate_values() -> None:
    assert tail(packages=["torch==2.3", "tqdm"]) == ["--packages", "torch==2.3", "tqdm"]


def test_requirements_and_init_script() -> None:
    assert tail(requirements_file="/w/req.txt") == ["--requirements", "/w/req.txt"]
    assert tail(init_script="/w/init.sh") == ["--init-script", "/w/init.sh"]


def test_folders_project_name() -> None:
    assert tail(user_folder="~/work") == ["--user-folder", "~/work"]
    assert tail(project="DevOps") == ["--project", "DevOps"]
    assert tail(session_name="my session") == ["--session-name", "my session"]


def test_tags_are_separate_values() -> None:
    assert tail(tags=["gpu", "team a"]) == ["--session-tags", "gpu", "team a"]


@pytest.mark.parametrize(
    ("field", "flag"),
    [
        ("public_ip", "--public-ip"),
        ("jupyter_lab", "--jupyter-lab"),
        ("vscode_server", "--vscode-server"),
        ("keepalive", "--keepalive"),
        ("git_credentials", "--git-credentials"),
        ("force_dropbear", "--force-dropbear"),
    ],
)
def test_optional_booleans_are_explicit_true_false_or_absent(field: str, flag: str) -> None:
    assert tail(**{field: True}) == [flag, "true"]
    assert tail(**{field: False}) == [flag, "false"]
    assert tail(**{field: None}) == []


def test_remote_ssh_port() -> None:
    assert tail(remote_ssh_port=10022) == ["--remote-ssh-port", "10022"]


def test_vscode_version_and_extensions_are_comma_joined() -> None:
    assert tail(vscode_version="4.96.2") == ["--vscode-version", "4.96.2"]
    assert tail(vscode_extensions=["ms-python.python", "ms-toolsai.jupyter"]) == [
        "--vscode-extensions",
        "ms-python.python,ms-toolsai.jupyter",
    ]


def test_username() -> None:
    assert tail(username="dev") == ["--username", "dev"]


def test_random_password_policy_uses_randomize() -> None:
    argv = argv_of()
    assert "--randomize" in argv and "--password" not in argv
    # --randomize takes optional values: the next token must be an option.
    assert argv[argv.index("--randomize") + 1].startswith("--")


def test_a_fixed_password_goes_into_the_state_file_never_argv() -> None:
    """/proc/<pid>/cmdline is world-readable; the CLI takes the state file's password."""
    import json

    preset = Preset(name="p", queue="q", password_policy=PasswordPolicy.FIXED)
    argv = build_argv(preset, password="pa ss")
    assert "--password" not in argv and "pa ss" not in " ".join(argv)
    assert "--randomize" not in argv  # with it, the CLI would make a new random password
    assert json.loads(state_file_text("pa ss")) == {"password": "pa ss", "randomize": False}


def test_fixed_password_policy_without_password_is_refused() -> None:
    with pytest.raises(PresetInvalid, match="no password was given"):
        build_argv(Preset(name="p", queue="q", password_policy=PasswordPolicy.FIXED))


def test_password_with_random_policy_is_refused() -> None:
    with pytest.raises(PresetInvalid, match="policy is 'random'"):
        build_argv(Preset(name="p", queue="q"), password="x")


def test_session_cleanup_is_disabled_by_default_and_can_be_enabled() -> None:
    assert argv_of()[-2:] == ["--disable-session-cleanup", "true"]
    argv = argv_of(disable_session_cleanup=False)
    assert argv[argv.index("--disable-session-cleanup") + 1] == "false"


def test_store_workspace_and_continue_session() -> None:
    assert tail(store_workspace="~/workspace") == ["--store-workspace", "~/workspace"]
    assert tail(store_workspace="~/ws", continue_session="abc123") == [
        "--store-workspace",
        "~/ws",
        "--continue-session",
        "abc123",
    ]


def test_restore_workspace_answer_is_not_an_argv_option() -> None:
    assert tail(store_workspace="~/ws", restore_workspace=False) == ["--store-workspace", "~/ws"]


def test_upload_files_and_base_task() -> None:
    assert tail(upload_files="/data") == ["--upload-files", "/data"]
    assert tail(base_task_id="none") == ["--base-task-id", "none"]


def test_store_true_flags() -> None:
    assert tail(verbose=True) == ["--verbose"]
    assert tail(disable_fingerprint_check=True) == ["--disable-fingerprint-check"]
    assert tail(verbose=False, disable_fingerprint_check=False) == []


def test_extra_args_come_last_verbatim() -> None:
    argv = argv_of(verbose=True, extra_args=["--queue-include-tag", "gpu", "--router-enabled"])
    assert argv[-4:] == ["--verbose", "--queue-include-tag", "gpu", "--router-enabled"]


def test_build_argv_refuses_an_invalid_preset() -> None:
    with pytest.raises(PresetInvalid) as info:
        build_argv(Preset(name="p", queue=""))
    assert info.value.name == "p"
    assert any("no queue" in r for r in info.value.reasons)


def test_build_argv_is_pure_and_never_a_shell_string(tmp_path: Path) -> None:
    # Files are not checked (that is validate_preset's job) and nothing is touched.
    folder = tmp_path / "w"
    folder.mkdir()
    preset = Preset(name="p", queue="q; rm -rf ~", requirements_file=str(folder / "missing"))
    argv = build_argv(preset)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert "q; rm -rf ~" in argv
    assert list(folder.iterdir()) == []


def test_attach_argv() -> None:
    assert build_attach_argv("abc123") == ["clearml-session", "--attach", "abc123", "--yes"]
    assert build_attach_argv("abc", executable="/x/cs", config_file="/d/a.json") == [
        "/x/cs", "--config-file", "/d/a.json", "--attach", "abc", "--yes",
    ]  # fmt: skip


@pytest.mark.parametrize("bad", ["", "-S", "a b"])
def test_attach_argv_refuses_bad_ids(bad: str) -> None:
    with pytest.raises(PresetError):
        build_attach_argv(bad)


def test_attach_argv_parses_back(real_parser: RealParser) -> None:
    args = real_parser.parse(build_attach_argv("0123abcd", config_file="/d/a.json"))
    assert (args["attach"], args["yes"], args["config_file"]) == ("0123abcd", True, "/d/a.json")
    assert args["shutdown"] is None and args["command"] is None


# --- masking -------------------------------------------------------------------------------------


def test_mask_argv_hides_the_password_only() -> None:
    argv = ["clearml-session", "--queue", "q", "--password", "s3cr3t", "--username", "u"]
    assert mask_argv(argv) == ["clearml-session", "--queue", "q", "--password", "***",
                               "--username", "u"]  # fmt: skip
    assert mask_argv(["x", "--password=-s3"]) == ["x", "--password=***"]


def test_display_command_is_shell_quoted_and_masked() -> None:
    preset = Preset(name="p", queue="my queue", password_policy=PasswordPolicy.FIXED)
    text = display_command(build_argv(preset, password="it's"))
    assert "it's" not in text
    assert text.startswith("clearml-session --queue 'my queue' ")
    # A --password typed by hand (the CLI's own argv, a user's log) is still masked.
    by_hand = display_command(["clearml-session", "--password", "it's", "--password=x y"])
    assert by_hand == "clearml-session --password '***' '--password=***'"


# --- the real CLI's parser agrees ----------------------------------------------------------------


def test_known_flags_match_the_real_parser(real_parser: RealParser) -> None:
    assert real_parser.options == set(KNOWN_FLAGS)
    assert set(RESERVED_FLAGS) <= real_parser.options


def test_full_preset_parses_back_with_the_real_cli(real_parser: RealParser, tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("numpy\n")
    init = tmp_path / "init.sh"
    init.write_text("echo hi\n")
    preset = Preset(
        name="full",
        queue="gpu-queue",
        docker_image="nvidia/cuda:12.4.1-runtime-ubuntu22.04",
        docker_args="-v /data:/data --ipc=host",
        packages=["torch==2.3", "tqdm"],
        requirements_file=str(req),
        init_script=str(init),
        user_folder="~/work",
        project="DevOps",
        session_name="my session",
        tags=["gpu", "team a"],
        public_ip=False,
        remote_ssh_port=10023,
        jupyter_lab=False,
        vscode_server=True,
        vscode_version="4.96.2",
        vscode_extensions=["ms-python.python", "ms-toolsai.jupyter"],
        username="dev",
        password_policy=PasswordPolicy.FIXED,
        keepalive=True,
        store_workspace="~/workspace",
        continue_session="0123abcd",
        disable_session_cleanup=True,
        verbose=True,
        git_credentials=False,
        upload_files=str(tmp_path),
        base_task_id="none",
        force_dropbear=True,
        disable_fingerprint_check=True,
        extra_args=["--queue-include-tag", "gpu", "--skip-docker-network"],
    )
    args = real_parser.parse(build_argv(preset, config_file="/tmp/s.json", password="-p w]"))
    assert args["queue"] == "gpu-queue"
    assert args["config_file"] == "/tmp/s.json"
    assert args["docker"] == "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert args["docker_args"] == "-v /data:/data --ipc=host"
    assert args["packages"] == ["torch==2.3", "tqdm"]
    assert args["requirements"] == {"file": str(req)}
    assert args["init_script"] == {"file": str(init)}
    assert args["user_folder"] == "~/work"
    assert args["project"] == "DevOps"
    assert args["session_name"] == "my session"
    assert args["session_tags"] == ["gpu", "team a"]
    assert args["public_ip"] is False
    assert args["remote_ssh_port"] == "10023"
    assert args["jupyter_lab"] is False
    assert args["vscode_server"] is True
    assert args["vscode_version"] == "4.96.2"
    assert args["vscode_extensions"] == "ms-python.python,ms-toolsai.jupyter"
    assert args["username"] == "dev"
    assert args["password"] is None  # in the state file, never argv (state_file_text)
    assert args["randomize"] is False
    assert args["keepalive"] is True
    assert args["store_workspace"] == "~/workspace"
    assert args["continue_session"] == "0123abcd"
    assert args["disable_session_cleanup"] is True
    assert args["verbose"] is True
    assert args["git_credentials"] is False
    assert args["upload_files"] == str(tmp_path)
    assert args["base_task_id"] == "none"
    assert args["force_dropbear"] is True
    assert args["disable_fingerprint_check"] is True
    assert args["queue_include_tag"] == ["gpu"]
    assert args["skip_docker_network"] is True
    assert args["yes"] is False
    assert args["attach"] is False
    assert args["command"] is None


def test_minimal_preset_parses_with_cli_defaults(real_parser: RealParser) -> None:
    args = real_parser.parse(argv_of())
    assert args["queue"] == "q"
    assert args["randomize"] == []  # a new random password
    assert args["disable_session_cleanup"] is True
    assert args["jupyter_lab"] is True and args["vscode_server"] is True  # CLI defaults
    assert args["packages"] is None and args["init_script"] is False


@pytest.mark.parametrize("enabled", [True, False])
def test_booleans_parse_back(real_parser: RealParser, enabled: bool) -> None:
    args = real_parser.parse(
        argv_of(
            public_ip=enabled,
            jupyter_lab=enabled,
            vscode_server=enabled,
            keepalive=enabled,
            disable_session_cleanup=enabled,
        )
    )
    for key in (
        "public_ip",
        "jupyter_lab",
        "vscode_server",
        "keepalive",
        "disable_session_cleanup",
    ):
        assert args[key] is enabled


_safe_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=15
)
_item = _safe_text.filter(lambda s: not s.startswith("-") and s.strip() != "")
_token = st.text(
    st.characters(codec="ascii", exclude_categories=["Cc"], exclude_characters=" ,"),
    min_size=1,
    max_size=12,
).filter(lambda s: not s.startswith("-"))
# A login name ssh takes literally (the validator refuses quotes, spaces, `$`…).
_user = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,11}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    queue=_item.filter(lambda s: not s.startswith("-")),
    docker=_safe_text,
    docker_args=_safe_text,
    packages=st.lists(_item, max_size=3),
    tags=st.lists(_item, max_size=3),
    username=_user,
    password=_safe_text,
    extensions=st.lists(_token, max_size=3),
)
def test_generated_values_survive_the_real_parser(
    real_parser: RealParser,
    queue: str,
    docker: str,
    docker_args: str,
    packages: list[str],
    tags: list[str],
    username: str,
    password: str,
    extensions: list[str],
) -> None:
    preset = Preset(
        name="gen",
        queue=queue,
        docker_image=docker,
        docker_args=docker_args,
        packages=packages,
        tags=tags,
        username=username,
        vscode_extensions=extensions,
        password_policy=PasswordPolicy.FIXED,
    )
    assert validate_preset(preset, check_files=False) == []
    args = real_parser.parse(build_argv(preset, password=password))
    assert args["queue"] == queue
    assert args["docker"] == docker
    assert args["docker_args"] == docker_args
    assert args["packages"] == (packages or None)
    assert args["session_tags"] == (tags or None)
    assert args["username"] == username
    assert args["password"] is None and "--password" not in build_argv(preset, password=password)
    assert args["vscode_extensions"] == (",".join(extensions) or None)


# --- validation ----------------------------------------------------------------------------------


def test_a_reasonable_preset_is_valid() -> None:
    assert validate_preset(Preset(name="gpu", queue="gpu-queue", packages=["torch"])) == []


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"name": ""}, "the name is empty"),
        ({"name": " x"}, "starts or ends with spaces"),
        ({"queue": ""}, "no queue is set"),
        ({"queue": "-q"}, "queue '-q' starts with '-'"),
        ({"packages": ["-e git+x"]}, "package '-e git+x' starts with '-'"),
        ({"packages": [""]}, "an empty package"),
        ({"tags": ["-t"]}, "tag '-t' starts with '-'"),
        ({"vscode_extensions": ["a,b"]}, "VS Code extension 'a,b'"),
        ({"username": "a b"}, "username 'a b' contains spaces"),
        ({"remote_ssh_port": 0}, "remote SSH port 0"),
        ({"remote_ssh_port": 70000}, "remote SSH port 70000"),
        ({"continue_session": "abc"}, "needs a store-workspace folder"),
        ({"session_name": "a\nb"}, "session_name contains a line break"),
        ({"extra_args": ["--yes"]}, "--yes is managed by the app"),
        ({"extra_args": ["--attach=abc"]}, "--attach is managed by the app"),
        ({"extra_args": ["--password", "x"]}, "--password is managed by the app"),
        ({"extra_args": ["--config-file", "x"]}, "--config-file is managed by the app"),
        ({"extra_args": ["--idle-timeout", "30"]}, "--idle-timeout is not a clearml-session"),
        ({"extra_args": ["list"]}, "must start with an option"),
        ({"requirements_file": "-"}, "requirements file path starts with '-'"),
        ({"init_script": "-x.sh"}, "write ./-x.sh"),
    ],
)
def test_invalid_preset_reasons(fields: dict[str, Any], needle: str) -> None:
    preset = Preset(**{"name": "p", "queue": "q", **fields})
    reasons = validate_preset(preset, check_files=False)
    assert any(needle in r for r in reasons), reasons


def test_missing_local_files_are_reported(tmp_path: Path) -> None:
    preset = Preset(
        name="p",
        queue="q",
        requirements_file=str(tmp_path / "req.txt"),
        init_script=str(tmp_path / "init.sh"),
        upload_files=str(tmp_path / "nothing"),
    )
    reasons = validate_preset(preset)
    assert any("requirements file" in r and "does not exist" in r for r in reasons)
    assert any("init script" in r for r in reasons)
    assert any("upload path" in r for r in reasons)
    assert validate_preset(preset, check_files=False) == []


def test_fixed_password_keyring_reference_defaults_to_the_preset_key() -> None:
    preset = Preset(name="gpu", queue="q", password_policy=PasswordPolicy.FIXED)
    assert preset.password_keyring_key() == preset_password_key("gpu")
    preset.password_ref = "custom/ref"
    assert preset.password_keyring_key() == "custom/ref"
    assert "password" not in preset_to_dict(preset)


# --- JSON import / export ------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_opt_bool = st.none() | st.booleans()


@st.composite
def presets_lists(draw: st.DrawFn) -> list[Preset]:
    names = draw(st.lists(_text.filter(lambda s: s.strip() != ""), max_size=4, unique=True))
    return [
        Preset(
            name=name,
            queue=draw(_text),
            docker_image=draw(_text),
            packages=draw(st.lists(_text, max_size=3)),
            tags=draw(st.lists(_text, max_size=2)),
            public_ip=draw(_opt_bool),
            remote_ssh_port=draw(st.none() | st.integers(1, 65535)),
            jupyter_lab=draw(_opt_bool),
            vscode_extensions=draw(st.lists(_text, max_size=2)),
            password_policy=draw(st.sampled_from(list(PasswordPolicy))),
            password_ref=draw(_text),
            keepalive=draw(_opt_bool),
            disable_session_cleanup=draw(st.booleans()),
            verbose=draw(st.booleans()),
            restore_workspace=draw(st.booleans()),
            extra_args=draw(st.lists(_text, max_size=2)),
        )
        for name in names
    ]


@settings(max_examples=100, deadline=None)
@given(presets=presets_lists())
def test_presets_round_trip_through_json(presets: list[Preset]) -> None:
    # The format alone (what validation would refuse is covered by the import tests).
    assert presets_from_json(presets_to_json(presets), validate=False) == presets


def test_export_document_shape() -> None:
    document = json.loads(presets_to_json([Preset(name="a", queue="q")]))
    assert document["version"] == 1
    assert document["presets"][0]["disable_session_cleanup"] is True
    assert document["presets"][0]["password_policy"] == "random"


def test_a_bare_list_is_accepted() -> None:
    assert presets_from_json('[{"name": "a", "queue": "q"}]') == [Preset(name="a", queue="q")]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"presets": [', "not valid JSON at line 1, column 14"),
        ('"x"', 'expected an object with a "presets" list, got a string'),
        ('{"other": 1}', 'has no "presets" list'),
        ('{"presets": {}}', '"presets" must be a list, got an object'),
        ('{"presets": [1]}', "preset #1: a preset must be a JSON object, got a number"),
        ('{"presets": [{"queue": "q"}]}', "preset #1: a preset has no 'name'"),
        (
            '{"presets": [{"name": "ok"}, {"name": "gpu", "remote_ssh_port": "22"}]}',
            "preset #2: preset 'gpu': field 'remote_ssh_port' must be a whole number or null, "
            "got a string '22'",
        ),
        (
            '{"presets": [{"name": "gpu", "packages": "torch"}]}',
            "preset 'gpu': field 'packages' must be a list of strings",
        ),
        (
            '{"presets": [{"name": "gpu", "public_ip": "yes"}]}',
            "preset 'gpu': field 'public_ip' must be true, false or null",
        ),
        (
            '{"presets": [{"name": "gpu", "verbose": null}]}',
            "preset 'gpu': field 'verbose' must be true or false",
        ),
        (
            '{"presets": [{"name": "gpu", "password_policy": "never"}]}',
            "preset 'gpu': field 'password_policy' must be one of 'random', 'fixed'",
        ),
        ('{"presets": [{"name": "gpu", "queu": "q"}]}', "preset 'gpu': unknown field 'queu'"),
        ('{"presets": [{"name": "gpu", "password": "x"}]}', "presets never hold passwords"),
        ('{"presets": [{"name": "a"}, {"name": "a"}]}', "two presets are named 'a'"),
    ],
)
def test_malformed_preset_documents_give_specific_errors(text: str, needle: str) -> None:
    with pytest.raises(PresetFormatError) as info:
        presets_from_json(text, source="import.json")
    assert needle in str(info.value)
    assert str(info.value).startswith("import.json")


def test_lenient_parsing_keeps_unknown_fields() -> None:
    preset = preset_from_dict({"name": "a", "new_option": [1]}, strict=False)
    assert preset.unknown_fields == {"new_option": [1]}
    assert preset_to_dict(preset)["new_option"] == [1]


# --- workspace presets ---------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[str], Path]:
    def make(content: str) -> Path:
        folder = tmp_path / "project"
        (folder / ".vscode").mkdir(parents=True, exist_ok=True)
        (folder / ".vscode" / "clearml.json").write_text(content)
        return folder

    return make


def test_workspace_presets_are_read_and_relative_paths_resolved(
    workspace: Callable[[str], Path],
) -> None:
    folder = workspace(
        json.dumps(
            {
                "presets": [
                    {
                        "name": "gpu",
                        "queue": "gpu-q",
                        "requirements_file": "requirements.txt",
                        "init_script": "/abs/init.sh",
                        "tags": ["ws"],
                    },
                    {"name": "cpu", "queue": "cpu-q", "jupyter_lab": False},
                ]
            }
        )
    )
    presets = load_workspace_presets(folder)
    assert [p.name for p in presets] == ["gpu", "cpu"]
    assert presets[0].requirements_file == str(folder / "requirements.txt")
    assert presets[0].init_script == "/abs/init.sh"
    assert presets[0].tags == ["ws"]
    assert presets[1].jupyter_lab is False


def test_workspace_without_the_file_has_no_presets(tmp_path: Path) -> None:
    assert load_workspace_presets(tmp_path) == []


def test_workspace_file_with_comments_is_a_clear_error(workspace: Callable[[str], Path]) -> None:
    folder = workspace('{\n  // my presets\n  "presets": []\n}')
    with pytest.raises(PresetFormatError) as info:
        load_workspace_presets(folder)
    message = str(info.value)
    assert str(folder / ".vscode" / "clearml.json") in message
    assert "line 2, column 3" in message


def test_workspace_file_with_a_bad_field_names_file_preset_and_field(
    workspace: Callable[[str], Path],
) -> None:
    folder = workspace('{"presets": [{"name": "gpu", "queue": 7}]}')
    with pytest.raises(PresetFormatError) as info:
        load_workspace_presets(folder)
    message = str(info.value)
    assert "clearml.json, preset #1: preset 'gpu': field 'queue' must be a string" in message


def test_workspace_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "clearml.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PresetFormatError, match="cannot be read"):
        load_workspace_presets(tmp_path)


def test_fixed_password_from_the_keyring_never_reaches_display_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from tray_app.core.redact import install_redaction, uninstall_redaction, unregister_all_secrets
    from tray_app.core.settings.secrets import SecretStore

    preset = Preset(name="gpu", queue="q", password_policy=PasswordPolicy.FIXED)
    store = SecretStore(data_dir=tmp_path / "data")
    store.set(preset.password_keyring_key(), "Fixed-Pa55 word")
    install_redaction()
    try:
        password = store.get(preset.password_keyring_key())
        assert password == "Fixed-Pa55 word"
        argv = build_argv(preset, password=password)
        assert "Fixed-Pa55 word" not in argv  # the state file carries it to the child
        caplog.set_level(logging.INFO)
        state = state_file_text(password)
        logging.getLogger("tray_app.launcher").info("running %s / %s", display_command(argv), state)
        assert "running clearml-session --queue q" in caplog.text
        assert "Fixed-Pa55" not in caplog.text
        assert "Fixed-Pa55 word" not in presets_to_json([preset])
    finally:
        uninstall_redaction()
        unregister_all_secrets()


# -- presets from files someone else wrote (issue 18) ------------------------------------------


@pytest.mark.parametrize(
    ("preset", "words"),
    [
        ({"name": "gpu\x1b]0;x\x07", "queue": "q"}, "control character"),
        ({"name": "n" * (1024 * 1024), "queue": "q"}, "longer than 100"),
        ({"name": "n" * (10 * 1024 * 1024), "queue": "q"}, "larger than 4 MB"),
        ({"name": "ok", "queue": "q", "docker_image": "img\nrm -rf ~"}, "line break"),
        ({"name": "ok", "queue": "q", "packages": ["--index-url=http://evil"]}, "starts with '-'"),
        ({"name": "ok", "queue": "-q"}, "starts with '-'"),
    ],
)
def test_imported_presets_are_validated(preset: dict[str, object], words: str) -> None:
    text = json.dumps({"version": 1, "presets": [preset]})
    with pytest.raises(PresetFormatError, match=words) as info:
        presets_from_json(text, source="import.json")
    assert len(str(info.value)) < 1000  # a 10 MB name is not repeated in the message
    assert "\x1b" not in str(info.value)


def test_deeply_nested_presets_are_a_clear_error(tmp_path: Path) -> None:
    text = '{"presets": [{"name": "x", "queue": "q", "extra": ' + "[" * 50_000 + "]" * 50_000
    with pytest.raises(PresetFormatError, match="nested too deeply"):
        presets_from_json(text + "}]}", source="deep.json", strict=False)
    shallow = "[" * 900 + "]" * 900  # parses, but repr of it in a message would recurse
    with pytest.raises(PresetFormatError, match="must be a string"):
        presets_from_json('[{"name": "x", "queue": ' + shallow + "}]", source="deep.json")


def test_a_workspace_presets_fifo_neither_blocks_nor_is_read(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    os.mkfifo(tmp_path / ".vscode" / "clearml.json")
    with pytest.raises(PresetFormatError, match="not a regular file"):
        load_workspace_presets(tmp_path)


def test_a_huge_workspace_presets_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "clearml.json").write_text(" " * (5 * 1024 * 1024) + "[]")
    with pytest.raises(PresetFormatError, match="larger than 4 MB"):
        load_workspace_presets(tmp_path)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"upload_files": "~/.ssh"}, "holds ~/.ssh"),
        ({"upload_files": "~"}, "holds ~/.ssh"),  # the whole home contains it
        ({"upload_files": "~/.aws/credentials"}, "holds ~/.aws"),
        ({"upload_files": "~/clearml.conf"}, "holds ~/clearml.conf"),
        ({"init_script": "~/.ssh/id_ed25519"}, "init script"),
        ({"git_credentials": True}, "git credentials"),
        ({"extra_args": ["--remote-gateway", "gw.evil.example"]}, "gateway gw.evil.example"),
        ({"extra_args": ["--remote-gateway=gw.evil.example"]}, "gateway gw.evil.example"),
        ({"extra_args": ["--skip-docker-network"]}, "extra arguments"),
    ],
)
def test_workspace_preset_disclosures_name_what_leaves_the_machine(
    isolated_home: Path, changes: dict[str, Any], expected: str
) -> None:
    from dataclasses import replace

    from tray_app.core.settings.presets import preset_disclosures

    preset = replace(Preset(name="p", queue="q"), **changes)
    notes = preset_disclosures(preset, isolated_home)
    assert any(expected in n for n in notes), notes


def test_an_ordinary_preset_discloses_nothing(isolated_home: Path) -> None:
    from tray_app.core.settings.presets import preset_disclosures

    preset = Preset(name="p", queue="q", init_script="setup.sh", docker_image="python:3.11")
    assert preset_disclosures(preset, isolated_home) == []


def test_the_warning_names_every_upload_and_every_endpoint_not_just_the_gateway(
    isolated_home: Path,
) -> None:
    """`--upload-files=~/.aws` beside `--remote-gateway` passed with only the gateway named."""
    from tray_app.core.settings.presets import preset_disclosures

    preset = Preset(
        name="p",
        queue="q",
        upload_files="~/project/data",
        public_ip=True,
        remote_ssh_port=2222,
        extra_args=["--upload-files=~/.aws", "--remote-gateway", "gw.example.org",
                    "--router-enabled", "true", "--git-credentials", "true"],
    )  # fmt: skip
    notes = preset_disclosures(preset, isolated_home)
    text = " | ".join(notes)
    for expected in (
        "uploads ~/project/data",
        "uploads ~/.aws, which holds ~/.aws (credentials)",
        "connects through the gateway gw.example.org",
        "routes the session's ports through the server's router",
        "publishes the session on the machine's public IP address",
        "serves SSH on remote port 2222",
        "sends your git credentials",
        "passes extra arguments: --upload-files=~/.aws --remote-gateway gw.example.org",
    ):
        assert expected in text, notes


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"username": 'ro"ot'}, "the user name 'ro\"ot'"),
        ({"username": "ro'ot"}, "may hold only letters"),
        ({"username": "$USER"}, "may hold only letters"),
        ({"username": "a;b"}, "may hold only letters"),
        ({"extra_args": ["--username=r o"]}, "may hold only letters"),
        ({"extra_args": ["--username", "r`id`"]}, "may hold only letters"),
        ({"extra_args": ["--remote-gateway", 'gw"x']}, "is not a host name"),
        ({"extra_args": ["--remote-gateway=root@gw.example.org"]}, "is not a host name"),
    ],
)
def test_values_that_reach_ssh_refuse_quotes_and_spaces(
    changes: dict[str, Any], words: str
) -> None:
    from dataclasses import replace

    reasons = validate_preset(replace(Preset(name="p", queue="q"), **changes), check_files=False)
    assert any(words in r for r in reasons), reasons


def test_ordinary_user_names_and_gateways_pass() -> None:
    preset = Preset(
        name="p", queue="q", username="jane.doe-2",
        extra_args=["--remote-gateway", "10.0.0.7", "--username", "root"],
    )  # fmt: skip
    assert validate_preset(preset, check_files=False) == []


def test_a_second_queue_in_the_extra_arguments_is_refused() -> None:
    from tray_app.core.settings.presets import Preset, validate_preset

    reasons = validate_preset(Preset(name="p", queue="q", extra_args=["--queue", "other"]))
    assert any("--queue repeats the Queue field" in r for r in reasons)
    reasons = validate_preset(Preset(name="p", queue="q", extra_args=["--queue=other"]))
    assert any("--queue repeats" in r for r in reasons)
    docker = Preset(name="p", queue="q", docker_image="python:3.11", extra_args=["--docker", "x"])
    assert any("--docker repeats the Docker image field" in r for r in validate_preset(docker))
    # Without a Docker image field, --docker in the extra arguments is the only one: allowed.
    alone = Preset(name="p", queue="q", extra_args=["--docker", "x"])
    assert not any("repeats" in r for r in validate_preset(alone))
