"""Gate 4's sections of ``predeploy.yaml`` (``package``, ``readiness``).

Apart from the code that seals the package and judges the sign-offs (:mod:`.package`,
:mod:`.signoff`, which import them from here): loading the configuration, which every protocol
run does first, then imports only these models, not the signing and packaging code.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.fields import ConfigPath, Duration, StrictModel, identity_key, is_blank, parse_positive_duration

#: Where `predeploy init` writes the signers file and where the config looks by default.
DEFAULT_SIGNERS_FILE = "predeploy/signers.yaml"

#: Artifacts Gate 4's "package can be compiled" test requires before sealing.
REQUIRED_ARTIFACTS = names.REQUIRED_ARTIFACTS


class PackageConfig(StrictModel):
    """Settings of the go/no-go package (Gate 4)."""

    required: list[str] = Field(
        default_factory=lambda: list(REQUIRED_ARTIFACTS),
        description="Artifacts (paths relative to the artifacts dir) that must exist before the package is sealed.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns (relative POSIX paths, e.g. 'scratch/*') of files left out of the package, besides the package itself, readiness-approval.json, lock files, dotfiles and history/.",
    )
    compression_level: int = Field(1, ge=1, le=9, description="zlib level for entries that compress (1 is fastest; 9 smallest).")


class ReadinessConfig(StrictModel):
    """Readiness review: who must sign off the package, and the deployment checklist's owners."""

    required_roles: list[str] = Field(
        default_factory=lambda: ["release-manager"],
        description="Roles that must each record a 'go' on the current package digest before Gate 4 passes (e.g. release-manager, qa-lead). Must not be empty unless allow_no_signoff is true.",
    )
    allow_no_signoff: bool = Field(
        False,
        description="Let Gate 4 pass with no sign-off at all (an empty required_roles list). Off by default: an empty list would complete the protocol with nobody reviewing the package. When on, Gate 4 says so in its summary.",
    )
    signers: ConfigPath = Field(
        Path(DEFAULT_SIGNERS_FILE),
        description="The signers file: each identity, its OpenSSH ed25519 public keys and the roles it may sign (relative to the config file). A sign-off counts only when its signature verifies with a key listed there for that identity and role. Gate 4 uses the file as committed at HEAD, unedited in the working tree, with the sha256 sealed in the package's manifest: commit a change and rerun the protocol for it to count.",
    )
    forbid_self_approval: bool = Field(
        True,
        description="A sign-off by the person who ran the rehearsal does not count. The operator is the actor a CI platform names (GitHub Actions' $GITHUB_ACTOR, GitLab's $GITLAB_USER_LOGIN, ...; a job cannot override it), else $PREDEPLOY_OPERATOR, else $USER (self-declared), as recorded by the run; it matches a signer's identity or one of its aliases. Turning it off is shown in Gate 4's summary.",
    )
    allow_one_signer_many_roles: bool = Field(
        False,
        description="Let one identity satisfy several required roles. Off by default: two roles exist so that two people look at the package. Turning it on is shown in Gate 4's summary.",
    )
    allow_unsigned: bool = Field(
        False,
        description="Count sign-offs recorded without a signature (predeploy approve without --key), whose approver is free text anyone with write access to the artifacts folder can write. For migrating only; shown in Gate 4's summary.",
    )
    signoff_validity: Duration | None = Field(
        timedelta(days=7), description="How long a sign-off stays valid when `predeploy approve` is given no --expires (null: no expiry)."
    )
    interactive_role: str | None = Field(None, description="Role recorded by the interactive [READINESS REVIEW] prompt (default: the first required role).")
    checklist_owners: dict[str, str] = Field(
        default_factory=dict,
        description="Owner of each deployment-checklist area: deploy, rollback, smoke, security, parity, observability, communication; 'default' covers the rest.",
    )
    slow_step: Duration = Field(timedelta(seconds=60), description="A rehearsed deploy or rollback slower than this becomes a deployment-checklist item.")

    @field_validator("signoff_validity")
    @classmethod
    def _positive_validity(cls, value: timedelta | None) -> timedelta | None:
        # A zero validity records sign-offs that are expired the moment they are made.
        return parse_positive_duration(value) if value is not None else None

    @model_validator(mode="after")
    def _someone_signs(self) -> ReadinessConfig:
        # An empty list is the easiest way to configure Gate 4 into a GO that nobody reviewed.
        if not self.required_roles and not self.allow_no_signoff:
            raise ValueError(
                "readiness.required_roles is empty, so nobody would sign off the package; list the roles that must sign, or set readiness.allow_no_signoff: true to release without a sign-off"
            )
        roles = [identity_key(role) for role in self.required_roles]
        repeated = sorted({role for role in self.required_roles if roles.count(identity_key(role)) > 1})
        if repeated:
            raise ValueError(
                f"readiness.required_roles lists {', '.join(repeated)} more than once; each role is one sign-off by a different person, so list it once"
            )
        if any(is_blank(role) for role in self.required_roles):
            raise ValueError("readiness.required_roles has a blank role (or one of only invisible characters); name each role")
        return self
