"""Building a release folder of one service from its release source (reused when it holds the
same code): built in a temporary folder, its manifest written last, then renamed into place."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.targets import processes
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, TargetError
from pytest_predeploy.targets.local.layout import MANIFEST, ReleaseManifest, ServiceLayout, checkpoint, fsync_dir
from pytest_predeploy.targets.releases import ReleaseIdentity, ReleaseSourceError, changed_inputs, materialise, resolve


def build_release(layout: ServiceLayout, tag: str) -> ReleaseManifest:
    """Build the release folder of ``tag`` from its release source (reused when it holds the
    same code). The folder is named after what it is: the tag, or ``<tag>+dirty.<digest>``."""
    try:
        resolved = resolve(layout.settings.releases, layout.base_dir, layout.service.name, layout.service.source, tag)
    except ReleaseSourceError as exc:
        raise TargetError(EXIT_USAGE, f"{exc}; nothing was changed") from None
    fault = layout.service.inject.get(tag)
    name = str(resolved.identity_without_digest["deployed_as"])
    existing = layout.manifest(name)
    if existing is not None and resolved.built_as(existing.identity) and existing.fault == fault:
        layout.say(f"release {name} already built on {existing.built_at:%Y-%m-%dT%H:%M:%SZ} ({existing.identity.describe()}); reusing it")
        return existing
    started = time.monotonic()
    layout.releases.mkdir(parents=True, exist_ok=True)
    tmp = layout.releases / f".build-{name}-{uuid.uuid4().hex[:8]}"
    try:
        identity, files = materialise(resolved, layout.settings.releases, tmp)
    except ReleaseSourceError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TargetError(EXIT_USAGE, f"{layout.service.name}: {exc}; nothing was changed") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    name = identity.deployed_as
    existing = layout.manifest(name)
    if existing is not None and existing.identity.digest == identity.digest and not changed_inputs(existing.identity, identity) and existing.fault == fault:
        shutil.rmtree(tmp, ignore_errors=True)
        layout.say(f"release {name} already built on {existing.built_at:%Y-%m-%dT%H:%M:%SZ} ({existing.identity.describe()}); reusing it")
        return existing
    replaced = os.path.lexists(layout.releases / name)  # also a folder without a readable manifest (an older format)
    if replaced:
        _check_rebuild(layout, name, existing, identity, fault, tmp)
    manifest = ReleaseManifest(service=layout.service.name, release=name, built_at=utcnow(), identity=identity, files=files, fault=fault)
    # The manifest is written last: a release folder without one is incomplete.
    write_text_atomic(tmp / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
    checkpoint("built")
    if replaced:
        os.replace(layout.releases / name, layout.releases / f".trash-{name}-{uuid.uuid4().hex[:8]}")
    os.replace(tmp, layout.releases / name)
    fsync_dir(layout.releases)
    layout.clean_leftovers()
    how = "rebuilt" if replaced else "built"
    changed = ""
    if existing is not None and existing.identity.digest != identity.digest:
        changed = f" (its code changed since {existing.built_at:%Y-%m-%dT%H:%M:%SZ}: digest {existing.identity.digest[:12]} -> {identity.digest[:12]})"
    elif existing is not None and (inputs := changed_inputs(existing.identity, identity)):
        changed = f" (its dependencies' inputs changed ({', '.join(inputs)}) since {existing.built_at:%Y-%m-%dT%H:%M:%SZ})"
    layout.say(
        f"{how} release {identity.describe()}{changed}, {len(files)} files, in {time.monotonic() - started:.2f}s"
        + (f" [injected fault: {fault}]" if fault else "")
    )
    if identity.deployed_as != identity.release:
        layout.say(f"WARNING: the working tree differs from {identity.release}: deployed as {identity.deployed_as}, NOT as {identity.release}")
    return manifest


def _check_rebuild(layout: ServiceLayout, name: str, existing: ReleaseManifest | None, identity: ReleaseIdentity, fault: str | None, tmp: Path) -> None:
    """A release folder is replaced only while no live process runs it: a running service
    keeps its files, and the evidence must not name code it does not run."""
    live = [record for record in layout.records() if record.release == name and processes.is_running(record.pid, record.start_ticks)]
    if not live:
        return
    shutil.rmtree(tmp, ignore_errors=True)
    runs = ", ".join(f"{record.slot} slot, pid {record.pid}" for record in live)
    if existing is None:
        what = "its folder has no readable release manifest (built by an older version, or damaged)"
    elif existing.identity.digest != identity.digest:
        what = f"its code changed (digest {existing.identity.digest[:12]} built {existing.built_at:%Y-%m-%dT%H:%M:%SZ}, now {identity.digest[:12]})"
    elif inputs := changed_inputs(existing.identity, identity):
        what = f"its dependencies' inputs changed ({', '.join(inputs)}) since it was built {existing.built_at:%Y-%m-%dT%H:%M:%SZ}"
    else:
        what = f"its injected fault changed ({existing.fault or 'none'} -> {fault or 'none'})"
    raise TargetError(
        EXIT_FAILED,
        f"{layout.service.name}: release {name} is running ({runs}) and {what}; nothing was changed. "
        f"A release names one code: deploy the new code under a new release tag, or stop what runs "
        f"(python -m pytest_predeploy.targets.local stop --env {layout.env} --service {layout.service.name}) and deploy {name} again to rebuild it",
    )
