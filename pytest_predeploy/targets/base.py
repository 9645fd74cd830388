"""The staging target contract: what the protocol's steps need of a target, and what every
target shares (its errors, exit statuses, tag and port rules, and the rollback refusals).

The deployment rehearsal, the rollback rehearsal, the smoke suites and the observability baseline
reach staging only through :class:`Target`: where a service answers, which release serves, what was
built for a release, and how to hold and empty the environment. Deploying and rolling back are the
step scripts' job (``steps.deploy`` / ``steps.rollback``); the steps then verify the result through
this protocol, so the same gates run on any target.

Implementations: :class:`pytest_predeploy.targets.local.LocalTarget` (processes on this machine)
and :class:`pytest_predeploy.targets.kube.KubeTarget` (Kubernetes manifests on podman or a
cluster). :func:`pytest_predeploy.targets.choose.target_for` picks one from ``staging.target``.

The implementations import this package and never each other; this package imports none of them
(``tests/test_architecture.py`` fails on a package-level cycle), so a new target is one new
package plus the two edits docs/staging.md names.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Protocol

from pytest_predeploy.core.errors import StepError
from pytest_predeploy.targets.probe import ReleaseCheck, check_release
from pytest_predeploy.targets.prometheus import PrometheusServer
from pytest_predeploy.targets.releases import ReleaseIdentity
from pytest_predeploy.targets.runlock import StagingLock
from pytest_predeploy.targets.settings import SERVICE_NAME, TargetSettings, check_release_tag

# Exit statuses of every target's deploy and rollback commands (scripts/*.sh and the README).
EXIT_OK = 0
EXIT_FAILED = 1  # the service did not start or missed its health deadline
EXIT_USAGE = 2  # bad arguments or configuration; nothing was changed
EXIT_UNKNOWN_RELEASE = 3  # rollback target was never deployed here; nothing was changed
EXIT_NOTHING_TO_ROLL_BACK = 4  # the service has a single release; nothing was changed
EXIT_ALREADY_CURRENT = 5  # the rollback target already runs, healthy; nothing was changed

#: How a target reports what it does, one line at a time (the command line prints, the library is quiet).
Say = Callable[[str], None]


class TargetError(StepError):
    """A deploy or rollback that did not happen or did not succeed; carries the command's exit status."""

    def __init__(self, exit_status: int, message: str) -> None:
        self.exit_status = exit_status
        super().__init__(message)


def quiet(line: str) -> None:
    """Library calls stay silent; the command line prints what the target does."""


def print_line(line: str) -> None:
    print(f"[staging] {line}", flush=True)


def check_tag(tag: str) -> str:
    """``tag`` when it can name a release (a folder, an image tag); TargetError(EXIT_USAGE) otherwise."""
    try:
        return check_release_tag(tag)
    except ValueError as exc:
        raise TargetError(EXIT_USAGE, str(exc)) from None


def check_environment(env: str) -> str:
    """``env`` when it can name a folder; TargetError(EXIT_USAGE) otherwise."""
    if not SERVICE_NAME.match(env):
        raise TargetError(EXIT_USAGE, f"environment name {env!r} must be letters, digits, '.', '_' or '-'")
    return env


