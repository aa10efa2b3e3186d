"""No secret ever reaches a log record or a formatted log line."""

from __future__ import annotations

import io
import json
import logging
import shlex
import string
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tray_app.core.redact import (
    MASK,
    RedactingFilter,
    StreamRedactor,
    add_redaction,
    install_redaction,
    redact,
    register_secret,
    uninstall_redaction,
    unregister_all_secrets,
)

SECRET = "S3cr3t-Value_xyz!"


@pytest.fixture(autouse=True)
def _clean_redaction() -> Iterator[None]:
    yield
    uninstall_redaction()
    unregister_all_secrets()


@pytest.fixture
def stream_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A real StreamHandler with the usual formatter, on a logger that doesn't propagate."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test_redact.stream")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    add_redaction(handler)
    yield logger, buffer
    logger.handlers = []
    logger.propagate = True


# --- redact(): one form per test -------------------------------------------------------------


def test_clearml_session_password_line_is_masked() -> None:
    line = "SSH: ssh root@localhost -p 8022 [password: s3cr3t!]"
    assert redact(line) == "SSH: ssh root@localhost -p 8022 [password: ***]"


def test_password_with_brackets_and_spaces_is_masked_to_the_end_of_line() -> None:
    text = "SSH: ssh root@localhost -p 8023 [password: a]b c] d]]\nJupyter Lab URL: x"
    out = redact(text)
    assert out == "SSH: ssh root@localhost -p 8023 [password: ***]\nJupyter Lab URL: x"


def test_partial_password_line_without_closing_bracket_is_masked() -> None:
    assert redact("SSH: ssh root@localhost -p 8022 [password: abc d") == (
        "SSH: ssh root@localhost -p 8022 [password: ***"
    )


def test_remote_login_banner_password_is_masked() -> None:
    assert redact("# LOGIN u:root p:Xy9 z") == "# LOGIN u:root p:***"


def test_jupyter_token_in_url_is_masked_and_other_params_kept() -> None:
    url = "Jupyter Lab URL: http://localhost:8878/?token=0a1b2c3d&file-browser-path=/root/work"
    assert redact(url) == (
        "Jupyter Lab URL: http://localhost:8878/?token=***&file-browser-path=/root/work"
    )


def test_json_secret_and_access_keys_are_masked() -> None:
    text = json.dumps({"access_key": "AK123", "secret_key": 'x"y', "name": "keep"})
    assert json.loads(redact(text)) == {"access_key": MASK, "secret_key": MASK, "name": "keep"}


def test_hocon_credentials_are_masked() -> None:
    text = 'api { credentials { "access_key" = "AK123"\n  secret_key: SK/456+789\n } }'
    out = redact(text)
    assert "AK123" not in out
    assert "SK/456+789" not in out
    assert out.count(MASK) == 2


def test_env_style_key_value_is_masked() -> None:
    assert redact("CLEARML_API_SECRET_KEY=abc123 CLEARML_API_HOST=http://127.0.0.1:8008") == (
        "CLEARML_API_SECRET_KEY=*** CLEARML_API_HOST=http://127.0.0.1:8008"
    )


def test_runtime_properties_user_secret_and_ssh_password_are_masked() -> None:
    text = "{'_user_key': 'AKAK', '_user_secret': 'SKSK', '_ssh_password': 'pw pw'}"
    out = redact(text)
    assert out == "{'_user_key': '***', '_user_secret': '***', '_ssh_password': '***'}"


def test_authorization_header_is_masked() -> None:
    assert redact("Authorization: Basic QUJDOkRFRg==") == "Authorization: ***"
    assert redact("{'Authorization': 'Bearer abc.def'}") == "{'Authorization': '***'}"


def test_bearer_token_is_masked() -> None:
    assert redact("sending Bearer abcdefghij0123") == "sending Bearer ***"


def test_jwt_is_masked_anywhere() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl-_"
    assert redact(f"got {jwt} back") == "got *** back"


def test_password_flag_in_command_line_is_masked() -> None:
    cmd = shlex.join(["clearml-session", "--queue", "q", "--password", "it's secret", "--yes"])
    assert redact(cmd) == "clearml-session --queue q --password '***' --yes"
    assert redact("clearml-session --password=abc --yes") == "clearml-session --password=*** --yes"


def test_password_in_logged_argv_list_is_masked() -> None:
    argv = ["clearml-session", "--password", "p@ss word", "--yes"]
    assert redact(str(argv)) == "['clearml-session', '--password', '***', '--yes']"


