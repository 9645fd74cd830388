"""Running the container engine's commands: deadlines, messages, and podman listings that race
with removals by other processes. A FAKE podman (a script that prints what a real one prints in
those cases) stands in, as the races cannot be produced on demand."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from pytest_predeploy.targets.kube.engine import Engine, EngineError
from pytest_predeploy.targets.kube.state import Pods

FAKE = """#!{python}
import pathlib, sys
calls = pathlib.Path(sys.argv[0]).with_suffix(".calls")
n = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(n))
if n <= {failures}:
    print("Error: {error}", file=sys.stderr)
    sys.exit(125)
print('[{{"Name": "api-pod"}}]')
"""


def fake(tmp_path: Path, failures: int, error: str) -> Path:
    path = tmp_path / "podman"
    path.write_text(FAKE.format(python=sys.executable, failures=failures, error=error))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def calls(podman: Path) -> int:
    return int(podman.with_suffix(".calls").read_text())


def test_a_listing_is_asked_again_when_a_pod_vanished_while_it_listed(tmp_path: Path) -> None:
    podman = fake(tmp_path, failures=2, error="container 4f2a does not exist in database: no such container")
    assert Engine(str(podman), 10).listing("pod", "ps", "--format", "json") == [{"Name": "api-pod"}]
    assert calls(podman) == 3


def test_a_listing_that_keeps_failing_is_one_line_naming_the_command(tmp_path: Path) -> None:
    podman = fake(tmp_path, failures=9, error="no pod with ID 9cf7 found in database: no such pod")
    with pytest.raises(EngineError, match=r"'.*podman pod ps --format json' failed \(exit 125\): Error: no pod with ID 9cf7 found in database: no such pod$"):
        Engine(str(podman), 10).listing("pod", "ps", "--format", "json")
    assert calls(podman) == 3


def test_any_other_failure_is_not_retried(tmp_path: Path) -> None:
    podman = fake(tmp_path, failures=1, error="OCI permission denied")
    with pytest.raises(EngineError, match="OCI permission denied"):
        Engine(str(podman), 10).listing("ps", "--format", "json")
    assert calls(podman) == 1


def test_a_missing_engine_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"cannot run .*/nope \(No such file or directory\): install it"):
        Engine(str(tmp_path / "nope"), 10, install_hint=": install it").run("ps")


RLIMIT = "runc create failed: unable to start container process: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted"


def test_a_sandboxed_host_refusing_rlimits_is_told_the_containers_conf_that_fixes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    podman = fake(tmp_path, failures=1, error=RLIMIT)
    with pytest.raises(
        EngineError, match=r"operation not permitted; this host refuses .*CONTAINERS_CONF.*default_ulimits = \[\].*cgroupfs.*runc.*docs/kube.md"
    ):
        Engine(str(podman), 10).run("kube", "play", "x.yaml")


def test_with_a_containers_conf_set_the_same_failure_is_quoted_without_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERS_CONF", str(tmp_path / "containers.conf"))
    podman = fake(tmp_path, failures=1, error=RLIMIT)
    with pytest.raises(EngineError, match=r"operation not permitted$"):
        Engine(str(podman), 10).run("kube", "play", "x.yaml")


BUSY_RM = """#!{python}
import pathlib, sys
log = pathlib.Path(sys.argv[0]).with_suffix(".log")
with log.open("a") as out:
    out.write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["pod", "rm"]:
    tries = pathlib.Path(sys.argv[0]).with_suffix(".rm")
    n = int(tries.read_text()) + 1 if tries.exists() else 1
    tries.write_text(str(n))
    if n <= {busy}:
        print("Error: unmounting /var/lib/containers/storage/overlay-containers/e251/userdata/shm: device or resource busy", file=sys.stderr)
        sys.exit(125)
"""


@pytest.mark.parametrize(("busy", "removed"), [(2, True), (9, False)])
def test_removing_a_pod_set_whose_mounts_are_still_busy_is_asked_again(tmp_path: Path, busy: int, removed: bool) -> None:
    podman = tmp_path / "podman"
    podman.write_text(BUSY_RM.format(python=sys.executable, busy=busy))
    podman.chmod(podman.stat().st_mode | stat.S_IEXEC)
    pods = Pods(Engine(str(podman), 10), tmp_path / ".staging", "staging")
    if removed:
        pods.remove([{"Id": "9e85"}], timeout=1)
    else:
        with pytest.raises(EngineError, match=r"'.*podman pod rm --force 9e85' failed \(exit 125\): .*device or resource busy$"):
            pods.remove([{"Id": "9e85"}], timeout=1)
    calls = podman.with_suffix(".log").read_text().splitlines()
    assert calls[0] == "pod stop --time 1 9e85"
    assert calls.count("pod rm --force 9e85") == (3 if removed else 4)
