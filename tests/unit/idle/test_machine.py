"""A session's machine from the names clearml-agent gives its workers: host, pod, MIG, sharers."""

from __future__ import annotations

from tray_app.core.idle.machine import Machine, host_of, is_mig, is_pod, machine_of
from tray_app.core.server.models import Session, SessionState

TASK = "6074a10f" + "0" * 24


def session(worker: str, **kw: object) -> Session:
    return Session(
        id=TASK,
        name="Interactive Session",
        status="in_progress",
        state=SessionState.RUNNING,
        worker_id=worker,
        **kw,  # type: ignore[arg-type]
    )


def test_daemon_workers_name_their_host() -> None:
    """commands/worker.py `_generate_worker_id_name`: `<worker_name>:gpu<devices>`, or
    `<worker_name>:cpu:<pid>`, or `<worker_name>:<pid>`; services mode `…:service:<task id>`."""
    assert host_of("gpu-a100-3:gpu0") == "gpu-a100-3"
    assert host_of("gpu-a100-3:gpu0,1") == "gpu-a100-3"
    assert host_of("cpu-box:cpu:4123") == "cpu-box"
    assert host_of("laptop:4123") == "laptop"
    assert host_of(f"services-host:service:{TASK}") == "services-host"
    assert host_of(f"k8s-glue:{TASK}") is None  # a pod: its node is not named


def test_a_k8s_pod_is_named_after_its_task() -> None:
    """glue/k8s.py `get_task_worker_id`: `<glue worker id>:<task id>`."""
    assert is_pod(f"k8s-glue:{TASK}", TASK)
    assert not is_pod(f"k8s-glue:{'1' * 32}", TASK)
    assert not is_pod(f"host:service:{TASK}", TASK)
    assert not is_pod("gpu-a100-3:gpu0", TASK)


def test_mig_slices_from_the_gpus_option() -> None:
    assert is_mig("mig-node:gpu0.1") and is_mig("mig-node:gpu0:1") and is_mig("n:gpuMIG-1234")
    assert not is_mig("node:gpu0,1") and not is_mig("node:gpu0.25a") and not is_mig("n:cpu:12")


def test_machine_of_counts_the_other_workers_on_its_host() -> None:
    s = session("gpu-a100-3:gpu1", hostname="gpu-a100-3", cpu_cores=32, gpu_count=1)
    workers = ["gpu-a100-3:gpu0", "gpu-a100-3:gpu1", "gpu-a100-4:gpu0", f"k8s:{'2' * 32}"]
    assert machine_of(s, workers) == Machine("gpu-a100-3", 32, 1, sharers=1)
    assert machine_of(s, ["gpu-a100-3:gpu1"]).shared is False


def test_machine_of_a_pod() -> None:
    s = session(f"k8s-glue:{TASK}", hostname=f"clearml-id-{TASK}", cpu_cores=96, gpu_count=1)
    machine = machine_of(s, [f"k8s-glue:{TASK}", f"k8s-glue:{'3' * 32}"])
    assert machine == Machine("clearml-id-6074a10f", 96, 1, sharers=0, pod=True)
    assert machine.shared


def test_missing_figures_stay_unknown() -> None:
    machine = machine_of(session("box:gpu0", cpu_cores=0, gpu_count=None), [])
    assert (machine.host, machine.cores, machine.gpus) == ("box", None, 0)
