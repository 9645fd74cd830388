"""The hostile corpus of issue 30: secrets in other encodings, secrets recognised by their content
under ordinary names, pieces left by truncation, secrets in config files, archives and binary files
a script wrote, a pre-seal scan of large files. Each case is a row of a table below, so a new
leak found later is one more row."""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import random
import re
import textwrap
import tracemalloc
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from pytest_predeploy.core.detect import DETECT_SECRETS_PATTERNS
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.harness.steps import scrub_artifacts_folder
from pytest_predeploy.intake.parity import compare_environments
from pytest_predeploy.intake.refresh import run_data_refresh
from tests.parity_project import write_config

# -- a known secret in every covered encoding ------------------------------------------------

#: '/', '+', '&', '<', "'" make every encoding differ from the plain form.
CANARY = "Cnry/k&y<'x>+Lk-7731"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXAIBAAKBgQCqGKukO1De7zhZj6+H0qtjTkVxwTCpvKe4eCZ0FPqri0cb2JZfXJ\n"
    "wQIDAQABAoGAD+onAtVye4ic7VR7V50DF9bOnwRwNXrARcDhq9LWNRrRGElESYYTQ6\n"
    "-----END RSA PRIVATE KEY-----"
)
PEM_LINES = PEM.splitlines()[1:-1]


def encodings(value: str) -> dict[str, str]:
    """Every form of ``value`` the redactor promises to cover (README, Trust)."""
    raw = value.encode()
    return {
        "plain": value,
        "base64 in a header": "Basic " + base64.b64encode(b"svc:" + raw).decode(),
        "url-encoded": quote(value, safe=""),
        "url-encoded, lower-case hex": re.sub("%[0-9A-F]{2}", lambda match: match.group(0).lower(), quote(value, safe="")),
        "form-encoded": quote_plus(value),
        "JSON string": json.dumps(value),
        "HTML-escaped": html.escape(value),
        "HTML-escaped, &#39;": html.escape(value).replace("&#x27;", "&#39;"),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }


def _stream(redactor: Redactor, data: bytes, size: int) -> bytes:
    stream = redactor.stream()
    return b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size)) + stream.flush()


@pytest.mark.parametrize("encoding", list(encodings(CANARY)))
def test_a_known_secret_is_redacted_in_every_covered_encoding_whole_and_streamed(encoding: str) -> None:
    redactor = Redactor({"CANARY": CANARY})
    shown = encodings(CANARY)[encoding]
    data = f"before {shown} after\n".encode()
    for out in (redactor.redact_bytes(data), _stream(redactor, data, 1), _stream(redactor, data, 7)):
        assert shown.encode() not in out and b"[REDACTED:CANARY]" in out, out


@pytest.mark.parametrize("how", ["line by line", "each line prefixed by a logger", "CRLF", "JSON-escaped"])
def test_a_multi_line_secret_printed_in_pieces_is_redacted(how: str) -> None:
    redactor = Redactor({"TLS_KEY": PEM})
    if how == "line by line":
        data = "\n".join(PEM.splitlines())
    elif how == "each line prefixed by a logger":
        data = "\n".join(f"2026-12-07 INFO key: {line}" for line in PEM.splitlines())
    elif how == "CRLF":
        data = PEM.replace("\n", "\r\n")
    else:
        data = json.dumps({"key": PEM})
    out = _stream(redactor, data.encode(), 5)
    for line in PEM_LINES:
        assert line.encode() not in out


