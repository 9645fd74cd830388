"""Benchmark of staging parity (SPEC section 8) on generated 200,000-leaf baselines.

    .venv/bin/python bench/parity.py [--leaves 200000] [--repeat 3] [--quick]

Generates a production baseline of about 200,000 leaves and a staging copy with about 1% drift
(changed values, type changes, added and removed keys), then measures on the same two files,
each measurement in a fresh interpreter so no heap state carries over:

- ours, whole: compare_environments() on a config naming the two files (parse, compare, classify,
  write the report), and the real command line as a subprocess (interpreter start included);
- the floor: both files parsed with PyYAML's C loader alone (yaml.load(..., CSafeLoader)), in
  process and as a subprocess;
- the comparison step alone on the parsed trees: ours (compare_trees), DeepDiff, dictdiffer, each
  anchor run right after ours in every repeat; the ratio is the median of those pairs' ratios.

Targets: our comparison step >= 30x faster than DeepDiff; the whole command <= 1.15x the parse.

    .venv/bin/python bench/parity.py --manifests [--megabytes 26]

instead measures the peak memory (RSS) and the report size of compare_environments() on a pair
of multi-document Kubernetes manifests of about that many megabytes each: the committed Argo CD
excerpt (tests/data/parity/upstream) once per namespace, staging with drift in every copy (an
image, replicas, an inserted container argument, an extra environment variable, a reordered env
list, a removed ConfigMap entry).
Needs the bench extras: pip install -e '.[bench]'. ``--quick`` (CI) measures 2,000 leaves once:
it proves the benchmark still runs, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
version: 1
project: bench
environments:
  staging: {infrastructure: [staging.yaml]}
  production: {infrastructure: [production.yaml]}
services: [{name: api}]
approvals: {upstream: [], allow_none: true}
parity:
  rules:
    - {path: "infrastructure.*.setting_00?", severity: critical}
  ignore:
    - {path: "infrastructure.*.hosts", reason: per-environment host names}
"""


def _value(rnd: random.Random, k: int) -> object:
    kind = k % 5
    if kind == 0:
        return rnd.randint(0, 10**6)
    if kind == 1:
        return f"value-{rnd.random():.6f}"
    if kind == 2:
        return rnd.random() > 0.5
    if kind == 3:
        return round(rnd.random(), 6)
    return None