def test_url_userinfo_password_is_masked() -> None:
    assert redact("cloning https://bob:hunter22@git.local/x.git") == (
        "cloning https://bob:***@git.local/x.git"
    )


def test_registered_secret_is_masked_in_any_context() -> None:
    register_secret(SECRET)
    assert redact(f"value is <{SECRET}> and {json.dumps(SECRET)}") == 'value is <***> and "***"'


def test_ordinary_output_is_left_alone() -> None:
    text = (
        "Failed getting token (error 401 from http://127.0.0.1:8008): Unauthorized\n"
        "New session created [id=0123456789abcdef0123456789abcdef]\n"
        "Starting SSH tunnel to root@127.0.3.17, port 10022\n"
        "SSH tunneling failed, retrying in 3 seconds"
    )
    assert redact(text) == text


def test_clearml_session_config_dump_keeps_everything_but_the_password() -> None:
    state = {
        "base_task_id": None,
        "disable_session_cleanup": True,
        "git_credentials": False,
        "password": "a1b2c3d4e5",
        "queue": "default",
        "remote_ssh_port": "10022",
        "username": "root",
    }
    dump = "\nInteractive session config:\n" + json.dumps(state, indent=4, sort_keys=True) + "\n"
    redacted = json.loads(redact(dump).split("config:\n", 1)[1])
    assert redacted == {**state, "password": MASK}


def test_structure_after_secret_key_is_not_eaten() -> None:
    assert redact('"credentials": {"secret_key": "x1x1"}') == '"credentials": {"secret_key": "***"}'


# --- logging ---------------------------------------------------------------------------------


def test_percent_args_are_redacted_in_caplog(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    register_secret(SECRET)
    logging.getLogger("tray_app.test").warning("login with %s and %r", SECRET, {"token": "t0k3n"})
    assert SECRET not in caplog.text
    assert "t0k3n" not in caplog.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert not record.args


def test_handler_added_after_install_is_covered_by_the_record_factory() -> None:
    install_redaction()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)  # no filter on purpose
    logger = logging.getLogger("tray_app.late")
    logger.addHandler(handler)
    try:
        logger.error("SSH: ssh root@localhost -p 8022 [password: late!]")
    finally:
        logger.removeHandler(handler)
    assert "late!" not in buffer.getvalue()
    assert "[password: ***]" in buffer.getvalue()


def test_install_adds_filter_to_root_handlers_once() -> None:
    handler = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_redaction()
        install_redaction()
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)


