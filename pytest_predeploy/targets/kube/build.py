"""Building a kube release: its image, from its release source (reused when the recorded image
holds the same code), recorded in ``releases/<name>.json``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.targets.base import EXIT_FAILED, EXIT_USAGE, TargetError
from pytest_predeploy.targets.kube.engine import EngineError
from pytest_predeploy.targets.kube.image import LABEL_RELEASE, LABEL_SERVICE, ImageError, ImageSettingError
from pytest_predeploy.targets.kube.manifests import label_value
from pytest_predeploy.targets.kube.state import KubeRelease
from pytest_predeploy.targets.kube.status import KubeServiceStatus
from pytest_predeploy.targets.releases import ReleaseSourceError, materialise, resolve


def build_release(status: KubeServiceStatus, tag: str) -> KubeRelease:
    """The release's image, built from its release source (reused when the recorded image
    holds the same code); recorded in releases/<name>.json."""
    try:
        resolved = resolve(status.releases_config, status.base_dir, status.service.name, status.service.source, tag)
    except ReleaseSourceError as exc:
        raise TargetError(EXIT_USAGE, f"{exc}; nothing was changed") from None
    fault = status.service.inject.get(tag)
    name = str(resolved.identity_without_digest["deployed_as"])
    existing = status.record(name)
    if existing is not None and resolved.built_as(existing.identity) and existing.fault == fault:
        found = status.images.inspect(existing.image.split("@")[0])
        if found is not None and existing.image.endswith(f"@{found[0]}"):
            status.say(f"release {name} already built ({existing.image}); reusing it")
            return existing
    status.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=status.dir, prefix=".build-") as tmp:
        folder = Path(tmp) / "release"
        try:
            identity, _files = materialise(resolved, status.releases_config, folder)
        except ReleaseSourceError as exc:
            raise TargetError(EXIT_USAGE, f"{status.service.name}: {exc}; nothing was changed") from None
        name = identity.deployed_as
        # What the service reads at start (the demo service: its name, release and fault) and
        # the code's digest; no build time nor git commit (a later commit elsewhere in the
        # repository), so the same code always makes the same image.
        manifest = {"service": status.service.name, "release": name, "fault": fault, "digest": identity.digest}
        write_text_atomic(folder / "release-manifest.json", _json(manifest))
        labels = {LABEL_SERVICE: status.service.name, LABEL_RELEASE: label_value(name)}
        try:
            image = status.images.release_image(status.image_ref(name), folder, identity.digest + (f"+{fault}" if fault else ""), labels)
        except ImageSettingError as exc:
            raise TargetError(EXIT_USAGE, f"{status.service.name}: {exc}; nothing was changed") from None
        except (ImageError, EngineError) as exc:
            raise TargetError(EXIT_FAILED, f"{status.service.name}: {exc}") from None
    identity = identity.model_copy(update={"image": image.pinned})
    record = KubeRelease(service=status.service.name, release=name, built_at=utcnow(), identity=identity, image=image.pinned, fault=fault)
    previous = status.record(name)
    if previous is not None and previous.image == record.image:
        record = previous
    else:
        status.records_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(status.records_dir / f"{name}.json", record.model_dump_json(indent=2) + "\n")
    status.say(f"release {identity.describe()}" + (" (image reused)" if image.reused else ""))
    return record


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
