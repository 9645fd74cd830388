"""The embedded local staging target: each service a process on this machine.

:class:`LocalTarget` is its :class:`~pytest_predeploy.targets.base.Target`; the functions below are
the same operations for the command line and for tests. The state layout and its invariants are
described in :mod:`pytest_predeploy.targets.local.target`, the command line in ``__main__``.
"""

from __future__ import annotations

from pathlib import Path

from pytest_predeploy.core.errors import StepError
from pytest_predeploy.targets.base import EXIT_FAILED, Say, TargetError, configured_url, quiet
from pytest_predeploy.targets.base import service_urls as all_service_urls
from pytest_predeploy.targets.local.slots import _log_tail
from pytest_predeploy.targets.local.target import ServiceTarget
from pytest_predeploy.targets.prometheus import PrometheusServer
from pytest_predeploy.targets.releases import ReleaseIdentity
from pytest_predeploy.targets.runlock import StagingLock
from pytest_predeploy.targets.settings import LocalStagingConfig, RollbackConfig, ServiceConfig, TargetSettings

__all__ = [
    "LocalStagingConfig",
    "LocalTarget",
    "RollbackConfig",
    "ServiceConfig",
    "current_release",
    "lock_staging",
    "prometheus_server",
    "service_url",
    "service_urls",
    "stop_all",
]


def staging_root(config: TargetSettings) -> Path:
    """``staging.root``, relative to the config file's folder (also when the section is absent)."""
    return config.base_dir / config.staging.root


def lock_staging(config: TargetSettings, env: str, holder: str) -> StagingLock:
    """Hold ``env``'s staging folder for a whole protocol run (see :mod:`.runlock`); raises
    StagingBusy naming the folder and the run that holds it."""
    lock = StagingLock(staging_root(config) / env)
    lock.acquire(holder)
    return lock


def service_target(config: TargetSettings, env: str, service: str, say: Say = quiet) -> ServiceTarget:
    return ServiceTarget(config.staging, staging_root(config), env, config.service(service), say=say, base_dir=config.base_dir)


def service_urls(config: TargetSettings, env: str) -> dict[str, str]:
    """Base URL of every service as it runs now (``url`` from config, else the local target).

    Raises StepError naming each service that is not running."""
    return all_service_urls(LocalTarget(config), config, env, f"no live process for its current release under {staging_root(config) / env}")


def service_url(config: TargetSettings, env: str, service: str) -> str | None:
    """Base URL of one service (``url`` from config, else its live local process), or None."""
    return configured_url(config, service) or service_target(config, env, service).base_url()


def prometheus_server(config: TargetSettings, env: str) -> PrometheusServer:
    """The environment's Prometheus server (``staging.prometheus``), running or not; its
    configuration, data and log live in ``<staging.root>/<env>/prometheus``."""
    return PrometheusServer(staging_root(config) / env / "prometheus")


def current_release(config: TargetSettings, env: str, service: str) -> str | None:
    """The release ``current`` points to for ``service`` on the local target (None: nothing deployed)."""
    return service_target(config, env, service).current_release()


def running_release(config: TargetSettings, env: str, service: str) -> str | None:
    """The release of the live process the local target started that serves ``current`` (None:
    none does, or the service is not on the local target)."""
    if config.service(service).url:
        return None
    return service_target(config, env, service).running_release()


def release_identity(config: TargetSettings, env: str, service: str, tag: str) -> ReleaseIdentity | None:
    """What the local target built and deployed for ``tag`` of ``service`` (None: never built
    here, or the service is not on the local target)."""
    if config.service(service).url:
        return None
    return service_target(config, env, service).identity(tag)


def deployed_name(config: TargetSettings, env: str, service: str, tag: str) -> str:
    """The name ``tag`` runs under on the local target: the tag, or its dirty build's name."""
    if config.service(service).url:
        return tag
    return service_target(config, env, service).folder_for(tag) or tag


def log_tail(config: TargetSettings, env: str, service: str, lines: int) -> tuple[str, list[str]] | None:
    """The log of the process serving ``service`` now and its last ``lines`` lines, or None."""
    if config.service(service).url:
        return None
    target = service_target(config, env, service)
    slot = target.active_slot()
    record = target.record(slot) if slot else None
    if record is None:
        return None
    return record.log, [line[4:] for line in _log_tail(Path(record.log), 0, lines).splitlines()]


def stop_all(config: TargetSettings, env: str) -> list[str]:
    """Stop every local staging process of ``env``, including services no longer in the config.

    Returns one line per process that was running; TargetError naming what is still running
    after every attempt to stop it, if anything is (once everything was tried)."""
    root = staging_root(config) / env
    services = {service.name: service for service in config.services}
    names = set(services)
    if root.is_dir():  # other steps keep their own folders here (test data ...): only those with processes
        names |= {entry.name for entry in root.iterdir() if (entry / "run").is_dir()}
    stopped: list[str] = []
    problems: list[str] = []
    for name in sorted(names):
        service = services.get(name) or ServiceConfig.model_construct(name=name)
        try:
            stopped += ServiceTarget(config.staging, staging_root(config), env, service, say=quiet, base_dir=config.base_dir).stop_all()
        except TargetError as exc:
            problems.append(str(exc))
    try:
        if prometheus_server(config, env).stop(config.staging.stop_timeout.total_seconds()) != "not running":
            stopped.append(f"prometheus ({staging_root(config) / env / 'prometheus'})")
    except StepError as exc:
        problems.append(str(exc))
    if problems:
        # After trying everything: what is still running is said, never listed as stopped.
        raise TargetError(EXIT_FAILED, "; ".join(problems))
    return stopped


class LocalTarget:
    """The local target as the protocol's steps see it (:class:`~pytest_predeploy.targets.base.Target`)."""

    kind = "local"

    def __init__(self, config: TargetSettings) -> None:
        self.config = config

    def service_url(self, env: str, service: str) -> str | None:
        return service_url(self.config, env, service)

    def current_release(self, env: str, service: str) -> str | None:
        return current_release(self.config, env, service)

    def running_release(self, env: str, service: str) -> str | None:
        return running_release(self.config, env, service)

    def release_identity(self, env: str, service: str, tag: str) -> ReleaseIdentity | None:
        return release_identity(self.config, env, service, tag)

    def deployed_name(self, env: str, service: str, tag: str) -> str:
        return deployed_name(self.config, env, service, tag)

    def lock(self, env: str, holder: str) -> StagingLock:
        return lock_staging(self.config, env, holder)

    def stop_all(self, env: str) -> list[str]:
        return stop_all(self.config, env)

    def prometheus(self, env: str) -> PrometheusServer | None:
        return prometheus_server(self.config, env)

    def log_tail(self, env: str, service: str, lines: int) -> tuple[str, list[str]] | None:
        return log_tail(self.config, env, service, lines)
