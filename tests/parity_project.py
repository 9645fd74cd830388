"""Builds small parity setups on disk: a predeploy.yaml naming real baseline files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.config import ProjectConfig, load_config


def write_config(root: Path, staging: dict[str, Any], production: dict[str, Any], parity: dict[str, Any] | None = None) -> ProjectConfig:
    """``staging``/``production``: environment sections (paths relative to ``root``)."""
    data = {
        "version": 1,
        "project": "parity-test",
        "environments": {"staging": staging, "production": production},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "parity": parity or {},
    }
    path = root / "predeploy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path)


def baselines(
    root: Path, staging: str, production: str, name: str = "infra.yaml", parity: dict[str, Any] | None = None, section: str = "infrastructure"
) -> ProjectConfig:
    """One file per environment with the given text."""
    for env, text in (("staging", staging), ("production", production)):
        (root / env).mkdir(exist_ok=True)
        (root / env / name).write_text(text, encoding="utf-8")
    return write_config(root, {section: [f"staging/{name}"]}, {section: [f"production/{name}"]}, parity)