def generate(leaves: int, seed: int = 1) -> tuple[dict, dict, dict[str, int]]:
    """(staging, production, drift counts). 100 leaves per service: settings, a host list,
    a list of port mappings (keyed by name) and a nested limits mapping."""
    rnd = random.Random(seed)
    production: dict = {}
    for s in range(leaves // 100):
        service: dict = {f"setting_{k:03d}": _value(rnd, k) for k in range(88)}
        service["hosts"] = [f"h{i}.svc{s}.example.com" for i in range(4)]
        service["ports"] = [{"name": f"p{i}", "port": 8000 + i, "protocol": "tcp"} for i in range(2)]
        service["limits"] = {"cpu": "500m", "memory": "512Mi"}
        production[f"svc-{s:04d}"] = service
    staging = json.loads(json.dumps(production))
    counts = {"changed": 0, "type-changed": 0, "added": 0, "removed": 0}
    names = list(staging)
    for _ in range(leaves // 100):  # ~1% of the leaves
        service = staging[rnd.choice(names)]
        roll = rnd.random()
        key = f"setting_{rnd.randrange(88):03d}"
        if roll < 0.6 and key in service:
            service[key] = f"drift-{rnd.random():.6f}" if isinstance(service[key], str) else rnd.randint(0, 10**6)
            counts["changed"] += 1
        elif roll < 0.7 and key in service:
            service[key] = str(service[key])
            counts["type-changed"] += 1
        elif roll < 0.85:
            service[f"extra_{rnd.randrange(10**6)}"] = rnd.randint(0, 9)
            counts["added"] += 1
        elif key in service:
            del service[key]
            counts["removed"] += 1
    return staging, production, counts


def count_leaves(tree: object) -> int:
    if isinstance(tree, dict):
        return sum(count_leaves(v) for v in tree.values())
    if isinstance(tree, list):
        return sum(count_leaves(v) for v in tree)
    return 1


CHILD = {
    "parse": """
        import time, yaml
        t = time.perf_counter()
        for name in ("staging.yaml", "production.yaml"):
            with open(name, "rb") as f:
                yaml.load(f, Loader=yaml.CSafeLoader)
        print(time.perf_counter() - t)
    """,
    "ours": """
        import time
        from pathlib import Path
        from pytest_predeploy.core.artifacts import write_artifact
        from pytest_predeploy.config import load_config
        from pytest_predeploy.intake.parity import compare_environments
        config = load_config(Path("predeploy.yaml"))
        t = time.perf_counter()
        write_artifact(Path("report.json"), compare_environments(config, "staging", "production", "bench"))
        print(time.perf_counter() - t)
    """,
    "compare": """
        import time, yaml
        from pathlib import Path
        from pytest_predeploy.config import load_config
        from pytest_predeploy.intake.parity import compare_trees
        config = load_config(Path("predeploy.yaml"))
        a = {"infrastructure": yaml.load(open("staging.yaml", "rb"), Loader=yaml.CSafeLoader)}
        b = {"infrastructure": yaml.load(open("production.yaml", "rb"), Loader=yaml.CSafeLoader)}
        t = time.perf_counter()
        items = compare_trees(config.parity, a, b)
        print(time.perf_counter() - t, len(items))
    """,
    "deepdiff": """
        import time, yaml
        from deepdiff import DeepDiff
        a = yaml.load(open("staging.yaml", "rb"), Loader=yaml.CSafeLoader)
        b = yaml.load(open("production.yaml", "rb"), Loader=yaml.CSafeLoader)
        t = time.perf_counter()
        diff = DeepDiff(b, a)
        print(time.perf_counter() - t, sum(len(v) for v in diff.values()))
    """,
    "dictdiffer": """
        import time, yaml, dictdiffer
        a = yaml.load(open("staging.yaml", "rb"), Loader=yaml.CSafeLoader)
        b = yaml.load(open("production.yaml", "rb"), Loader=yaml.CSafeLoader)
        t = time.perf_counter()
        diff = list(dictdiffer.diff(b, a))
        print(time.perf_counter() - t, len(diff))
    """,
}


MANIFEST = ROOT / "tests" / "data" / "parity" / "upstream" / "argo-cd-install-excerpt.yaml"
CHILD["manifests"] = """
    import resource, time
    from pathlib import Path
    from pytest_predeploy.core.artifacts import write_artifact
    from pytest_predeploy.config import load_config
    from pytest_predeploy.intake.parity import compare_environments
    config = load_config(Path("predeploy.yaml"))
    t = time.perf_counter()
    report = compare_environments(config, "staging", "production", "bench")
    write_artifact(Path("report.json"), report)
    seconds = time.perf_counter() - t
    print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(report.items), sum(1 for i in report.items if i.active))
"""


def _drift(document: dict, copy: int) -> dict:
    """Staging's version of one manifest document: a few realistic edits in some objects."""
    spec = document.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []):
        container["image"] = container.get("image", "") + f"-rc{copy % 3}"
        if isinstance(container.get("args"), list):
            container["args"].insert(1, "--loglevel=debug")
        env = container.get("env")
        if isinstance(env, list) and env:
            env.reverse()  # keyed by name: no difference
            env.insert(0, {"name": "STAGING_ONLY", "value": "1"})
    if document.get("kind") in ("Deployment", "StatefulSet"):
        document["spec"]["replicas"] = 1
    if document.get("kind") == "ConfigMap" and document.get("data"):
        document["data"].pop(next(iter(document["data"])))
    return document


def manifests(megabytes: float) -> int:
    documents = [d for d in yaml.load_all(MANIFEST.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) if d]
    copies = max(1, round(megabytes * 1e6 / MANIFEST.stat().st_size))
    with tempfile.TemporaryDirectory(prefix="bench-parity-manifests-") as scratch:
        work = Path(scratch)
        for name, drift in (("staging.yaml", True), ("production.yaml", False)):
            out = []
            for copy in range(copies):
                for document in json.loads(json.dumps(documents, default=str)):
                    document.setdefault("metadata", {})["namespace"] = f"team-{copy:03d}"
                    out.append(_drift(document, copy) if drift else document)
            with open(work / name, "w", encoding="utf-8") as handle:
                yaml.dump_all(out, handle, Dumper=yaml.CSafeDumper, sort_keys=False)
        (work / "predeploy.yaml").write_text(CONFIG.split("parity:")[0] + "parity: {}\n", encoding="utf-8")
        sizes = [(work / n).stat().st_size / 1e6 for n in ("staging.yaml", "production.yaml")]
        seconds, peak_kb, listed, active = child(work, "manifests")
        report = json.loads((work / "report.json").read_text(encoding="utf-8"))
        print(f"input: {copies} copies of {MANIFEST.name}, staging {sizes[0]:.1f} MB, production {sizes[1]:.1f} MB")
        print(f"compare_environments: {float(seconds):.2f} s, peak RSS {int(peak_kb) / 1024:.0f} MB")
        print(f"report: {(work / 'report.json').stat().st_size / 1e6:.1f} MB, {listed} items listed ({active} active), summary {report['summary']}")
        for note in report.get("notes", []):
            print(f"note: {note}")
    return 0


def child(work: Path, name: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD[name])], cwd=work, check=True, capture_output=True, text=True)
    return out.stdout.split()


