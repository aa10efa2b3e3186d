"""The emulator's state changes, one module per service, as clearml-server keeps them in
`apiserver/bll/<service>/` beside its API layer (`apiserver/services/`, here `services/`).

The service handlers call these functions, and so do the simulated agent (`agent.py`) and the
seed data (`seed.py`). Those that need the `EmulatorState` take it first; callers hold
`state.lock`. The modules import the state and each other in one direction only, so no cycle
can form:

    state  <-  users, projects, queues, events  <-  tasks  <-  workers

Tested through the endpoints and the simulated agent that call them, in tests/unit/demo/;
each module names its files.
"""
