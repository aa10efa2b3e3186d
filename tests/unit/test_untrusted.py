"""Server text made safe to show, copy and open (tray_app/core/untrusted.py)."""

from __future__ import annotations

import pytest

from tray_app.core.untrusted import (
    display_text,
    markup_escape,
    menu_label,
    safe_http_url,
    safe_ssh_command,
)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name", "plain name"),
        ("\x1b]0;pwned title\x07train", "train"),  # OSC: terminal title change
        ("\x1b[2J\x1b[Hclear", "clear"),  # CSI: screen clear, cursor home
        ("\x1b[31mred\x1b[0m", "red"),
        ("two\nlines\r\nfake row", "two lines fake row"),
        ("tab\there", "tab here"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("\u202eexe.txt", "exe.txt"),  # right-to-left override
        ("a\u2066b\u2069c\u202a\u202dd", "abcd"),
        ("c1\x9b31mcontrol\x85next", "c1control next"),
        ("  spaced   out  ", "spaced out"),
        ("ünïcødé 名前", "ünïcødé 名前"),
    ],
)
def test_display_text_keeps_only_one_line_of_plain_text(raw, shown):
    assert display_text(raw) == shown


def test_display_text_bounds_length_and_work():
    assert display_text("x" * 100, 10) == "x" * 9 + "…"
    huge = "y" * (10 * 1024 * 1024)
    assert len(display_text(huge)) <= 64 * 1024
    assert display_text("short", 10) == "short"


def test_markup_escape_neutralises_tags_and_entities():
    assert markup_escape("<b>x</b> & <a href='file:///etc'>y</a>") == (
        "&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href='file:///etc'&gt;y&lt;/a&gt;"
    )
    assert markup_escape("line\n<i>") == "line &lt;i&gt;"


def test_menu_label_doubles_ampersands_for_qt():
    assert menu_label("R&D\u202e\nx") == "R&&D x"


@pytest.mark.parametrize(
    ("user", "host", "port", "expected"),
    [
        ("root", "10.0.0.5", 22, "ssh -p 22 root@10.0.0.5"),
        ("dev_user", "gpu-1.example.com", 10022, "ssh -p 10022 dev_user@gpu-1.example.com"),
        ("root", "::1", 2222, "ssh -p 2222 root@::1"),
        ("root\nrm -rf ~", "10.0.0.5", 22, None),
        ('ro"ot', "10.0.0.5", 22, None),
        ("-oProxyCommand=x", "10.0.0.5", 22, None),
        ("root", "host;rm -rf ~", 22, None),
        ("root", "-oProxyCommand=x", 22, None),
        ("root", "a..b", 22, None),
        ("root", "10.0.0.5", 0, None),
        ("root", "10.0.0.5", 70000, None),
        ("", "10.0.0.5", 22, None),
        ("root", "", 22, None),
    ],
)
def test_safe_ssh_command_only_builds_what_validates(user, host, port, expected):
    assert safe_ssh_command(user, host, port) == expected


def test_safe_ssh_command_refuses_a_bool_or_text_port():
    assert safe_ssh_command("root", "h", True) is None  # type: ignore[arg-type]
    assert safe_ssh_command("root", "h", "22") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "host", "ok"),
    [
        ("http://10.0.0.5:8888/lab?token=abc", "10.0.0.5", True),
        ("https://GPU-1.example.com/lab", "gpu-1.example.com", True),
        ("http://[::1]:8888/", "::1", True),
        ("file:///etc/passwd", "10.0.0.5", False),
        ("javascript:alert(1)", "10.0.0.5", False),
        ("http://evil.example.com/", "10.0.0.5", False),
        ("http://user:pw@10.0.0.5/", "10.0.0.5", False),
        ("http://10.0.0.5:99999/", "10.0.0.5", False),
        ("http://10.0.0.5/\nx", "10.0.0.5", False),
        ("http://10.0.0.5.evil.com/", "10.0.0.5", False),
        ("", "10.0.0.5", False),
    ],
)
def test_safe_http_url_allows_only_http_to_the_expected_host(url, host, ok):
    assert (safe_http_url(url, host) == url) is ok
    if not ok:
        assert safe_http_url(url, host) is None
