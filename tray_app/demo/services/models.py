"""models.get_all / get_all_ex: always empty, the SDK asks (apiserver/services/models.py).

Tested in tests/unit/demo/test_emulator_tasks.py (test_models_listing_is_empty).
"""

from __future__ import annotations

from tray_app.demo.services.base import Call, Doc, endpoint


@endpoint("models.get_all")
def models_get_all(call: Call, body: Doc) -> Doc:
    # The emulator stores no models; clearml-session asks for a session's models when it
    # deletes stale sessions (Task.delete), and a real server answers with an empty list.
    return {"models": []}


@endpoint("models.get_all_ex", min_version="2.1")
def models_get_all_ex(call: Call, body: Doc) -> Doc:
    return models_get_all(call, body)
