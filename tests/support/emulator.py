"""pytest plugin: fixtures that run the ClearML API emulator (filled in by the emulator work)."""
