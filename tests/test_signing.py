"""Signed sign-offs: DSSE envelopes with real OpenSSH ed25519 keys, checked against a signers file."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pytest_predeploy.config import load_config
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.readiness.signing import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    Signers,
    authorize,
    load_signers,
    load_signing_key,
    pae,
    sign_envelope,
    verify_envelope,
)
from pytest_predeploy.readiness.signoff import record_signoff
from pytest_predeploy.tooling.scaffold import init_project, next_steps
from tests.sshkeys import KeyPair, make_key, make_rsa_key

DIGEST = "a" * 64
OTHER_DIGEST = "b" * 64


def statement(digest: str, approver: str, role: str, decision: str = "go") -> bytes:
    """A sign-off statement shaped as `predeploy approve` writes it."""
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "PRE-DEPLOYMENT-PACKAGE.zip", "digest": {"sha256": digest}}],
            "predicateType": "urn:pytest-predeploy:readiness-signoff:v1",
            "predicate": {"approver": approver, "role": role, "decision": decision, "release": "v1.2"},
        }
    ).encode()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, KeyPair]:
    return {name: make_key(tmp_path / "keys", name) for name in ("riley", "quinn", "mallory")}


def write_signers(path: Path, keys: dict[str, KeyPair]) -> Path:
    path.write_text(
        "# who may sign off which role\n"
        "signers:\n"
        "  - identity: riley@example.com\n"
        "    name: Riley Manager\n"
        "    aliases: [riley-gh]\n"
        "    roles: [release-manager]\n"
        "    keys:\n"
        f"      - {keys['riley'].public_line}\n"
        "  - identity: quinn@example.com\n"
        "    roles: [qa-lead]\n"
        "    keys:\n"
        f"      - {keys['quinn'].public_line}\n"
    )
    return path


@pytest.fixture
def signers(tmp_path: Path, keys: dict[str, KeyPair]) -> Signers:
    return load_signers(write_signers(tmp_path / "signers.yaml", keys))


def signed(key: KeyPair, payload: bytes) -> Envelope:
    return sign_envelope(payload, load_signing_key(key.private))


def test_pae_is_dsse_v1_byte_format() -> None:
    # The example of the DSSE protocol description: lengths are byte counts in ASCII decimal.
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("t\u00e9", b"") == b"DSSEv1 3 t\xc3\xa9 0 "


def test_key_id_is_the_openssh_fingerprint(keys: dict[str, KeyPair]) -> None:
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen not installed (apt-get install openssh-client)")
    printed = subprocess.run(["ssh-keygen", "-lf", str(keys["riley"].private)], capture_output=True, text=True, check=True).stdout
    assert load_signing_key(keys["riley"].private).keyid == printed.split()[1]


def test_valid_signature_by_a_listed_signer_for_their_role_counts(keys: dict[str, KeyPair], signers: Signers) -> None:
    envelope = signed(keys["riley"], statement(DIGEST, "riley@example.com", "release-manager"))
    # The envelope survives a round trip through its JSON form (what readiness-approval.json holds).
    envelope = Envelope.model_validate(json.loads(json.dumps(envelope.to_json())))
    check = verify_envelope(envelope, signers)
    assert check.problem is None
    assert [s.identity for s in check.signed_by] == ["riley@example.com"]
    assert check.payload == statement(DIGEST, "riley@example.com", "release-manager")
    assert authorize(check, signers, "Riley@Example.com", "release-manager") is None


def test_key_not_in_signers_file_does_not_count(keys: dict[str, KeyPair], signers: Signers) -> None:
    check = verify_envelope(signed(keys["mallory"], statement(DIGEST, "riley@example.com", "release-manager")), signers)
    assert check.signed_by == ()
    reason = authorize(check, signers, "riley@example.com", "release-manager")
    assert reason is not None and "signed by a key not listed in" in reason and load_signing_key(keys["mallory"].private).keyid in reason


def test_role_the_identity_may_not_sign_does_not_count(keys: dict[str, KeyPair], signers: Signers) -> None:
    check = verify_envelope(signed(keys["quinn"], statement(DIGEST, "quinn@example.com", "release-manager")), signers)
    assert check.problem is None
    assert authorize(check, signers, "quinn@example.com", "release-manager") == (
        f"quinn@example.com may not sign for 'release-manager' (allowed: qa-lead; see {signers.path})"
    )


def test_statement_naming_someone_else_than_the_key_owner_does_not_count(keys: dict[str, KeyPair], signers: Signers) -> None:
    # Quinn's key signing a statement that says Riley approved: the statement lies about who.
    check = verify_envelope(signed(keys["quinn"], statement(DIGEST, "riley@example.com", "release-manager")), signers)
    reason = authorize(check, signers, "riley@example.com", "release-manager")
    assert reason == "it names 'riley@example.com' but is signed by quinn@example.com's key, not theirs"
    reason = authorize(check, signers, "nobody@example.com", "qa-lead")
    assert reason is not None and "who is not in" in reason


def test_signature_moved_onto_another_digest_does_not_count(keys: dict[str, KeyPair], signers: Signers) -> None:
    genuine = signed(keys["riley"], statement(OTHER_DIGEST, "riley@example.com", "release-manager"))
    moved = genuine.model_copy(update={"payload": base64.b64encode(statement(DIGEST, "riley@example.com", "release-manager")).decode()})
    check = verify_envelope(moved, signers)
    assert check.signed_by == ()
    assert check.problem is not None and "does not verify with the listed key" in check.problem


def test_hand_edited_statement_does_not_count(keys: dict[str, KeyPair], signers: Signers) -> None:
    envelope = signed(keys["riley"], statement(DIGEST, "riley@example.com", "release-manager", decision="no-go"))
    data = envelope.to_json()
    edited = json.loads(base64.b64decode(data["payload"]))
    edited["predicate"]["decision"] = "go"
    data["payload"] = base64.b64encode(json.dumps(edited).encode()).decode()
    check = verify_envelope(Envelope.model_validate(data), signers)
    assert check.problem is not None and "changed after signing" in check.problem
    assert authorize(check, signers, "riley@example.com", "release-manager") == check.problem


def test_signature_under_another_payload_type_does_not_count(keys: dict[str, KeyPair], signers: Signers) -> None:
    payload = statement(DIGEST, "riley@example.com", "release-manager")
    envelope = sign_envelope(payload, load_signing_key(keys["riley"].private), payload_type="text/plain")
    check = verify_envelope(envelope, signers)
    assert check.problem == f"its payload type is 'text/plain', expected {INTOTO_PAYLOAD_TYPE!r}"
    # Relabelling it does not help: the type is part of what was signed.
    relabelled = envelope.model_copy(update={"payload_type": INTOTO_PAYLOAD_TYPE})
    assert verify_envelope(relabelled, signers).signed_by == ()


def test_garbage_signature_and_payload_are_reasons_not_errors(keys: dict[str, KeyPair], signers: Signers) -> None:
    envelope = signed(keys["riley"], statement(DIGEST, "riley@example.com", "release-manager"))
    bad_sig = envelope.model_copy(update={"signatures": [envelope.signatures[0].model_copy(update={"sig": "!!not base64"})]})
    assert verify_envelope(bad_sig, signers).signed_by == ()
    bad_payload = envelope.model_copy(update={"payload": "%%%"})
    assert verify_envelope(bad_payload, signers).problem == "its payload is not valid base64"


def test_passphrase_protected_key(tmp_path: Path, signers: Signers) -> None:
    pair = make_key(tmp_path / "locked", "locked", passphrase="correct horse")
    with pytest.raises(ConfigError, match=r"protected by a passphrase; give it in \$PREDEPLOY_KEY_PASSPHRASE"):
        load_signing_key(pair.private)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_signing_key(pair.private, b"wrong")
    assert load_signing_key(pair.private, b"correct horse").keyid.startswith("SHA256:")


def test_key_files_that_are_not_ed25519_private_keys_are_refused_with_what_to_do(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    public = keys["riley"].private.with_name("riley.pub")
    with pytest.raises(ConfigError, match=r"riley.pub: not an OpenSSH private key \(that is the public half"):
        load_signing_key(public)
    with pytest.raises(ConfigError, match=r"missing: signing key not found \(create one with `ssh-keygen -t ed25519"):
        load_signing_key(tmp_path / "missing")
    with pytest.raises(ConfigError, match="is a RSA key; sign-offs use ed25519 keys"):
        load_signing_key(make_rsa_key(tmp_path / "rsa", "id_rsa"))
    corrupt = tmp_path / "corrupt"
    secret_body = base64.b64encode(b"0123456789" * 20).decode()
    corrupt.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{secret_body}\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as raised:
        load_signing_key(corrupt)
    assert "cannot be read as an OpenSSH private key" in str(raised.value) and secret_body[:20] not in str(raised.value)


def test_signers_file_aliases_and_role_lookup(signers: Signers) -> None:
    riley = signers.find("RILEY@example.com")
    assert riley is not None and riley.describe() == "Riley Manager <riley@example.com>"
    assert signers.is_person(riley, "riley-gh") and not signers.is_person(riley, "quinn@example.com")
    assert [s.identity for s in signers.who_may_sign("qa-lead")] == ["quinn@example.com"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "signers:\n  - identity: a\n    roles: [qa-lead]\n    keys:\n      - ssh-rsa AAAAB3NzaC1yc2E x\n",
            r"signers.yaml:5: signers.0.keys.0: key type 'ssh-rsa' is not supported",
        ),
        (
            "signers:\n  - identity: a\n    roles: [qa-lead]\n    keys:\n      - ssh-ed25519 AAAAnotakey x\n",
            r"signers.yaml:5: signers.0.keys.0: not a valid ssh-ed25519 public key",
        ),
        ("signers:\n  - identity: a\n    roles: []\n    keys: [KEY]\n", r"signers.yaml:3: signers.0.roles: List should have at least 1 item"),
        ("signers:\n  - identity: a\n    roles: [qa-lead]\n    team: ops\n    keys: [KEY]\n", r"signers.yaml:4: signers.0.team: unknown field"),
        ("signers:\n  - identity: ' a'\n    roles: [qa-lead]\n    keys: [KEY]\n", r"signers.yaml:2: signers.0.identity: must be a non-empty name"),
        ("- identity: a\n", r"signers.yaml: expected a mapping with a 'signers' list"),
        (
            "signers:\n  - identity: a\n    roles: [qa-lead]\n    keys: [KEY]\n  - identity: A\n    roles: [qa-lead]\n    keys: [KEY2]\n",
            r"signers.yaml:5: signers.1: the name 'a' is also used by signers.0",
        ),
        (
            "signers:\n  - identity: a\n    roles: [qa-lead]\n    keys: [KEY]\n  - identity: b\n    roles: [qa-lead]\n    keys:\n      - KEY\n",
            r"signers.yaml:8: signers.1.keys.0: this key \(SHA256:.*\) is also listed for a; a key belongs to one person",
        ),
        ("signers:\n  - identity: a\n    roles: [qa-lead]\n    keys: [KEY]\n    keys: [KEY2]\n", r"signers.yaml:5: duplicate key 'keys'"),
    ],
)
def test_malformed_signers_file_names_file_line_and_field(tmp_path: Path, keys: dict[str, KeyPair], body: str, expected: str) -> None:
    path = tmp_path / "signers.yaml"
    path.write_text(body.replace("KEY2", keys["quinn"].public_line).replace("KEY", keys["riley"].public_line))
    with pytest.raises(ConfigError, match=expected) as raised:
        load_signers(path)
    assert "\n" not in str(raised.value) and "Traceback" not in str(raised.value)


def test_empty_signers_list_loads_so_gate_4_can_say_who_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "signers.yaml"
    path.write_text("signers: []\n")
    assert load_signers(path).entries == ()


def test_demo_signers_file_names_the_demo_only_keys() -> None:
    repo = Path(__file__).resolve().parents[1]
    signers = load_signers(repo / "demo/signers.yaml")
    owners = {}
    for name in ("riley-manager_ed25519", "quinn-qa_ed25519"):
        key = load_signing_key(repo / "demo/keys" / name)
        owner = signers.owner_of(key.public)
        assert owner is not None and "DEMO-ONLY" in (owner.name or "")
        owners[name] = owner.roles
    assert owners == {"riley-manager_ed25519": ["release-manager"], "quinn-qa_ed25519": ["qa-lead"]}
    assert "never use them" in (repo / "demo/keys/README.md").read_text()


def test_init_writes_a_signers_template_that_explains_keys_and_loads(tmp_path: Path) -> None:
    result = init_project(tmp_path / "repo")
    assert "predeploy/signers.yaml" in result.written
    template = tmp_path / "repo/predeploy/signers.yaml"
    assert "ssh-keygen -t ed25519" in template.read_text()
    assert load_signers(template).entries == ()
    config = load_config(tmp_path / "repo/predeploy.yaml")
    assert config.readiness.signers == template
    assert any("ssh-keygen -t ed25519" in step for step in next_steps(result))


def test_envelopes_the_git_record_holds_verify_with_an_independent_dsse_implementation(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    # securesystemslib (Secure Systems Lab's DSSE, as in-toto uses it) reads the bytes committed to
    # the predeploy/signoffs branch, not our model of them: what other tools would check is what we sign.
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]  # re-exported by securesystemslib.signer without __all__

    from pytest_predeploy.readiness.record import REF, read
    from pytest_predeploy.readiness.signing import fingerprint, parse_public_key

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for who, role in (("riley", "release-manager"), ("quinn", "qa-lead")):
        record_signoff(
            tmp_path / "readiness-approval.json",
            package_sha256=DIGEST,
            release="v1.2",
            role=role,
            approver=f"{who}@example.com",
            decision="go",
            key=load_signing_key(keys[who].private),
            repository=tmp_path,
        )
    entries = read(tmp_path).entries
    assert len(entries) == 2 and all(entry.path.startswith(f"{DIGEST}/") for entry in entries)

    def sslib_key(pair: KeyPair) -> SSlibKey:
        public = parse_public_key(pair.public_line)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SSlibKey(fingerprint(public), "ed25519", "ed25519", {"public": raw.hex()})

    for entry, who in zip(entries, ("riley", "quinn"), strict=True):
        committed = subprocess.run(["git", "show", f"{REF}:{entry.path}"], cwd=tmp_path, capture_output=True, check=True).stdout
        envelope = SslibEnvelope.from_dict(json.loads(committed))
        verified = envelope.verify([sslib_key(keys[who])], 1)
        assert list(verified) == [fingerprint(parse_public_key(keys[who].public_line))]
        assert json.loads(envelope.payload)["predicate"]["approver"] == f"{who}@example.com"
        with pytest.raises(VerificationError):
            SslibEnvelope.from_dict(json.loads(committed)).verify([sslib_key(keys["mallory"])], 1)