def test_exception_message_with_secret_is_redacted(
    stream_logger: tuple[logging.Logger, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    logger, buffer = stream_logger
    register_secret(SECRET)
    try:
        raise RuntimeError(f"auth failed for secret_key={SECRET} password: hunter22")
    except RuntimeError:
        logger.exception("request failed")
    output = buffer.getvalue()
    assert "Traceback" in output
    assert "RuntimeError" in output
    assert SECRET not in output
    assert "hunter22" not in output


def test_exception_in_caplog_record_holds_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    try:
        raise ValueError("bad token=abcdef123456")
    except ValueError:
        logging.getLogger("tray_app.test").exception("oops")
    assert "abcdef123456" not in caplog.text
    record = caplog.records[-1]
    assert record.exc_info is None
    assert record.exc_text is not None and "token=***" in record.exc_text


def test_broken_format_args_do_not_leak_or_raise(
    stream_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = stream_logger
    logger.warning("two %s %s", "password=only-one-given")
    assert "only-one-given" not in buffer.getvalue()


def test_stack_info_is_redacted(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = stream_logger
    register_secret(SECRET)

    def inner(secret: str) -> None:
        logger.info("here %s", secret, stack_info=True)

    inner(SECRET)
    assert SECRET not in buffer.getvalue()


# --- property tests --------------------------------------------------------------------------

_printable = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
    min_size=4,
    max_size=40,
).filter(lambda s: s.strip() == s and len(s.strip()) >= 4)
_no_space = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=4, max_size=40
)

_FORMS_ANY = [
    lambda s: f"SSH: ssh root@localhost -p 8022 [password: {s}]",
    lambda s: json.dumps({"secret_key": s, "queue": "default"}),
    lambda s: json.dumps({"_ssh_password": s}),
    lambda s: repr({"access_key": s}),
    lambda s: f"http://localhost:8878/?token={quote(s, safe='')}&x=1",
    lambda s: shlex.join(["clearml-session", "--password", s, "--yes"]),
    lambda s: str(["clearml-session", "--password", s]),
]
_FORMS_NO_SPACE = [
    lambda s: f"CLEARML_API_SECRET_KEY={s}",
    lambda s: f"api.credentials.secret_key: {s}\nnext: 1",
    lambda s: f"password = {s} ",
    lambda s: f"--password={s}",
]


def _assume_not_in_context(secret: str, form: Callable[[str], str]) -> None:
    """Skip secrets that the surrounding text itself contains ("pass" in "[password: ***]")."""
    assume(not _leaks(secret, "output: " + redact(form("QQQQQQQQ"))))


def _leaks(secret: str, text: str) -> bool:
    encoded = quote(secret, safe="")
    return secret in text or (encoded != secret and encoded in text)


@settings(max_examples=200, deadline=None)
@given(secret=_printable, form=st.sampled_from(_FORMS_ANY))
def test_generated_secrets_never_reach_a_stream_handler(secret: str, form: object) -> None:
    assert callable(form)
    _assume_not_in_context(secret, form)
    buffer = io.StringIO()
    handler = add_redaction(logging.StreamHandler(buffer))
    logger = logging.getLogger("tray_app.hypothesis")
    logger.handlers = [handler]
    logger.propagate = False
    try:
        logger.warning("output: %s", form(secret))
    finally:
        logger.handlers = []
        logger.propagate = True
    assert not _leaks(secret, buffer.getvalue())


@settings(max_examples=200, deadline=None)
@given(secret=_no_space, form=st.sampled_from(_FORMS_NO_SPACE))
def test_generated_unquoted_secrets_are_redacted(secret: str, form: object) -> None:
    assert callable(form)
    _assume_not_in_context(secret, form)
    assert secret not in redact(form(secret))


@settings(max_examples=200, deadline=None)
@given(secret=_printable, prefix=st.text(string.printable), suffix=st.text(string.printable))
def test_generated_registered_secret_is_redacted_anywhere(
    secret: str, prefix: str, suffix: str
) -> None:
    unregister_all_secrets()
    register_secret(secret)
    assert secret not in redact(prefix + secret + suffix)


# --- streams ---------------------------------------------------------------------------------

TRANSCRIPT = (
    "Interactive session is running:\n"
    "SSH: ssh root@localhost -p 8022 [password: PW]\n"
    "Jupyter Lab URL: http://localhost:8878/?token=TK&file-browser-path=/root\n"
    "VSCode server available at http://localhost:8898/\n"
    "\rWaiting... \r> remote line\n"
    "Launch interactive session [Y]/n? "
)


def test_stream_redactor_holds_partial_lines_until_complete() -> None:
    stream = StreamRedactor()
    assert stream.feed("SSH: ssh root@localhost -p 8022 [password: ab") == ""
    assert stream.feed("c]\nnext") == "SSH: ssh root@localhost -p 8022 [password: ***]\n"
    assert stream.flush() == "next"


def test_stream_redactor_flush_inside_a_password_still_masks_its_rest() -> None:
    stream = StreamRedactor()
    stream.feed("SSH: ssh root@localhost -p 8022 [password: ab")
    assert stream.flush() == "SSH: ssh root@localhost -p 8022 [password: ***"
    assert stream.feed("cd]\nafter\n") == "]\nafter\n"
    assert stream.feed("plain\n") == "plain\n"


def test_stream_redactor_releases_prompts_on_flush() -> None:
    stream = StreamRedactor()
    assert stream.feed("Launch interactive session [Y]/n? ") == ""
    assert stream.flush() == "Launch interactive session [Y]/n? "
    assert stream.feed("\n") == "\n"


@settings(max_examples=200, deadline=None)
@given(
    password=st.text(st.sampled_from("αβγδεζηθ]![ :;'\"x"), min_size=1, max_size=20).map(
        lambda s: "α" + s
    ),
    token=st.text(st.sampled_from("ικλμνξ"), min_size=1, max_size=10),
    cuts=st.lists(st.integers(0, 400), max_size=12),
    flushes=st.lists(st.booleans(), max_size=12),
)
def test_arbitrary_chunking_and_flushing_never_leaks(
    password: str, token: str, cuts: list[int], flushes: list[bool]
) -> None:
    text = TRANSCRIPT.replace("PW", password).replace("TK", token)
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    stream = StreamRedactor()
    out = []
    for i, chunk in enumerate(chunks):
        out.append(stream.feed(chunk))
        if i < len(flushes) and flushes[i]:
            out.append(stream.flush())
    out.append(stream.flush())
    joined = "".join(out)
    assert not set(joined) & set("αβγδεζηθικλμνξ")
    if not any(flushes):
        assert joined == redact(text)