def wall(work: Path, argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: done, with drift recorded in the report (the input has drift)
        sys.exit(f"{' '.join(argv)} failed with exit status {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--manifests", action="store_true", help="measure peak memory on a Kubernetes manifest pair instead")
    parser.add_argument("--megabytes", type=float, default=26.0, help="size of each manifest file with --manifests")
    parser.add_argument("--quick", action="store_true", help="2,000 leaves, one repeat (CI: the benchmark still runs; no figure)")
    args = parser.parse_args()
    if args.manifests:
        return manifests(args.megabytes)
    if args.quick:
        args.leaves, args.repeat = 2_000, 1
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as scratch:
        work = Path(scratch)
        staging, production, counts = generate(args.leaves)
        for name, tree in (("staging.yaml", staging), ("production.yaml", production)):
            with open(work / name, "w", encoding="utf-8") as handle:
                yaml.dump(tree, handle, Dumper=yaml.CSafeDumper, sort_keys=False)
        (work / "predeploy.yaml").write_text(CONFIG, encoding="utf-8")
        size = sum((work / n).stat().st_size for n in ("staging.yaml", "production.yaml"))
        print(f"input: {count_leaves(production):,} leaves (production), {count_leaves(staging):,} (staging), {size / 1e6:.1f} MB of YAML; drift {counts}")

        parse, ours, compare, deep, dd = [], [], [], [], []
        for _ in range(args.repeat):  # interleaved, so machine load hits all alike
            parse.append(float(child(work, "parse")[0]))
            ours.append(float(child(work, "ours")[0]))
            seconds, items = child(work, "compare")
            compare.append(float(seconds))
            # The anchors right after ours, each time: a ratio is taken of two back-to-back runs.
            seconds, deep_items = child(work, "deepdiff")
            deep.append(float(seconds))
            seconds, dd_items = child(work, "dictdiffer")
            dd.append(float(seconds))
        script = [
            sys.executable,
            str(ROOT / "scripts" / "compare_environments.py"),
            "--source",
            "staging",
            "--target",
            "production",
            "--output",
            "report.json",
            "--config",
            "predeploy.yaml",
        ]
        parse_argv = [sys.executable, "-c", textwrap.dedent(CHILD["parse"])]
        cmd_wall, parse_wall = [], []
        for _ in range(args.repeat):
            parse_wall.append(wall(work, parse_argv))
            cmd_wall.append(wall(work, script))

        med = statistics.median
        report = json.loads((work / "report.json").read_text(encoding="utf-8"))
        print(f"report: {len(report['items'])} items, {report['summary']}")
        print(f"{'measure':58} {'seconds':>9}")
        rows = [
            ("C-loader parse of both files (in process)", med(parse)),
            ("ours, whole comparison incl. parse and report (in process)", med(ours)),
            ("C-loader parse, as a subprocess (wall)", med(parse_wall)),
            ("ours, compare_environments.py command (wall)", med(cmd_wall)),
            (f"ours, comparison step on parsed trees ({items} items)", med(compare)),
            (f"DeepDiff on parsed trees ({deep_items} changes)", med(deep)),
            (f"dictdiffer on parsed trees ({dd_items} changes)", med(dd)),
        ]
        for label, seconds in rows:
            print(f"{label:58} {seconds:9.3f}")
        print(f"ratio whole/parse in process: {med(ours) / med(parse):.2f}x (target <= 1.15x)")
        print(f"ratio command/parse wall:     {med(cmd_wall) / med(parse_wall):.2f}x (target <= 1.15x)")
        # The median of the ratios of back-to-back runs: load that changes between repeats
        # (a shared machine) slows both runs of a pair alike.
        deep_ratio = med([d / c for d, c in zip(deep, compare, strict=True)])
        dd_ratio = med([d / c for d, c in zip(dd, compare, strict=True)])
        print(f"DeepDiff / ours comparison:   {deep_ratio:.1f}x faster (target >= 30x; median of {args.repeat} back-to-back pairs)")
        print(f"dictdiffer / ours comparison: {dd_ratio:.1f}x faster")
    if args.quick:
        print("quick mode: one short run to prove the benchmark still runs; its figures mean nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