def free_port() -> int:
    """A port nobody listens on now (the kernel's choice); the service binds it a moment later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_rollback(service: str, env: str, tag: str, releases: list[str], serving: str | None) -> None:
    """The rollback refusals every target makes, before it changes anything: ``tag`` (the name it
    was deployed under) was never deployed (3), is the only release (4), or already serves,
    healthy, where ``serving`` says (5)."""
    if tag not in releases:
        raise TargetError(
            EXIT_UNKNOWN_RELEASE,
            f"{service}: cannot roll back to {tag}: it was never deployed to {env} (releases here: {', '.join(releases) or 'none'}); nothing was changed",
        )
    if len(releases) == 1:
        raise TargetError(EXIT_NOTHING_TO_ROLL_BACK, f"{service}: {tag} is the only release on {env}; there is nothing to roll back from; nothing was changed")
    if serving is not None:
        raise TargetError(EXIT_ALREADY_CURRENT, f"{service}: {tag} is already the current release and healthy ({serving}); nothing was changed")


class Target(Protocol):
    """A staging environment the rehearsal deploys to (one object serves every environment name)."""

    #: ``staging.target``: ``local`` or ``kube``.
    kind: str

    def service_url(self, env: str, service: str) -> str | None:
        """Base URL of what serves ``service`` now (``url`` from config wins), None: not running."""
        ...

    def current_release(self, env: str, service: str) -> str | None:
        """The release that serves ``service`` now; None: nothing deployed."""
        ...

    def running_release(self, env: str, service: str) -> str | None:
        """The release of what the target itself started and sees serving now (the live process
        it launched from the release's folder, the running pod set of the release's image), from
        its own record; None: nothing it started serves. The identity check of every deploy and
        rollback (``services[].version_path`` adds the service's own word to it)."""
        ...

    def release_identity(self, env: str, service: str, tag: str) -> ReleaseIdentity | None:
        """What the target built and deployed for ``tag`` (None: never built there)."""
        ...

    def deployed_name(self, env: str, service: str, tag: str) -> str:
        """The name ``tag`` runs under: the tag, or its dirty build's name."""
        ...

    def lock(self, env: str, holder: str) -> StagingLock:
        """Hold ``env`` for a whole protocol run; raises StagingBusy naming the run that holds it."""
        ...

    def stop_all(self, env: str) -> list[str]:
        """Stop everything the target runs for ``env``; one line per thing that was running."""
        ...

    def prometheus(self, env: str) -> PrometheusServer | None:
        """The Prometheus server the target runs beside the services, None: it runs none."""
        ...

    def log_tail(self, env: str, service: str, lines: int) -> tuple[str, list[str]] | None:
        """Where the output of what serves ``service`` now goes, and its last ``lines`` lines
        (unredacted: the caller redacts); None when the target keeps none it can read."""
        ...


def configured_url(settings: TargetSettings, service: str) -> str | None:
    """``services[].url``: the service runs elsewhere and answers there, on every target."""
    url = settings.service(service).url
    return url.rstrip("/") if url else None


def service_urls(target: Target, settings: TargetSettings, env: str, root_hint: str) -> dict[str, str]:
    """Base URL of every configured service as it runs now; raises StepError naming each service
    that is not running (``root_hint`` says where the target looked)."""
    urls: dict[str, str] = {}
    missing: list[str] = []
    for service in settings.services:
        url = target.service_url(env, service.name)
        if url is None:
            missing.append(service.name)
        else:
            urls[service.name] = url
    if missing:
        raise StepError(
            f"service {', '.join(missing)} is not running on {env} ({root_hint}); "
            f"deploy it with: bash scripts/deploy_backend.sh --env {env} --release TAG --service NAME"
        )
    return urls


def check_serving(target: Target, settings: TargetSettings, env: str, service: str, expected: str, url: str) -> ReleaseCheck:
    """Whether ``service``, answering at ``url``, is healthy and serves ``expected`` (the name it
    was deployed under): by the target's own record of what it started, and on the service's
    ``version_path`` when one is set. A service with ``url`` runs on no target: what it reports
    is all there is to go by (see ``Service.identity_path``)."""
    config = settings.service(service)
    check = check_release(url, expected, config.health_path, service, config.identity_path())
    if config.url:
        return check
    running = target.running_release(env, service)
    problems = list(check.problems)
    if running != expected:
        problems.insert(
            0, f"the {target.kind} target runs {running or 'nothing it started'} of {service} (its own record of what it started), expected {expected}"
        )
    return ReleaseCheck(check.healthy, check.reported_release or running, problems)
