"""Starting and stopping one slot's process of a service, and waiting for its health check."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pytest_predeploy.core import template
from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.template import TemplateError
from pytest_predeploy.targets import processes
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, TargetError, free_port
from pytest_predeploy.targets.local.layout import ProcessRecord, ServiceLayout, checkpoint
from pytest_predeploy.targets.probe import local_get_json, other_service


def stop_slot(layout: ServiceLayout, slot: str) -> str | None:
    """Stop the process in ``slot`` and what it started; returns what was stopped, for a line
    after 'stopped <service> ' (None: nothing ran). TargetError, with the slot's record kept for a later stop, when processes of it are
    still running after every attempt."""
    record = layout.record(slot)
    line = None
    if record is not None:
        started = time.monotonic()
        stopped = processes.stop(record.pid, record.start_ticks, layout.settings.stop_timeout.total_seconds(), record.token)
        name = f"{record.release} ({slot}, pid {record.pid})"
        if stopped.survivors:
            raise TargetError(
                EXIT_FAILED,
                f"{layout.service.name}: could not stop {name}: {stopped.still_running()}; stop them by hand, "
                f"then run the stop again (its record {layout.run / (slot + '.json')} is kept)",
            )
        line = stopped.what(name)
        if line is not None:
            layout.say(f"{stopped.verb} {line} in {time.monotonic() - started:.2f}s")
    for suffix in (".json", ".port"):
        (layout.run / f"{slot}{suffix}").unlink(missing_ok=True)
    return line


def start_slot(layout: ServiceLayout, slot: str, tag: str) -> ProcessRecord:
    """Start the release in ``slot`` and wait for its health check; TargetError when it fails."""
    layout.run.mkdir(parents=True, exist_ok=True)
    port_file = layout.run / f"{slot}.port"
    port_file.unlink(missing_ok=True)
    manifest = layout.manifest(tag)
    python = str(layout.releases / tag / manifest.identity.python) if manifest is not None and manifest.identity.python else sys.executable
    port = layout.fixed_port(slot)
    if port == 0 and "{port_file}" not in layout.service.command:
        # The service takes its port as {port} and says nothing back: choose a free one for
        # it and record it where a service writing its own port would have.
        port = free_port()
        write_text_atomic(port_file, str(port))
    fields = {"python": python, "service": layout.service.name, "release": tag, "port": str(port), "port_file": str(port_file)}
    try:
        argv = template.fill_command(layout.service.command, fields, f"services[{layout.service.name}].command")
    except TemplateError as exc:
        raise TargetError(EXIT_USAGE, f"{exc}; nothing was started") from None
    env = {name: template.fill_known(value, fields) for name, value in layout.service.env.items()}
    log = layout.dir / "logs" / f"{slot}.log"
    offset = log.stat().st_size if log.exists() else 0
    cwd = layout.releases / tag
    started = time.monotonic()
    spawned = processes.spawn(argv, cwd=cwd, log=log, env=processes.service_environment(env))
    record = ProcessRecord(pid=spawned.pid, start_ticks=spawned.ticks, token=spawned.token, release=tag, slot=slot, started_at=utcnow(), log=str(log))
    write_text_atomic(layout.run / f"{slot}.json", record.model_dump_json(indent=2))
    layout.say(f"started {tag} ({slot}, pid {spawned.pid}), log {log}")
    checkpoint("started")
    problem = _wait_healthy(layout, record, slot)
    if problem is not None:
        stop_slot(layout, slot)  # first: its log writer has then written the service's last words
        tail = _log_tail(log, offset)
        raise TargetError(EXIT_FAILED, f"{layout.service.name}: release {tag} {problem}" + (f"; last lines of {log}:\n{tail}" if tail else ""))
    write_text_atomic(layout.run / f"{slot}.json", record.model_dump_json(indent=2))
    layout.say(f"healthy on port {record.port} after {time.monotonic() - started:.2f}s")
    checkpoint("healthy")
    return record


def _wait_healthy(layout: ServiceLayout, record: ProcessRecord, slot: str) -> str | None:
    """Fills in ``record.port``; returns why the process is not healthy by its deadline, or None."""
    timeout = layout.service.health_timeout.total_seconds()
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    # Poll often at first (most services are up in a fraction of a second), then every 0.1s:
    # a probe costs well under a millisecond of CPU on either side (a plain socket, not
    # urllib), so ten services warming up at once spend ~2% of a core on it, and a service
    # is seen healthy at most 0.1s after it is.
    pause = 0.02
    while True:
        if not processes.is_running(record.pid, record.start_ticks):
            status = processes.exit_status(record.pid)
            return "crashed at start" + (f" (exit status {status})" if status is not None else "")
        if record.port is None:
            record.port = layout.read_port(slot)
        if record.port is not None:
            answer = local_get_json(record.port, layout.service.health_path, timeout=1.0)
            answering = other_service(answer, layout.service.name)
            if answering is not None:
                # Our process cannot have bound the port: someone else answers on it.
                return f"is not what answers on port {record.port}: service {answering!r} does (do two services share a port?)"
            if answer.status == 200:
                return layout.foreign_listener(record)
            last = answer.describe()
        if time.monotonic() >= deadline:
            return f"missed its health deadline of {timeout:g}s (last answer: {last})"
        time.sleep(pause)
        pause = min(pause * 1.5, 0.1)


def _log_tail(log: Path, offset: int, lines: int = 15) -> str:
    """The last ``lines`` lines the service wrote since ``offset``, each indented so that the
    caller's reader sees them as the continuation of one message (read from the end: a crash
    loop can leave a large log)."""
    try:
        with open(log, "rb") as handle:
            end = handle.seek(0, 2)
            handle.seek(max(offset if offset <= end else 0, end - 64 * 1024))  # past the end: the log was rotated
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:] if line.strip())
