"""The files that make up the ClearML configuration: the candidates and what they include."""

from __future__ import annotations

from pathlib import Path

from tray_app.core.server.config_files import config_files, included_files


def test_includes_are_found_relative_to_the_including_file(tmp_path: Path) -> None:
    text = (
        'include "keys.conf"\n'
        'include required("/etc/clearml/site.conf")\n'
        '  include required(file("nested/more.conf"))\n'
        'include url("http://example.invalid/x.conf")\n'
        '# include "commented.conf" is not an include\n'
        'api { api_server: "include \\"no.conf\\"" }\n'
    )
    assert included_files(text, tmp_path) == [
        tmp_path / "keys.conf",
        Path("/etc/clearml/site.conf"),
        tmp_path / "nested" / "more.conf",
    ]


def test_the_candidates_and_their_includes_present_or_not(tmp_path: Path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    (home / "clearml.conf").write_text('include "keys.conf"\n')
    (home / "keys.conf").write_text('include "deeper.conf"\n')
    env = {"HOME": str(home)}
    assert config_files(None, env) == [
        home / "trains.conf",  # missing: followed, so that one appearing is seen
        home / "clearml.conf",
        home / "keys.conf",
        home / "deeper.conf",
    ]
    explicit = tmp_path / "other.conf"
    assert config_files(str(explicit), env) == [explicit]


def test_an_include_loop_ends(tmp_path: Path) -> None:
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    a.write_text('include "b.conf"\n')
    b.write_text('include "a.conf"\n')
    assert config_files(str(a), {"HOME": str(tmp_path)}) == [a, b]
