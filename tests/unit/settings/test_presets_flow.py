"""The workspace's presets file, followed: a mistake is said while the file is open."""

from __future__ import annotations

from pathlib import Path

from support.recorders import Notices

from tray_app.core.settings.presets_flow import PresetsFlow
from tray_app.core.settings.store import SettingsStore


async def test_a_broken_workspace_presets_file_is_said_with_its_line_then_fixed(
    tmp_path: Path,
) -> None:
    store, notices = SettingsStore(), Notices()
    await store.load()
    flow = PresetsFlow(notify=notices, store=store)
    assert flow.workspace_file() == []  # no folder set: nothing followed
    store.settings.workspace_folder = str(tmp_path)
    (file,) = flow.workspace_file()
    assert file == tmp_path / ".vscode" / "clearml.json"
    file.parent.mkdir()
    file.write_text('{"presets": [\n  {"name": "repo", "queue": "q"},\n]}\n')
    await flow.workspace_changed()
    kind, title, body = notices.sent[-1]
    assert (kind, title) == ("error", "Workspace presets ignored")
    assert str(file) in body and "line 3" in body
    file.write_text('{"presets": [{"name": "repo", "queue": "q"}]}\n')
    await flow.workspace_changed()
    assert notices.sent[-1][:2] == ("info", "Workspace presets fixed")
    await flow.workspace_changed()
    assert len(notices.sent) == 2  # nothing to say while it stays fine
