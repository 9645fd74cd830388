"""The default licence policy: what a small real service passes, what needs a review, and how a
project tightens it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.security import SecurityReport, licenses, run_security_audit, security_problems
from pytest_predeploy.security.components import installed

ALL_SCANNERS = ("bandit", "secrets", "osv", "pip_audit", "licenses", "sbom")

#: requests 2.32.3 and its dependencies as PyPI ships them (licence fields as in their METADATA).
REQUESTS_CLOSURE = {
    "requests": (
        "2.32.3",
        [
            "License: Apache-2.0",
            "Classifier: License :: OSI Approved :: Apache Software License",
            "Requires-Dist: charset-normalizer<4,>=2",
            "Requires-Dist: idna<4,>=2.5",
            "Requires-Dist: urllib3<3,>=1.21.1",
            "Requires-Dist: certifi>=2017.4.17",
            'Requires-Dist: PySocks!=1.5.7,>=1.5.6; extra == "socks"',
        ],
    ),
    "certifi": ("2024.8.30", ["License: MPL-2.0", "Classifier: License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)"]),
    "charset-normalizer": ("3.4.0", ["License: MIT", "Classifier: License :: OSI Approved :: MIT License"]),
    "idna": ("3.10", ["Classifier: License :: OSI Approved :: BSD License"]),
    "urllib3": ("2.2.3", ["License-Expression: MIT"]),
}


def site_packages(folder: Path, dists: dict[str, tuple[str, list[str]]]) -> Path:
    for name, (version, headers) in dists.items():
        info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *headers]) + "\n")
    return folder


def licence_audit(root: Path, dists: dict[str, tuple[str, list[str]]], policy: dict[str, Any] | None = None) -> SecurityReport:
    env = site_packages(root / "site-packages", dists)
    (root / "requirements.txt").write_text("requests==2.32.3\n")
    security: dict[str, Any] = {"requirements": ["requirements.txt"], "environment": str(env), **{n: {"enabled": n == "licenses"} for n in ALL_SCANNERS}}
    if policy is not None:
        security["licenses"] = policy
    data = {
        "version": 1,
        "project": "svc",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "security": security,
    }
    (root / "predeploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    config: ProjectConfig = load_config(root / "predeploy.yaml")
    return run_security_audit(config, "staging", "v1.0", root / "out" / "security-compliance-report.json")


def test_a_service_pinning_requests_passes_by_default_with_a_notice_for_certifi(tmp_path: Path) -> None:
    # idna only says "BSD License": it needs its SPDX id (a waiver or License-Expression) like any
    # unknown licence, so it is given one here to isolate the certifi question.
    dists = {**REQUESTS_CLOSURE, "idna": ("3.10", ["License-Expression: BSD-3-Clause"])}
    report = licence_audit(tmp_path, dists)
    assert report.findings == [] and not report.blocking and security_problems(report) == []
    policy = {d.name: (d.license, d.policy) for d in report.dependencies}
    assert policy["certifi"] == ("MPL-2.0", "notice")
    assert policy["requests"] == ("Apache-2.0", "allow")
    notes = next(s for s in report.scanners if s.name == "licenses").notes
    assert any(note.startswith("notice: certifi 2024.8.30 is MPL-2.0") for note in notes)
    # A project that wants every weak-copyleft dependency reviewed says so.
    tightened = tmp_path / "tightened"
    tightened.mkdir()
    report = licence_audit(tightened, dists, {"review": ["MPL-2.0", "GPL-*", "AGPL-*"]})
    assert [(f.id, f.package, f.blocking) for f in report.findings] == [("license:MPL-2.0", "certifi", True)]
    assert report.blocking


def test_strong_copyleft_and_unknown_licences_need_a_review_by_default(tmp_path: Path) -> None:
    dists = {
        **REQUESTS_CLOSURE,  # idna's bare "BSD License" classifier: unknown
        "requests": ("2.32.3", ["License: Apache-2.0", "Requires-Dist: certifi", "Requires-Dist: idna", "Requires-Dist: gpl-lib", "Requires-Dist: agpl-lib"]),
        "gpl-lib": ("1.0", ["License-Expression: GPL-3.0-or-later"]),
        "agpl-lib": ("1.0", ["License-Expression: AGPL-3.0-only"]),
    }
    report = licence_audit(tmp_path, dists)
    assert {(f.id, f.package, f.blocking) for f in report.findings} == {
        ("license:GPL-3.0-or-later", "gpl-lib", True),
        ("license:AGPL-3.0-only", "agpl-lib", True),
        ("license:UNKNOWN", "idna", True),
    }
    assert {d.name: d.policy for d in report.dependencies}["gpl-lib"] == "review"


def test_the_init_starter_config_uses_the_default_policy(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    (root / "service").mkdir(parents=True)
    (root / "service" / "app.py").write_text("print('hello')\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=30)
    done = subprocess.run([sys.executable, "-m", "pytest_predeploy", "init", "--service", "svc=service"], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    options = load_config(root / "predeploy.yaml").security.licenses
    verdicts = {
        spdx: licenses.evaluate(spdx, options.allow, options.deny, options.review, options.notice) for spdx in ("MPL-2.0", "Apache-2.0", "GPL-3.0-only")
    }
    assert verdicts == {"MPL-2.0": "notice", "Apache-2.0": "allow", "GPL-3.0-only": "review"}


# --- the licence evidence real wheels carry ----------------------------------------------------

#: The dist-info folders of flask 3.1.3 and its dependencies as PyPI ships them (tests/data/licenses/README.md).
REAL_WHEELS = Path(__file__).parent / "data" / "licenses"


def test_the_licences_of_flask_and_its_dependencies_are_read_from_what_their_wheels_carry() -> None:
    # jinja2 and itsdangerous only say "BSD License" in their classifiers; their licence files
    # (a PEP 639 License-File for jinja2, an older LICENSE.txt beside the METADATA of
    # itsdangerous) are BSD-3-Clause, word for word.
    found = {name: licenses.read_distribution_license(dist) for name, dist in installed(REAL_WHEELS).items()}
    assert {name: expression for name, (expression, _) in found.items()} == {
        "blinker": "MIT",
        "click": "BSD-3-Clause",
        "flask": "BSD-3-Clause",
        "itsdangerous": "BSD-3-Clause",
        "jinja2": "BSD-3-Clause",
        "markupsafe": "BSD-3-Clause",
        "werkzeug": "BSD-3-Clause",
    }
    assert found["jinja2"][1] == "licence file licenses/LICENSE.txt (the classifier says only BSD License)"
    assert found["itsdangerous"][1] == "licence file LICENSE.txt (the classifier says only BSD License)"
    assert found["click"][1] == "License-Expression"


def test_a_bsd_classifier_without_a_licence_text_stays_unknown(tmp_path: Path) -> None:
    # Only what is really unknown is unknown: the same jinja2 without its licence file.
    copy = tmp_path / "site-packages" / "jinja2-3.1.6.dist-info"
    shutil.copytree(REAL_WHEELS / "jinja2-3.1.6.dist-info", copy)
    shutil.rmtree(copy / "licenses")
    expression, why = licenses.read_distribution_license(installed(copy.parent)["jinja2"])
    assert expression == licenses.UNKNOWN
    assert why == "classifier BSD License does not name one SPDX licence, and licenses/LICENSE.txt (License-File) cannot be read"


def test_a_licence_text_no_spdx_licence_matches_is_unknown(tmp_path: Path) -> None:
    copy = tmp_path / "site-packages" / "itsdangerous-2.2.0.dist-info"
    shutil.copytree(REAL_WHEELS / "itsdangerous-2.2.0.dist-info", copy)
    (copy / "LICENSE.txt").write_text("Copyright Someone. You may use this if you ask nicely.\n")
    expression, why = licenses.read_distribution_license(installed(copy.parent)["itsdangerous"])
    assert expression == licenses.UNKNOWN
    assert why == "classifier BSD License does not name one SPDX licence, and no SPDX licence matches the text of LICENSE.txt"


def test_matching_licence_texts_stops_at_the_scanners_timeout(tmp_path: Path) -> None:
    # Matching a long text takes seconds (an Apache-2.0 text about 9 s here): a large environment
    # must not hold the audit much past security.licenses.timeout (a text being matched is finished).
    env = tmp_path / "site-packages"
    for index in range(3):
        copy = env / f"itsdangerous{index}-2.2.0.dist-info"
        shutil.copytree(REAL_WHEELS / "itsdangerous-2.2.0.dist-info", copy)
        metadata = (copy / "METADATA").read_text().replace("Name: itsdangerous", f"Name: itsdangerous{index}")
        (copy / "METADATA").write_text(metadata)
        (copy / "RECORD").write_text((copy / "RECORD").read_text().replace("itsdangerous-2.2.0.dist-info", copy.name))
        # Each a long text of its own (never matched before in this process), so whichever the
        # audit reads first outlasts the timeout: the distributions' order is the file system's.
        long_text = (REAL_WHEELS / "itsdangerous-2.2.0.dist-info" / "LICENSE.txt").read_text() * 4 + f"\n{tmp_path.name} {index}\n"
        (copy / "LICENSE.txt").write_text(long_text)
    security: dict[str, Any] = {"environment": str(env), **{n: {"enabled": n == "licenses"} for n in ALL_SCANNERS}}
    # 50 ms: far less than matching one of those texts takes, far more than the audit needs to
    # reach the first distribution, so exactly one is read whatever the machine's load.
    security["licenses"] = {"timeout": 0.05}
    data = {
        "version": 1,
        "project": "svc",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "security": security,
    }
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    report = run_security_audit(load_config(tmp_path / "predeploy.yaml"), "staging", "v1.0", tmp_path / "out.json")
    [scan] = [s for s in report.scanners if s.name == "licenses"]
    assert scan.status == "unavailable" and scan.reason is not None
    assert scan.reason.startswith("timed out after ") and scan.reason.endswith("(security.licenses.timeout) reading licence texts: 1 of 3 distributions read")
    assert scan.action == "raise security.licenses.timeout, then rerun Gate 3"
    assert report.blocking
