"""Signed sign-offs: DSSE envelopes made with reviewers' OpenSSH ed25519 keys, and the signers file.

A sign-off is an in-toto statement; on its own anyone with write access to the artifacts folder
can write one naming anybody. Here the statement is wrapped in a DSSE envelope (the in-toto
attestation envelope, github.com/secure-systems-lab/dsse) signed with the reviewer's own key,
the kind ``ssh-keygen -t ed25519`` makes and git signs commits with. Whether a signature means
anything is decided by the signers file in the repository (like CODEOWNERS): each identity, its
public keys and the roles it may sign. A signature by a key that file does not list proves only
that someone owns a key.

The cryptography is the ``cryptography`` library's (key parsing and ed25519); the only thing
written here is DSSE's pre-authentication encoding, a fixed byte format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AfterValidator, Field, ValidationError, field_validator

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.fields import StrictModel, identity_key, is_blank
from pytest_predeploy.core.yamlfile import Position, line_of, load_yaml_file
from pytest_predeploy.readiness.settings import DEFAULT_SIGNERS_FILE as DEFAULT_SIGNERS_FILE

#: The payload type of an in-toto statement inside a DSSE envelope (in-toto attestation spec).
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: An OpenSSH private key file is a few hundred bytes; anything much bigger is not one.
MAX_KEY_FILE_BYTES = 64 * 1024
#: A signers file lists people; a megabyte of them is a mistake.
MAX_SIGNERS_FILE_BYTES = 1024 * 1024
_KEY_HELP = "create one with `ssh-keygen -t ed25519 -f ~/.ssh/predeploy_ed25519`"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, the bytes actually signed:
    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, lengths as ASCII decimal byte counts.
    Signing the type with the body means a signature cannot be replayed under another type."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def fingerprint(key: Ed25519PublicKey) -> str:
    """The key's OpenSSH fingerprint (``SHA256:...``, as ``ssh-keygen -lf`` prints it)."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def public_key_line(key: Ed25519PublicKey) -> str:
    """The key as one ``ssh-ed25519 AAAA...`` line, the form a signers file lists."""
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")


# --- the envelope -----------------------------------------------------------------------------


class Signature(StrictModel):
    """One signature of a DSSE envelope."""

    keyid: str = Field("", description="OpenSSH fingerprint of the signing key (SHA256:...); a hint only, the signature is checked against every listed key.")
    sig: str = Field(description="Base64 of the ed25519 signature over the envelope's pre-authentication encoding.")


class Envelope(StrictModel):
    """A DSSE envelope (in-toto attestation envelope) carrying one signed statement."""

    payload_type: str = Field(alias="payloadType", description="Media type of the payload (application/vnd.in-toto+json).")
    payload: str = Field(description="Base64 of the signed statement's bytes.")
    # A sign-off carries one signature; the cap bounds the work a hand-made file can ask for
    # (every signature is tried against every listed key).
    signatures: list[Signature] = Field(
        min_length=1, max_length=4, description="Signatures over the pre-authentication encoding of payloadType and payload (at most 4)."
    )

    def payload_bytes(self) -> bytes | None:
        """The decoded payload; None when it is not valid base64."""
        return _b64decode(self.payload)

    def to_json(self) -> dict[str, Any]:
        # by_alias: payloadType is the field name every DSSE implementation reads.
        return self.model_dump(mode="json", by_alias=True)


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A reviewer's private key, loaded for one signature."""

    path: Path
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def keyid(self) -> str:
        return fingerprint(self.public)


def load_signing_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    """The OpenSSH ed25519 private key at ``path``; any other file is a ConfigError naming it and
    saying what to do. The key's bytes never appear in a message."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: signing key not found ({_KEY_HELP})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected an OpenSSH private key file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: signing key cannot be read ({exc.strerror})") from None
    if len(data) > MAX_KEY_FILE_BYTES or b"-----BEGIN OPENSSH PRIVATE KEY-----" not in data:
        hint = " (that is the public half: give the file without .pub)" if data.lstrip().startswith(b"ssh-") else ""
        raise ConfigError(f"{path}: not an OpenSSH private key{hint}; expected a file starting '-----BEGIN OPENSSH PRIVATE KEY-----' ({_KEY_HELP})")
    try:
        key = serialization.load_ssh_private_key(data, password=passphrase)
    except TypeError:
        # cryptography raises TypeError both for "encrypted but no password" and the reverse.
        if passphrase is None:
            raise ConfigError(f"{path}: the key is protected by a passphrase; give it in $PREDEPLOY_KEY_PASSPHRASE") from None
        raise ConfigError(f"{path}: the key has no passphrase; unset $PREDEPLOY_KEY_PASSPHRASE") from None
    except UnsupportedAlgorithm:
        raise ConfigError(f"{path}: key type not supported; sign-offs use ed25519 keys ({_KEY_HELP})") from None
    except ValueError:
        # A wrong passphrase and a corrupt file look the same to the parser.
        what = "wrong passphrase or corrupt key" if passphrase is not None else "corrupt or unsupported OpenSSH key"
        raise ConfigError(f"{path}: cannot be read as an OpenSSH private key ({what})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: is a {type(key).__name__.removesuffix('PrivateKey').removeprefix('_')} key; sign-offs use ed25519 keys ({_KEY_HELP})")
    return SigningKey(path, key)


def parse_public_key(line: str) -> Ed25519PublicKey:
    """An ``ssh-ed25519 AAAA... [comment]`` line; ValueError saying what is wrong otherwise."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("expected an OpenSSH public key line 'ssh-ed25519 AAAA... comment' (the content of the .pub file)")
    if parts[0] != "ssh-ed25519":
        raise ValueError(f"key type {parts[0][:40]!r} is not supported; sign-offs use ed25519 keys ({_KEY_HELP})")
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise ValueError("not a valid ssh-ed25519 public key (copy the whole line of the .pub file)") from None
    if isinstance(key, Ed25519PublicKey):
        return key
    raise ValueError("not an ed25519 public key")


