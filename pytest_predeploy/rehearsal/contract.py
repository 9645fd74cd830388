"""The API contract check (part of Gate 2): what the candidate stopped offering that the
previous release offered.

A smoke suite only proves the endpoints it calls. A v2 that dropped an endpoint nobody's test
calls passes it (coverage counts the endpoints the candidate declares, not those it lost), so the
rehearsal also compares the candidate's contract with the previous release's, as each served it
on staging: its OpenAPI document (``services[].endpoints.openapi`` when it is a path the service
serves) or its route list (``routes_path``). The previous release's is read just before the
switch to the candidate (staging runs it then), the candidate's once it is deployed. The rules
are oasdiff's (:mod:`pytest_predeploy.rehearsal.contractdiff`); a breaking change fails Gate 2
unless a waiver with an owner and an expiry covers it (``contract.waivers``); additions are
listed.

A service that serves no contract (its endpoints are a file of this repository or a list in the
configuration, the same for every release) is asked, on each release, which of those declared
operations it answers: an ``OPTIONS`` request per path (no side effects; path parameters filled
with ``1``), where 404 or 410, or an ``Allow`` header without the method, means the release does
not serve it. A service that answers ``OPTIONS`` with neither (e.g. 501) shows no change, never a
false one. A served contract that cannot be read is no data, which fails the gate.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from pytest_predeploy.core.artifacts import ArtifactModel
from pytest_predeploy.core.errors import StepError
from pytest_predeploy.core.fields import StrictModel, utcnow
from pytest_predeploy.rehearsal.contractdiff import Change, Kind, compare_documents, compare_routes
from pytest_predeploy.rehearsal.endpoints import EndpointsUnreadable, declared_endpoints
from pytest_predeploy.rehearsal.openapi import OpenApiError, Route, fetch_document, routes_from_document
from pytest_predeploy.rehearsal.settings import ContractConfig as ContractConfig
from pytest_predeploy.rehearsal.settings import ContractWaiver as ContractWaiver
from pytest_predeploy.rehearsal.smoke import SmokeProject
from pytest_predeploy.targets.base import service_urls
from pytest_predeploy.targets.choose import target_for
from pytest_predeploy.targets.settings import EndpointsConfig

STEP = "api-contract"


# --- the artifact -------------------------------------------------------------------------


class ContractChange(StrictModel):
    """One difference between the two contracts."""

    id: str = Field(description="oasdiff's rule id (api-removed-without-deprecation, new-required-request-parameter, ...).")
    kind: Kind = Field(description="breaking, addition or info.")
    operation: str = Field(description="The operation, e.g. 'GET /items/{item_id}'.")
    detail: str = Field(description="What changed, in a sentence.")
    waiver: str | None = Field(None, description="The unexpired waiver that accepts it, if any.")
    waiver_owner: str | None = Field(None, description="That waiver's owner.")
    expired_waiver: str | None = Field(None, description="A waiver that matched but had expired (the change blocks again).")
    blocking: bool = Field(description="True when it fails Gate 2: a breaking change without an unexpired waiver.")


ContractStatus = Literal["compared", "not-compared", "no-data"]


class ServiceContract(StrictModel):
    """One service's contracts and how they differ."""

    service: str = Field(description="Service name.")
    status: ContractStatus = Field(
        description="compared; not-compared (no previous release ran before the switch, see detail); no-data (a contract could not be read, or the candidate was not running)."
    )
    source: str = Field(description="Where the contract was read (an OpenAPI document the service serves, its route list ...).")
    detail: str = Field("", description="Why it was not compared, or could not be read.")
    operations_before: int = Field(0, description="Operations of the previous release.")
    operations_after: int = Field(0, description="Operations of the candidate.")
    changes: list[ContractChange] = Field(default_factory=list, description="Every difference, breaking ones first.")


class ApiContractReport(ArtifactModel):
    """api-contract-report.json: the candidate's API contract against the previous release's."""

    step: str = Field(STEP, description="The protocol step that produced the artifact.")
    environment: str = Field(description="Where both releases served their contracts.")
    previous_release: str | None = Field(description="The release compared against; none when no previous release is known.")
    enabled: bool = Field(True, description="contract.enabled.")
    services: list[ServiceContract] = Field(default_factory=list, description="Each service's comparison.")

    def summary_line(self) -> str:
        if not self.enabled:
            return "API contract: not compared (contract.enabled is false)"
        changes = [c for s in self.services for c in s.changes]
        breaking = [c for c in changes if c.kind == "breaking"]
        blocking = sum(1 for c in breaking if c.blocking)
        added = sum(1 for c in changes if c.kind == "addition")
        compared = sum(1 for s in self.services if s.status == "compared")
        return (
            f"API contract vs {self.previous_release}: {compared}/{len(self.services)} services compared, "
            f"{len(breaking)} breaking ({blocking} blocking, {len(breaking) - blocking} waived), {added} added"
        )


def contract_problems(report: ApiContractReport) -> list[str]:
    """One sentence per reason Gate 2 must fail: a served contract that could not be read (no
    data), and every breaking change no unexpired waiver accepts."""
    if not report.enabled:
        return []
    problems = []
    for service in report.services:
        if service.status == "no-data":
            problems.append(f"{service.service}: API contract: no data ({service.detail})")
        for change in service.changes:
            if change.blocking:
                expired = f"; waiver {change.expired_waiver} has expired" if change.expired_waiver else ""
                problems.append(
                    f"{service.service}: {change.operation}: {change.detail} [{change.id}]{expired}; "
                    f"restore it, or accept the break with a contract.waivers entry (owner, expiry)"
                )
    return problems


# --- reading and comparing ---------------------------------------------------------------


