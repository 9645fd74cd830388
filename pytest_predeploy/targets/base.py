"""What the protocol's steps need of a staging target.

The deployment rehearsal, the rollback rehearsal, the smoke suites and the observability baseline
reach staging only through :class:`Target`: where a service answers, which release serves, what was
built for a release, and how to hold and empty the environment. Deploying and rolling back are the
step scripts' job (``steps.deploy`` / ``steps.rollback``); the steps then verify the result through
this protocol, so the same gates run on any target.

Implementations: :class:`pytest_predeploy.targets.local.LocalTarget` (processes on this machine)
and :class:`pytest_predeploy.targets.kube.KubeTarget` (Kubernetes manifests on podman or a
cluster). :func:`pytest_predeploy.targets.choose.target_for` picks one from ``staging.target``.
"""

from __future__ import annotations

from typing import Protocol

from pytest_predeploy.core.errors import StepError
from pytest_predeploy.targets.prometheus import PrometheusServer
from pytest_predeploy.targets.releases import ReleaseIdentity
from pytest_predeploy.targets.runlock import StagingLock
from pytest_predeploy.targets.settings import TargetSettings


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
