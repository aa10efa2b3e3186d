from tray_app.core.wording import plural, session_title


def test_plural_counts() -> None:
    assert plural(1, "free worker") == "1 free worker"
    assert plural(0, "queue") == "0 queues"
    assert plural(2, "entry", "entries") == "2 entries"


def test_sessions_are_named_with_a_short_id_never_the_raw_id() -> None:
    sid = "3f2a9c1b" + "0" * 24
    assert session_title("Interactive Session", sid) == "Interactive Session (3f2a9c1b)"
    assert session_title("", sid) == "3f2a9c1b"
    assert sid not in session_title("  ", sid)
