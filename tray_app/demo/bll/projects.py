"""Projects (apiserver/bll/project/): a new project, a project by its name.

Tested in tests/unit/demo/test_emulator_tasks.py (projects.create, tasks.clone).
"""

from __future__ import annotations

from tray_app.demo.state import Doc, EmulatorState


def add_project(
    state: EmulatorState,
    name: str,
    user_id: str,
    *,
    description: str = "",
    project_id: str | None = None,
) -> Doc:
    pid = project_id or state.seeded_id()
    now = state.now_iso()
    project: Doc = {
        "id": pid,
        "name": name,
        "basename": name.rsplit("/", 1)[-1],
        "description": description,
        "user": user_id,
        "company": state.company_id,
        "created": now,
        "last_update": now,
        "tags": [],
        "system_tags": [],
        "default_output_destination": None,
    }
    state.projects[pid] = project
    return project


def project_by_name(state: EmulatorState, name: str) -> Doc | None:
    for proj in state.projects.values():
        if proj["name"] == name:
            return proj
    return None


__all__ = ["add_project", "project_by_name"]
