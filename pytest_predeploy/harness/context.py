"""The run context the step fixtures share: config, release, where artifacts go, and how a
step's script is run and announced."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_predeploy.config import ENV_ARTIFACTS, ENV_CONFIG, ENV_ENVIRONMENT, ENV_PREVIOUS, ENV_RELEASE, STEP_PLACEHOLDERS, ProjectConfig
from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core import template
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.core.runner import RunResult, run_command, script_name
from pytest_predeploy.core.template import TemplateError
from pytest_predeploy.targets.base import Target
from pytest_predeploy.targets.choose import target_for

#: The artifact each scripted step writes to ``{output}``.
STEP_OUTPUTS = names.STEP_OUTPUTS


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class RunContext:
    config: ProjectConfig
    release: str
    previous_release: str | None
    env: str
    artifacts: Path
    redactor: Redactor = field(default_factory=lambda: Redactor({}))
    announcer: Callable[[str], None] = _print
    results: list[RunResult] = field(default_factory=list)
    #: Set to stop the scripts running in other threads (see runner.run_command).
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Called with each line (redacted) a script prints; a step run beside the rehearsal streams
    #: its output with it. None: the output goes to the transcript only.
    on_line: Callable[[str], None] | None = None

    def announce(self, line: str) -> None:
        self.announcer(self.redactor.redact(line))

    @property
    def target(self) -> Target:
        """The staging target of ``staging.target`` (what the steps verify deploys through)."""
        return target_for(self.config)

    def artifact(self, name: str) -> Path:
        return self.artifacts / name

    def placeholders(self, step: str, extra: dict[str, str]) -> dict[str, str]:
        values = {
            "release": self.release,
            "previous_release": self.previous_release or "",
            "env": self.env,
            "target_env": self.config.target_environment,
            "artifacts": str(self.artifacts),
            "config": str(self.config.path),
            "python": sys.executable,
        }
        if step in STEP_OUTPUTS:
            values["output"] = str(self.artifact(STEP_OUTPUTS[step]))
        values.update(extra)
        return values

    def argv(self, step: str, **placeholders: str) -> list[str]:
        if step not in STEP_PLACEHOLDERS:
            raise ConfigError(f"unknown step {step!r}")
        command = getattr(self.config.steps, step).command
        values = self.placeholders(step, placeholders)
        if "previous_release" in command and not self.previous_release:
            raise ConfigError(
                f"{self.config.path}: steps.{step}.command needs {{previous_release}}, but no previous release is known; "
                "set previous_release in the config or pass --predeploy-previous"
            )
        try:
            return template.fill_command(command, values, f"steps.{step}.command")
        except TemplateError as exc:
            raise ConfigError(f"{self.config.path}: {exc}") from None

    def script_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                ENV_CONFIG: str(self.config.path),
                ENV_RELEASE: self.release,
                ENV_PREVIOUS: self.previous_release or "",
                ENV_ENVIRONMENT: self.env,
                ENV_ARTIFACTS: str(self.artifacts.resolve()),
                "PREDEPLOY_PYTHON": sys.executable,
            }
        )
        # Scripts that say `python` mean the interpreter running the plugin.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    def transcript_path(self, step: str, label: str) -> Path:
        stem = f"{step}-{label}" if label else step
        return self.artifacts / names.TRANSCRIPTS_DIR / f"{stem}.log"

    def run_step_script(self, step: str, label: str = "", *, capture: bool = False, **placeholders: str) -> RunResult:
        step_config = getattr(self.config.steps, step)
        argv = self.argv(step, **placeholders)
        env = self.script_env()
        env.update(step_config.env)
        return self._run(
            argv,
            step=step,
            label=label,
            timeout=step_config.timeout.total_seconds(),
            cwd=step_config.cwd,
            env=env,
            capture=capture,
            kill_grace=step_config.kill_grace.total_seconds(),
        )

    def run_command(self, argv: Sequence[str], *, step: str, label: str = "", timeout: float, cwd: Path, capture: bool = False) -> RunResult:
        return self._run(list(argv), step=step, label=label, timeout=timeout, cwd=cwd, env=self.script_env(), capture=capture)

    def _run(
        self, argv: list[str], *, step: str, label: str, timeout: float, cwd: Path, env: dict[str, str], capture: bool, kill_grace: float = 5.0
    ) -> RunResult:
        try:
            result = run_command(
                argv,
                step=step,
                label=label,
                transcript=self.transcript_path(step, label),
                timeout=timeout,
                cwd=cwd,
                env=env,
                redactor=self.redactor,
                capture=capture,
                kill_grace=kill_grace,
                cancel=self.cancel,
                on_line=self.on_line,
            )
        except KeyboardInterrupt:
            self.announce(f"[AUTOMATION] {script_name(argv)} executed: interrupted")
            raise
        self.results.append(result)
        status = result.describe()
        if step in STEP_OUTPUTS and result.returncode == 1 and not result.error:
            status = "report written, it lists what blocks (exit 1)"
        suffix = f" ({label})" if label else ""
        self.announce(f"[AUTOMATION] {script_name(argv)} executed: {status}{suffix}")
        return result
