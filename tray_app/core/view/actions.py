"""What a menu row, a notice button or the hotkey asks for: one name each, shared by the menu
model, the controller and the tray (a typo is a type error, not a silent no-op).

Tested in tests/qt/test_controller.py and tests/unit/view/test_menu.py.
"""

from __future__ import annotations

from enum import StrEnum


class MenuAction(StrEnum):
    # The app's own windows and state
    SETTINGS = "settings"
    ABOUT = "about"
    ONBOARDING = "onboarding"
    NEW_SESSION = "new_session"
    START_DEMO = "start_demo"
    OPEN_LOG_FOLDER = "open_log_folder"
    QUIT = "quit"
    REFRESH = "refresh"
    IMPORT_PRESETS = "import_presets"
    EXPORT_PRESETS = "export_presets"
    QUICK_PICK = "quick_pick"  # the "N more… (search)" row
    CREDENTIALS = "credentials"  # enter the keys the ClearML web UI gives
    # A session (the row's session id)
    CONNECT = "connect"
    OPEN_JUPYTER = "open_jupyter"
    OPEN_TERMINAL = "open_terminal"
    COPY_SSH = "copy_ssh"
    COPY_DIRECT_SSH = "copy_direct_ssh"
    OPEN_WEB = "open_web"
    SHOW_LOG = "show_log"
    STOP = "stop"
    DELETE = "delete"
    KEEP_ALIVE = "keep_alive"
    INTENT = "intent"  # the user pointed at the session (its submenu opened)
    # A tunnel (the row's tunnel key)
    RECONNECT = "reconnect"
    DISCONNECT = "disconnect"
    SHUTDOWN_TUNNEL = "shutdown_tunnel"
    FOLLOW_LOG = "follow_log"
    CANCEL_LAUNCH = "cancel_launch"  # a launch or attach still coming up: asks, then ends it
    COPY_PASSWORD = "copy_password"
    # A preset (its name rides in the session id field)
    LAUNCH_PRESET = "launch_preset"


APP_ACTIONS = frozenset(
    {
        MenuAction.SETTINGS,
        MenuAction.ABOUT,
        MenuAction.ONBOARDING,
        MenuAction.NEW_SESSION,
        MenuAction.START_DEMO,
        MenuAction.OPEN_LOG_FOLDER,
        MenuAction.QUIT,
        MenuAction.REFRESH,
        MenuAction.IMPORT_PRESETS,
        MenuAction.EXPORT_PRESETS,
        MenuAction.QUICK_PICK,
        MenuAction.CREDENTIALS,
    }
)
