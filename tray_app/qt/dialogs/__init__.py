"""Dialogs and windows of the tray (each one module)."""
