"""Builds small security-audit setups on disk: a predeploy.yaml with a security section, a
site-packages folder of distribution metadata, and runs the audit over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.security import SecurityReport, run_security_audit

ALL_SCANNERS = ("bandit", "secrets", "osv", "pip_audit", "licenses", "sbom")


def only(*enabled: str) -> dict[str, Any]:
    """Scanner options with every scanner but ``enabled`` switched off (a focused, fast audit)."""
    return {name: {"enabled": name in enabled} for name in ALL_SCANNERS}


def make_config(root: Path, security: dict[str, Any]) -> ProjectConfig:
    data = {
        "version": 1,
        "project": "audit-test",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "security": security,
    }
    path = root / "predeploy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def site_packages(root: Path, dists: dict[str, tuple[str, list[str]]]) -> Path:
    """A site-packages folder holding only distribution metadata: name -> (version, header lines)."""
    folder = root / "site-packages"
    for name, (version, headers) in dists.items():
        info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", *headers]) + "\n")
    return folder


def audit(config: ProjectConfig, root: Path, **kwargs: Any) -> SecurityReport:
    return run_security_audit(config, "staging", "v1.2", root / "out" / "security-compliance-report.json", **kwargs)


def scanner(report: SecurityReport, name: str) -> Any:
    return next(s for s in report.scanners if s.name == name)
