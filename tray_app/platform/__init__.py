"""Platform backends (autostart, ...) behind small protocols chosen at run time."""
