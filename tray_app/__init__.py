"""ClearML Session Tray: live ClearML interactive sessions in the system tray."""

__version__ = "0.1.0"
APP_NAME = "clearml-tray"
APP_DISPLAY_NAME = "ClearML Session Tray"
