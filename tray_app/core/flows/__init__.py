"""Qt-free workflows that own their state and reach the user through `core.ports`."""