def sign_envelope(payload: bytes, key: SigningKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    """A DSSE envelope over ``payload`` with one signature by ``key``."""
    signature = key.private.sign(pae(payload_type, payload))
    return Envelope(
        payload_type=payload_type,
        payload=base64.b64encode(payload).decode("ascii"),
        signatures=[Signature(keyid=key.keyid, sig=base64.b64encode(signature).decode("ascii"))],
    )


# --- the signers file -------------------------------------------------------------------------


def _public_key_line(line: str) -> str:
    parse_public_key(line)
    return line


#: Checked one by one, so an error names the line of the key itself.
PublicKeyLine = Annotated[str, AfterValidator(_public_key_line)]


class Signer(StrictModel):
    """One person who may sign off, with their keys and the roles they may sign for."""

    identity: str = Field(
        min_length=1, description="Who this is, as sign-offs name them (e.g. an e-mail address). Unique in the file, compared case-insensitively."
    )
    name: str | None = Field(None, description="Display name shown beside the identity in reports.")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names this person runs the protocol under (CI login such as $GITHUB_ACTOR, Unix user): used to recognise them as the rehearsal's operator.",
    )
    roles: list[str] = Field(min_length=1, description="The roles this person may sign for (e.g. release-manager).")
    keys: list[PublicKeyLine] = Field(
        min_length=1, description="Their OpenSSH ed25519 public keys, one 'ssh-ed25519 AAAA... comment' line each (the .pub file)."
    )

    @field_validator("identity", "aliases", "roles", mode="after")
    @classmethod
    def _no_blank(cls, value: str | list[str]) -> str | list[str]:
        # A blank or padded name never matches what approve records; say so at the line.
        for item in [value] if isinstance(value, str) else value:
            if is_blank(item) or item != item.strip():
                raise ValueError("must be a non-empty name (not only invisible characters) without leading or trailing spaces")
        return value

    def names(self) -> set[str]:
        return {identity_key(self.identity), *(identity_key(alias) for alias in self.aliases)}

    def describe(self) -> str:
        return f"{self.name} <{self.identity}>" if self.name else self.identity


class SignersFile(StrictModel):
    """The signers file: everyone who may sign off this repository's releases."""

    signers: list[Signer] = Field(description="One entry per person.")


@dataclass(frozen=True)
class Signers:
    """A loaded signers file: who owns which key, and who may sign which role."""

    path: Path
    entries: tuple[Signer, ...]
    #: Fingerprint -> (owner, public key); a key belongs to exactly one identity.
    keys: dict[str, tuple[Signer, Ed25519PublicKey]]

    def find(self, identity: str) -> Signer | None:
        wanted = identity_key(identity)
        return next((signer for signer in self.entries if signer.identity.casefold() == wanted), None)

    def owner_of(self, key: Ed25519PublicKey) -> Signer | None:
        found = self.keys.get(fingerprint(key))
        return found[0] if found else None

    def who_may_sign(self, role: str) -> list[Signer]:
        return [signer for signer in self.entries if role in signer.roles]

    def is_person(self, signer: Signer, name: str | None) -> bool:
        """Whether ``name`` (an operator as the run recorded it) is ``signer`` or one of their aliases."""
        return name is not None and identity_key(name) in signer.names()


def _signers_error(path: Path, error: ValidationError, lines: dict[Position, int]) -> ConfigError:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        line = line_of(lines, loc)
        where = f"{path}:{line}" if line else str(path)
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (a signer has identity, name, aliases, roles, keys)"
        elif item["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{where}: {field}: {message}")
    return ConfigError(problems[0] if len(problems) == 1 else "invalid signers file:\n  " + "\n  ".join(problems))