@dataclass
class Contract:
    """What one release served as its contract."""

    source: str
    document: dict[str, Any] | None = None
    routes: list[Route] = field(default_factory=list)
    #: Why a served contract could not be read.
    unreadable: str = ""
    #: Why nothing served it (the service was not running): nothing to compare against, not a failure.
    absent: str = ""


_PARAMETER = re.compile(r"\{[^/{}]+\}")


def _answers(base: str, route: Route, timeout: float) -> bool:
    """Whether the release serves ``route``, asked with OPTIONS (see the module documentation)."""
    method, path = route
    request = urllib.request.Request(base + _PARAMETER.sub("1", path), method="OPTIONS")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, allow = int(answer.status), answer.headers.get("Allow")
    except urllib.error.HTTPError as exc:
        status, allow = int(exc.code), exc.headers.get("Allow")
    if status in (404, 410):
        return False
    allowed = {item.strip().upper() for item in allow.split(",")} if allow and status < 300 else None
    return allowed is None or method in allowed


def read_contract(config: EndpointsConfig, base_url: str, timeout: float, default_routes_path: str, base_dir: Path = Path(".")) -> Contract:
    """The contract the release running at ``base_url`` serves; ``base_dir`` is where a
    repository OpenAPI file is read from (the config file's folder)."""
    base = base_url.rstrip("/")
    if config.openapi is not None and config.openapi.startswith("/"):
        source = f"OpenAPI document {config.openapi} served by the release"
        try:
            document = fetch_document(base + config.openapi, timeout)
            return Contract(source, document=document, routes=routes_from_document(document, config.openapi))
        except OpenApiError as exc:
            return Contract(source, unreadable=str(exc))
    try:
        routes, source = declared_endpoints(config, base, base_dir, timeout, default_routes_path)
    except EndpointsUnreadable as exc:
        return Contract("route list" if config.openapi is None else f"OpenAPI document {config.openapi}", unreadable=str(exc))
    if source.startswith("route list"):
        return Contract(f"{source} served by the release", routes=routes)
    try:
        answered = [route for route in routes if _answers(base, route, timeout)]
    except (OSError, ValueError) as exc:
        return Contract(f"{source}, asked with OPTIONS", unreadable=f"{base} could not be asked ({exc})")
    return Contract(f"{source}, asked with OPTIONS", routes=answered)


def compare_contracts(
    service: str, before: Contract | None, after: Contract, waivers: list[ContractWaiver], now: datetime, previous: str | None = None
) -> ServiceContract:
    """One service's comparison; ``before`` is None when the previous release's was not read."""
    if after.unreadable or after.absent:
        return ServiceContract(service=service, status="no-data", source=after.source, detail=f"candidate: {after.unreadable or after.absent}")
    if previous is None:
        return ServiceContract(service=service, status="not-compared", source=after.source, detail="no previous release is known: nothing to compare with")
    if before is None:
        # Known, yet not read before the switch: never a silent pass.
        return ServiceContract(service=service, status="no-data", source=after.source, detail=f"the contract of {previous} was not read before the switch")
    if before.absent:
        return ServiceContract(
            service=service,
            status="not-compared",
            source=after.source,
            detail=f"the previous release {previous} was not running before the switch: {before.absent}",
        )
    if before.unreadable:
        return ServiceContract(service=service, status="no-data", source=after.source, detail=f"previous release: {before.unreadable}")
    if before.document is not None and after.document is not None:
        changes = compare_documents(before.document, after.document, after.source)
    else:
        changes = compare_routes(before.routes, after.routes)
    judged = [_judge(service, change, waivers, now) for change in changes]
    judged.sort(key=lambda c: (not c.blocking, c.kind != "breaking", c.operation, c.id))
    return ServiceContract(
        service=service, status="compared", source=after.source, operations_before=len(before.routes), operations_after=len(after.routes), changes=judged
    )


def _judge(service: str, change: Change, waivers: list[ContractWaiver], now: datetime) -> ContractChange:
    matching = [w for w in waivers if w.covers(service, change)] if change.kind == "breaking" else []
    active = next((w for w in matching if w.expires_at > now), None)
    expired = next((w for w in matching if w.expires_at <= now), None) if active is None else None
    return ContractChange(
        id=change.id,
        kind=change.kind,
        operation=change.operation,
        detail=change.detail,
        waiver=active.id if active else None,
        waiver_owner=active.owner if active else None,
        expired_waiver=expired.id if expired else None,
        blocking=change.kind == "breaking" and active is None,
    )


def contract_report(
    config: ContractConfig,
    release: str,
    env: str,
    previous_release: str | None,
    before: dict[str, Contract],
    after: dict[str, Contract],
    now: datetime | None = None,
) -> ApiContractReport:
    """The report over every service the candidate's contracts were read for."""
    now = now or utcnow()
    report = ApiContractReport(release=release, environment=env, previous_release=previous_release, enabled=config.enabled)
    if config.enabled:
        report.services = [compare_contracts(name, before.get(name), after[name], config.waivers, now, previous_release) for name in sorted(after)]
    return report


class ContractProject(SmokeProject, Protocol):
    """What the check needs of the project's configuration: the services, where they run, and
    this section."""

    @property
    def contract(self) -> ContractConfig: ...


def read_contracts(config: ContractProject, env: str) -> dict[str, Contract]:
    """Every service's contract as the release now running on ``env`` serves it."""
    try:
        urls = service_urls(target_for(config), config, env, f"nothing answers for it on the {config.staging.target} staging target")
    except StepError as exc:
        return {service.name: Contract("(not running)", absent=str(exc)) for service in config.services}
    timeout = config.observability.scrape_timeout.total_seconds()
    base_dir = config.path.parent
    return {service.name: read_contract(service.endpoints, urls[service.name], timeout, config.smoke.routes_path, base_dir) for service in config.services}
