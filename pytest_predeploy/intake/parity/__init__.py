"""Staging parity (Protocol 10, step 1.2): compare staging's infrastructure, configuration,
feature flags and secrets with the production baseline and classify every difference.

Each environment declares its state as files (YAML, JSON, TOML, ``.env``; several per section,
merged in order) and optionally a ``capture`` command whose stdout is the live state, so parity
compares what runs and not only what is declared. The three sections become the top of one tree
(``infrastructure.*``, ``configuration.*``, ``flags.*``); rules, ignores and waivers address it by
path glob. Secrets are compared by HMAC-SHA256 under a random key that lives only in this process:
no value, hash or length of a secret is ever written.

Speed matters because baselines can be large (tens of MB of manifests): parsing is the floor, so YAML is
read with libyaml, its events built straight into values, and the comparison walks both trees once.

The package, by job: ``paths`` (paths and globs), ``config`` (the parity section and environment
inputs), ``inputs`` (readers), ``yamlread`` (YAML events to values), ``diff`` (the differ), ``classify`` (policy, severity, secrets,
redaction), ``report`` (report models and text), ``compare`` (the step itself). The names below
are what the rest of pytest_predeploy, the scripts and the tests use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each name is imported from its module when first asked for, not with the package: loading the
# configuration needs only ``config`` (and every submodule import runs this file first), while the
# differ, the readers and the report are some 40 kB of source a run compiles only when it compares
# (PYTHONDONTWRITEBYTECODE). Type checkers read the imports below.
if TYPE_CHECKING:
    from pytest_predeploy.intake.parity.classify import is_missing, required_flag_states
    from pytest_predeploy.intake.parity.compare import compare_environments, compare_trees
    from pytest_predeploy.intake.parity.config import DatasetConfig, EnvironmentConfig, ParityConfig, ParityProject, RefreshConfig
    from pytest_predeploy.intake.parity.inputs import load_environment, load_section, parse_yaml_fast
    from pytest_predeploy.intake.parity.paths import compile_glob, render_path
    from pytest_predeploy.intake.parity.report import DriftItem, ParityReport, ParitySummary, ParityValue, parity_problems, summary_text

#: name -> the submodule that holds it.
_HOMES = {
    **dict.fromkeys(("is_missing", "required_flag_states"), "classify"),
    **dict.fromkeys(("compare_environments", "compare_trees"), "compare"),
    **dict.fromkeys(("DatasetConfig", "EnvironmentConfig", "ParityConfig", "ParityProject", "RefreshConfig"), "config"),
    **dict.fromkeys(("load_environment", "load_section", "parse_yaml_fast"), "inputs"),
    **dict.fromkeys(("compile_glob", "render_path"), "paths"),
    **dict.fromkeys(("DriftItem", "ParityReport", "ParitySummary", "ParityValue", "parity_problems", "summary_text"), "report"),
}

__all__ = [
    "DatasetConfig",
    "DriftItem",
    "EnvironmentConfig",
    "ParityConfig",
    "ParityProject",
    "ParityReport",
    "ParitySummary",
    "ParityValue",
    "RefreshConfig",
    "compare_environments",
    "compare_trees",
    "compile_glob",
    "is_missing",
    "load_environment",
    "load_section",
    "parity_problems",
    "parse_yaml_fast",
    "render_path",
    "required_flag_states",
    "summary_text",
]


def __getattr__(name: str) -> Any:
    # Not cached: pytester's in-process runs drop the modules a run imported (as in api.py).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