#: The copy of the signers file sealed into the package (so its sign-offs can be checked from it alone).
SEALED_SIGNERS = "signers.yaml"


def load_signers(path: Path) -> Signers:
    """Load and check the signers file; every problem is a ConfigError naming file, line and
    field. An identity listed twice, or one key listed for two identities, is refused: a
    signature must name exactly one person."""
    if not path.exists():
        raise ConfigError(
            f"{path}: signers file not found; list who may sign which role there (identity, roles, OpenSSH ed25519 public keys; "
            "`predeploy init` writes a template), or point readiness.signers at it"
        )
    data, lines = load_yaml_file(path, "signers file", MAX_SIGNERS_FILE_BYTES)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'signers' list at the top level (see `predeploy init`'s template)")
    try:
        parsed = SignersFile.model_validate(data)
    except ValidationError as exc:
        raise _signers_error(path, exc, lines) from None
    names: dict[str, int] = {}
    keys: dict[str, tuple[Signer, Ed25519PublicKey]] = {}
    for index, signer in enumerate(parsed.signers):
        for name in signer.names():
            if name in names and names[name] != index:
                raise ConfigError(
                    f"{path}:{line_of(lines, ('signers', index, 'identity'))}: signers.{index}: the name {name!r} is also used by signers.{names[name]}; "
                    "each identity and alias names one person"
                )
            names[name] = index
        for key_index, line in enumerate(signer.keys):
            key = parse_public_key(line)
            keyid = fingerprint(key)
            if keyid in keys and keys[keyid][0] is not signer:
                raise ConfigError(
                    f"{path}:{line_of(lines, ('signers', index, 'keys', key_index))}: signers.{index}.keys.{key_index}: this key ({keyid}) is also listed for "
                    f"{keys[keyid][0].identity}; a key belongs to one person"
                )
            keys[keyid] = (signer, key)
    return Signers(path, tuple(parsed.signers), keys)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvelopeCheck:
    """What an envelope proves: the payload, and which listed people's keys signed it."""

    payload: bytes | None
    #: The listed people whose key verifies one of the envelope's signatures.
    signed_by: tuple[Signer, ...]
    #: The key ids the signatures name (untrusted hints, for the display).
    keyids: tuple[str, ...]
    #: Why no listed person's signature verifies; None when one does.
    problem: str | None

    def verified_for(self, identity: str) -> Signer | None:
        wanted = identity_key(identity)
        return next((signer for signer in self.signed_by if signer.identity.casefold() == wanted), None)


def verify_envelope(envelope: Envelope, signers: Signers, payload_type: str = INTOTO_PAYLOAD_TYPE) -> EnvelopeCheck:
    """Check every signature of ``envelope`` against every key of the signers file. The key id is
    not trusted to pick the key (anyone can write any key id), only shown."""
    keyids = tuple(signature.keyid for signature in envelope.signatures)
    payload = envelope.payload_bytes()
    if payload is None:
        return EnvelopeCheck(None, (), keyids, "its payload is not valid base64")
    if envelope.payload_type != payload_type:
        return EnvelopeCheck(payload, (), keyids, f"its payload type is {envelope.payload_type[:80]!r}, expected {payload_type!r}")
    message = pae(envelope.payload_type, payload)
    signed_by: list[Signer] = []
    for signature in envelope.signatures:
        raw = _b64decode(signature.sig)
        if raw is None:
            continue
        for signer, key in signers.keys.values():
            try:
                key.verify(raw, message)
            except InvalidSignature:
                continue
            if signer not in signed_by:
                signed_by.append(signer)
            break
    if signed_by:
        return EnvelopeCheck(payload, tuple(signed_by), keyids, None)
    named = ", ".join(keyid for keyid in keyids if keyid) or "no key id"
    if any(keyid in signers.keys for keyid in keyids):
        problem = f"its signature does not verify with the listed key ({named}): the statement was changed after signing, or the signature is not over it"
    else:
        problem = f"it is signed by a key not listed in {signers.path} ({named})"
    return EnvelopeCheck(payload, (), keyids, problem)


def authorize(check: EnvelopeCheck, signers: Signers, identity: str, role: str) -> str | None:
    """Why a verified envelope whose statement names ``identity`` signing as ``role`` does not
    count; None when it does: the statement's identity must be the one whose key signed it, and
    the signers file must let that identity sign that role."""
    if check.problem is not None:
        return check.problem
    signer = check.verified_for(identity)
    if signer is None:
        by = ", ".join(s.identity for s in check.signed_by)
        listed = signers.find(identity)
        if listed is None:
            return f"it names {identity!r}, who is not in {signers.path}, but is signed by {by}"
        return f"it names {identity!r} but is signed by {by}'s key, not theirs"
    if role not in signer.roles:
        return f"{signer.identity} may not sign for {role!r} (allowed: {', '.join(signer.roles)}; see {signers.path})"
    return None