def test_stream_redaction_with_a_thousand_secrets_matches_whole_redaction_at_random_splits() -> None:
    rng = random.Random(30)
    secrets = {f"S{i}": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789/+") for _ in range(rng.randint(8, 30))) for i in range(1000)}
    values = list(secrets.values())
    parts = []
    for _ in range(400):
        parts.append(f"log line {rng.randint(0, 10**6)} ")
        if rng.random() < 0.3:
            value = rng.choice(values)
            parts.append(rng.choice([value, quote(value, safe=""), base64.b64encode(value.encode()).decode(), value.encode().hex()]))
    data = "\n".join(parts).encode()
    redactor = Redactor(secrets)
    whole = redactor.redact_bytes(data)
    for size in (1, 3, 64, 4096):
        assert _stream(redactor, data, size) == whole
    assert not any(value.encode() in whole for value in values)


# -- secrets recognised by their content, under ordinary names --------------------------------

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYW5hcnktand0LTQ0MTkifQ.sXkD3dS8q3m1Qm4Zk1cZJ9oO7r1mQf2yH1cYt6bW0Xk"
GHP = "ghp_a1WxeVpGcanaryTok3n" + "0" * 16 + "1"  # ghp_ and 36 characters
#: case -> (text as a config file or a script would hold it, the secret in it, text that must stay)
CONTENT = {
    "DSN userinfo password": ("postgres://app:Pq7-dsn-Canary-2291@db/shop", "Pq7-dsn-Canary-2291", "@db/shop"),
    "PEM private key block": (PEM, PEM_LINES[0], ""),
    "JWT": (f"session sample {JWT}", JWT, "session sample"),
    "GitHub token": (f"ci token is {GHP}", GHP, "ci token is"),
    "Password= connection string": ("Server=db;Database=shop;User Id=app;Password=Cs-Canary-8812;", "Cs-Canary-8812", "Database=shop"),
    "Slack webhook URL": ("https://hooks.slack.com/services/T0CANARY1/B0CANARY2/CanaryHookToken5531xyz", "CanaryHookToken5531xyz", ""),
    "Discord webhook URL": ("https://discord.com/api/webhooks/112233445566/CanaryWebhookTokenAbcDef0123", "CanaryWebhookTokenAbcDef0123", "discord.com"),
    "Sentry DSN key": ("https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42", "0123456789abcdef0123456789abcdef", "ingest.sentry.io"),
    "--password=VALUE argument": ("migrate.sh --db-password=Arg-Canary-7420 --verbose", "Arg-Canary-7420", "--verbose"),
    "--token VALUE argument": ("deploy --token Tok-Canary-5530 --env staging", "Tok-Canary-5530", "--env staging"),
    "CI URL with a token": ("https://ci-bot:ci-Canary-Token-5512@jenkins.internal/job/1/", "ci-Canary-Token-5512", "jenkins.internal"),
}
#: Ordinary text that must come out as it went in.
ORDINARY = [
    "--password-file=/run/secrets/db",
    "token_ttl=30 password_min_length=12",
    "https://example.com/api/orders?page=2",
    "Password: (set)",
    "DB_PASSWORD=[REDACTED:staging/DB_PASSWORD]",
    "ghp_short",
    "postgres://db:5432/shop",
    "-----BEGIN CERTIFICATE-----",
]


@pytest.mark.parametrize("case", list(CONTENT))
def test_a_secret_recognised_by_its_content_is_redacted_in_report_text(case: str) -> None:
    text, secret, kept = CONTENT[case]
    out = Redactor({}).redact(f"value: {text}")
    assert secret not in out and "[REDACTED:" in out and kept in out, out


def test_the_copied_detect_secrets_patterns_match_the_installed_plugins() -> None:
    import detect_secrets.plugins.base
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    mapping: dict[str, type] = get_mapping_from_secret_type_to_class()
    plugins = {cls.__name__: cls for cls in mapping.values() if issubclass(cls, detect_secrets.plugins.base.RegexBasedDetector)}
    copied: dict[str, list[tuple[str, int]]] = {}
    for _, _, plugin, pattern, flags, _ in DETECT_SECRETS_PATTERNS:
        copied.setdefault(plugin, []).append((pattern, flags))
    for plugin, patterns in copied.items():
        assert patterns == [(p.pattern, p.flags & ~re.UNICODE) for p in plugins[plugin]().denylist], f"{plugin} changed upstream: update core/detect.py"


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_not_taken_for_a_secret(text: str) -> None:
    assert Redactor({}).redact(text) == text


def test_pieces_of_a_known_secret_left_by_truncation_are_redacted_in_report_text() -> None:
    # Other tokens share its first characters ("ghp_"): the piece is still told apart.
    others = {f"OTHER_{i}": f"ghp_{i:02d}" + "x" * 34 for i in range(50)}
    redactor = Redactor({"GITHUB_TOKEN": GHP, **others})
    pytest_repr = f"assert '{GHP[:11]}...{GHP[-7:]}' == 'x'"
    skipped_diff = f"Skipping 110 identical leading characters in diff, use -v to show\n- aaaaaaaaaa{GHP[:20]}ZZZ\n+ {GHP[5:]}bbbb"
    terminal = f"FAILED gates/test_gate1.py::test_token - AssertionError: {GHP[:9]}\u2026 and \u2026{GHP[-5:]}"
    out = redactor.redact_report("\n".join((pytest_repr, skipped_diff, terminal)))
    for piece in (GHP[:11], GHP[-7:], GHP[:20], GHP[5:], GHP[:9], GHP[-5:]):
        assert piece not in out, out
    assert out.count("[REDACTED:GITHUB_TOKEN]") == 6 and "Skipping 110 identical leading characters" in out


# -- secrets in the environments' config files join the redactor ------------------------------

APP_YAML = f"""
database:
  url: "postgres://app:Pq7-dsn-Canary-2291@db/shop"
tls:
  pem: |
{textwrap.indent(PEM, "    ")}
ci:
  sample: "{GHP}"
mail:
  relay_password: "Mail-Canary-3391"
replica:
  url: "postgres://app:Replica-Canary-4410@db2/shop"
smtp:
  auth: {{user: mailer-bot, password: "Smtp-Canary-5521"}}
"""


def test_secret_values_in_config_files_are_added_to_the_runs_redactor(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(APP_YAML, encoding="utf-8")
    (tmp_path / "prod.yaml").write_text("database: {url: 'postgres://app@db/shop'}\n", encoding="utf-8")
    config = write_config(tmp_path, {"configuration": ["app.yaml"]}, {"configuration": ["prod.yaml"]})
    values = config.secret_values()
    redactor = Redactor(values)
    lines = ["connecting with Pq7-dsn-Canary-2291 and Replica-Canary-4410 as mailer-bot", GHP, "Mail-Canary-3391 Smtp-Canary-5521", *PEM_LINES]
    script_output = "\n".join(lines)
    out = _stream(redactor, script_output.encode(), 16)
    for secret in ("Pq7-dsn-Canary-2291", "Replica-Canary-4410", GHP, "Mail-Canary-3391", "Smtp-Canary-5521", *PEM_LINES):
        assert secret.encode() not in out, out
    # A user name beside a password is not a credential (parity's REUSED rule): it stays readable.
    assert b"as mailer-bot" in out and "mailer-bot" not in values.values()


def test_the_parity_report_never_shows_a_secret_recognised_by_its_content(tmp_path: Path) -> None:
    extra = "conn: 'Server=db;Password=Cs-Canary-8812;'\nargs: ['migrate', '--db-password=Arg-Canary-7420']\n"
    (tmp_path / "app.yaml").write_text(APP_YAML + extra, encoding="utf-8")
    (tmp_path / "prod.yaml").write_text("database: {url: 'postgres://app@db/shop'}\nconn: other\nargs: [migrate]\n", encoding="utf-8")
    config = write_config(tmp_path, {"configuration": ["app.yaml"]}, {"configuration": ["prod.yaml"]})
    report = compare_environments(config, "staging", "production", release="v1.2")
    text = report.model_dump_json()
    assert "configuration.database.url" in text and "@db/shop" in text
    for secret in ("Pq7-dsn-Canary-2291", GHP, "Cs-Canary-8812", "Arg-Canary-7420", *PEM_LINES):
        assert secret not in text


def test_the_data_refresh_record_hides_secret_named_flags(tmp_path: Path) -> None:
    flags = {"checkout": True, "webhook_token": "Flag-Canary-0093", "integrations": {"apiKey": "Flag-Canary-0094", "url": "https://x:Flag-Canary-0095@hooks/y"}}
    (tmp_path / "s-flags.json").write_text(json.dumps(flags), encoding="utf-8")
    (tmp_path / "p-flags.json").write_text('{"checkout": true}', encoding="utf-8")
    config = write_config(tmp_path, {"flags": ["s-flags.json"]}, {"flags": ["p-flags.json"]})
    run_data_refresh(config, "staging", "v1.2", tmp_path / "artifacts")
    text = (tmp_path / "artifacts" / "staging-data-refresh.md").read_text(encoding="utf-8")
    assert "| webhook_token |" in text and "| checkout | true |" in text
    for secret in ("Flag-Canary-0093", "Flag-Canary-0094", "Flag-Canary-0095"):
        assert secret not in text


# -- the pre-seal scan: archives, binary files, large files -----------------------------------


def _context(tmp_path: Path) -> RunContext:
    config = write_config(tmp_path, {}, {})
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    return RunContext(config=config, release="v1.2", previous_release="v1.1", env="staging", artifacts=artifacts, redactor=Redactor({"DB_PASSWORD": CANARY}))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


#: file name -> (bytes a script wrote, what the refusal must say)
UNSEALABLE = {
    "logs.zip": (_zip({"app/a.log": b"ok\n", "app/b.log": b"password " + CANARY.encode() + b"\n"}), "member app/b.log"),
    "dump.gz": (gzip.compress(b"x" * 100_000 + CANARY.encode()), "gzip content"),
    "dump.bin": (bytes(range(256)) + CANARY.encode() + b"\xff\xfe", "not text"),
    "hex-in-zip.zip": (_zip({"k.txt": CANARY.encode().hex().encode()}), "member k.txt"),
    "damaged.zip": (_zip({"a.log": b"x" * 1000})[:-30], "cannot be opened as zip"),
    "nested.zip": (_zip({"inner.zip": _zip({"a.log": b"ok"})}), "inside an archive"),
    "named.zip": (_zip({f"dump-{CANARY.encode().hex()}.txt": b"ok"}), "a member's name"),
}


@pytest.mark.parametrize("name", list(UNSEALABLE))
def test_the_pre_seal_scan_never_rewrites_a_file_it_cannot_parse_and_refuses_to_seal_it(tmp_path: Path, name: str) -> None:
    ctx = _context(tmp_path)
    data, says = UNSEALABLE[name]
    (ctx.artifacts / name).write_bytes(data)
    (ctx.artifacts / "clean.zip").write_bytes(_zip({"a.log": b"nothing secret\n"}))
    (found,) = scrub_artifacts_folder(ctx)
    assert name in found and says in found and "kept as written" in found, found
    assert (ctx.artifacts / name).read_bytes() == data


def test_a_file_named_after_a_secret_is_refused_without_showing_its_name(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (ctx.artifacts / f"token-{quote(CANARY, safe='')}.txt").write_text("ok", encoding="utf-8")
    (found,) = scrub_artifacts_folder(ctx)
    assert "a file's name under" in found and "contains the value of DB_PASSWORD" in found and quote(CANARY, safe="") not in found


def test_the_pre_seal_scan_redacts_text_in_place_naming_the_file_and_line(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (ctx.artifacts / "notes.md").write_text(f"one\ntwo {html.escape(CANARY)}\n", encoding="utf-8")
    (found,) = scrub_artifacts_folder(ctx)
    assert "notes.md contained the value of DB_PASSWORD at line 2 (redacted in place)" in found
    assert (ctx.artifacts / "notes.md").read_text(encoding="utf-8") == "one\ntwo [REDACTED:DB_PASSWORD]\n"


def test_the_pre_seal_scan_streams_a_large_file_in_bounded_memory(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    size = 48 * 1024 * 1024
    line = b"2026-12-07T07:00:00Z INFO GET /api/orders 200 in 12ms\n"
    with open(ctx.artifacts / "big.log", "wb") as out:
        for _ in range(size // len(line) // 2):
            out.write(line)
        out.write(b"split " + CANARY.encode() + b"\n")  # lands across the scan's 1 MiB reads only by chance
        for _ in range(size // len(line) // 2):
            out.write(line)
    tracemalloc.start()
    try:
        (found,) = scrub_artifacts_folder(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "big.log contained the value of DB_PASSWORD at line" in found
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    with open(ctx.artifacts / "big.log", "rb") as handle:
        assert not any(CANARY.encode() in chunk for chunk in iter(lambda: handle.read(1 << 20), b""))


def test_the_pre_seal_scan_finds_a_secret_split_across_its_reads(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    # The scan reads 1 MiB at a time: the secret starts 4 bytes before the end of the first read.
    data = b"\0" + b"x" * (1024 * 1024 - 5) + CANARY.encode() + b"\n"
    (ctx.artifacts / "edge.dat").write_bytes(data)  # not text: found, never rewritten
    (found,) = scrub_artifacts_folder(ctx)
    assert "edge.dat (not text) contains the value of DB_PASSWORD" in found
    assert (ctx.artifacts / "edge.dat").read_bytes() == data


# -- everything a whole run writes, searched for every canary in every covered encoding ------

GATE1 = f"""
    import pytest
    from pytest_predeploy.harness.gates import load, require
    from pytest_predeploy.intake.parity import ParityReport, parity_problems
    pytestmark = pytest.mark.gate(1, "Intake Confirmation")
    TOKEN, CANARY = {GHP!r}, {CANARY!r}

    @pytest.mark.must("approvals")
    def test_approvals(intake):
        pass

    @pytest.mark.must("parity")
    def test_parity_clean(parity):
        require(parity_problems(load(parity, ParityReport)), "critical drift")

    @pytest.mark.guideline("data-refresh")
    def test_a_long_value_pytest_shortens():
        print("captured:", CANARY)
        value = "a" * 100 + TOKEN + "b" * 300
        assert value == "a" * 100 + TOKEN[:20] + "ZZZ"
"""
BUILD_URL = "https://ci-bot:ci-Canary-Token-5512@jenkins.internal/job/1/"
GIT_URL = "https://x-access-token:Git-Canary-Token-6623@git.internal/org/repo.git"


def _printing_parity(report: str) -> str:
    lines = [
        "import json, sys",
        f"for value in ({CANARY!r}, {GHP!r}):",
        f"    for form in {{name: form for name, form in {{}}.items()}} or {[*encodings(CANARY).values(), *encodings(GHP).values()]!r}:",
        "        print('form', form)",
        f"for line in {PEM!r}.splitlines():",
        "    print('2026-12-07 INFO key:', line, file=sys.stderr)",
        "print('dsn password Pq7-dsn-Canary-2291 and relay Mail-Canary-3391')",
        f"open(sys.argv[1], 'w').write({report!r})",
    ]
    return "\n".join(lines) + "\n"


def _everything_written(root: Path, terminal: str) -> dict[str, bytes]:
    written = {str(p.relative_to(root)): p.read_bytes() for p in (root / ".artifacts").rglob("*") if p.is_file()}
    with zipfile.ZipFile(root / ".artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip") as package:
        written |= {f"package:{name}": package.read(name) for name in package.namelist()}
    written["terminal"] = terminal.encode()
    return written


def test_no_canary_reaches_anything_a_run_writes_in_any_covered_encoding(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.signoff_project import parity_report
    from tests.signoff_project import project as signoff_project

    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    monkeypatch.setenv("BUILD_URL", BUILD_URL)
    monkeypatch.setenv("GIT_URL", GIT_URL)
    root = signoff_project(pytester, parity=_printing_parity(parity_report()))
    (root / "gates" / "test_gate1_intake.py").write_text(textwrap.dedent(GATE1), encoding="utf-8")
    (root / "staging.env").write_text(f'DB_PASSWORD="{CANARY}"\nGITHUB_TOKEN={GHP}\nTLS_KEY="{PEM}"\n', encoding="utf-8")
    (root / "app.yaml").write_text(APP_YAML, encoding="utf-8")
    config = yaml.safe_load((root / "predeploy.yaml").read_text(encoding="utf-8"))
    config["environments"] = {"staging": {"secrets": {"file": "staging.env"}, "configuration": ["app.yaml"]}, "production": {}}
    config["redact"] = {"env_vars": ["BUILD_URL"]}
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-rA", "-p", "no:cacheprovider")
    terminal = result.stdout.str() + result.stderr.str()
    # Sealed and waiting: listing BUILD_URL in redact.env_vars did not make the pre-seal scan fail.
    assert result.ret == 10, terminal
    assert "advisory: test_a_long_value_pytest_shortens" in terminal

    canaries = {
        **{f"DB_PASSWORD {name}": form for name, form in encodings(CANARY).items()},
        **{f"GITHUB_TOKEN {name}": form for name, form in encodings(GHP).items()},
        **{f"GITHUB_TOKEN first {n}": GHP[:n] for n in (12, 20)},
        **{f"GITHUB_TOKEN last {n}": GHP[-n:] for n in (12, 20)},
        "GITHUB_TOKEN shortened by pytest": GHP[:11] + "...",
        "GITHUB_TOKEN piece shown by a diff": GHP[10:20],
    }
    for case, value in {
        **{f"TLS_KEY line {i}": line for i, line in enumerate(PEM_LINES)},
        "DSN password in app.yaml": "Pq7-dsn-Canary-2291",
        "secret-named key in app.yaml": "Mail-Canary-3391",
        "BUILD_URL token (redact.env_vars)": "ci-Canary-Token-5512",
        "GIT_URL token (by content)": "Git-Canary-Token-6623",
    }.items():
        canaries |= {f"{case} {name}": form for name, form in encodings(value).items()}
    written = _everything_written(root, terminal)
    assert {"terminal", "package:pytest-report.html", "package:transcripts/parity.log"} <= set(written)
    leaks = [f"{case} in {where}" for case, form in canaries.items() for where, data in written.items() if form.encode() in data]
    assert leaks == []


def test_a_zip_a_script_wrote_with_a_secret_inside_fails_gate4_and_is_kept_as_written(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.signoff_project import parity_report
    from tests.signoff_project import project as signoff_project

    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    archive = _zip({"logs/app.log": b"connected with " + CANARY.encode() + b"\n"})
    script = f"import os, sys\nopen(os.path.join(os.environ['PREDEPLOY_ARTIFACTS'], 'logs.zip'), 'wb').write({archive!r})\nopen(sys.argv[1], 'w').write({parity_report()!r})\n"
    root = signoff_project(pytester, parity=script)
    (root / "staging.env").write_text(f'DB_PASSWORD="{CANARY}"\n', encoding="utf-8")
    config = yaml.safe_load((root / "predeploy.yaml").read_text(encoding="utf-8"))
    config["environments"]["staging"] = {"secrets": {"file": "staging.env"}}
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "Gate 4*FAILED*not built: a secret value was found in the artifacts folder*",
            "*logs.zip (a zip file) contains the value of staging/DB_PASSWORD at member logs/app.log: kept as written*",
        ]
    )
    assert (root / ".artifacts/pre-deployment/logs.zip").read_bytes() == archive
    assert not (root / ".artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip").exists()
