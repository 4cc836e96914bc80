"""Where private keys are kept and how they are opened: PEM files (plain or encrypted PKCS#8,
with a passphrase from a file, KPLEDGER_PASSPHRASE or a prompt) and RFC 7512 PKCS#11 URIs whose
key signs inside its token (CKM_EDDSA). One way, for every place a key is accepted."""

from __future__ import annotations

import getpass
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ledger.errors import MalformedInput, WrongPassphrase
from ledger.hashing import tagged
from ledger.keys import EncryptionKey, Signer, SigningKey, is_encrypted_pem, verify

#: Where a passphrase comes from when --passphrase-file is not given (SPEC 6).
PASSPHRASE_ENV = "KPLEDGER_PASSPHRASE"
#: A URI names a key in a hardware token when it starts so (RFC 7512).
PKCS11_SCHEME = "pkcs11:"
#: The DER encoding of the OID of Ed25519 (RFC 8410), as CKA_EC_PARAMS of a CKK_EC_EDWARDS key.
ED25519_EC_PARAMS = bytes.fromhex("06032b6570")
#: The longest passphrase or PIN file read (a mistaken path to a large file is not slurped).
_MAX_SECRET_FILE = 4096


class CustodyError(Exception):
    """A key cannot be opened: unreadable, malformed, encrypted without the right passphrase, or
    in a token that cannot be reached. The message says which and what to do; the CLI exits 2."""


# -- passphrases ---------------------------------------------------------------------------------
def read_secret_file(path: Path, what: str) -> bytes:
    """A passphrase or PIN kept in a file: its first line, without the line end."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise CustodyError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_SECRET_FILE:
        raise CustodyError(f"the {what} file {path} is over {_MAX_SECRET_FILE} bytes")
    secret = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not secret:
        raise CustodyError(f"the {what} file {path} is empty")
    return secret


@dataclass
class Passphrase:
    """Where the passphrase of encrypted keys comes from: --passphrase-file, else the
    KPLEDGER_PASSPHRASE environment variable, else a prompt on the terminal (only when there is
    one). Asked for only when an encrypted key is met, then remembered for the other keys."""

    file: Path | None = None
    prompt: bool = True
    _value: bytes | None = field(default=None, repr=False)

    def get(self, what: str) -> bytes:
        if self._value is not None:
            return self._value
        if self.file is not None:
            self._value = read_secret_file(self.file, "passphrase")
        elif os.environ.get(PASSPHRASE_ENV):
            self._value = os.environ[PASSPHRASE_ENV].encode("utf-8")
        elif self.prompt and sys.stdin is not None and sys.stdin.isatty():
            typed = getpass.getpass(f"passphrase for {what}: ")
            if not typed:
                raise CustodyError(f"{what} is encrypted and no passphrase was typed")
            self._value = typed.encode("utf-8")
        else:
            raise CustodyError(
                f"{what} is encrypted: give its passphrase with --passphrase-file FILE or "
                f"{PASSPHRASE_ENV} (no terminal to ask on)"
            )
        return self._value

    @property
    def given(self) -> bool:
        """Whether a passphrase is at hand without asking (a file or the environment)."""
        return self.file is not None or bool(os.environ.get(PASSPHRASE_ENV))


def new_passphrase(file: Path) -> bytes:
    """The passphrase `network init --passphrase-file` encrypts new keys with (at least 8 bytes)."""
    secret = read_secret_file(file, "passphrase")
    if len(secret) < 8:
        raise CustodyError(f"the passphrase in {file} is shorter than 8 characters")
    return secret


# -- PEM files -----------------------------------------------------------------------------------
def _read_pem(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CustodyError(f"cannot read the key {path}: {exc.strerror}") from exc


def _open_pem(path: Path, passphrase: Passphrase | None, load: Callable[..., Any]) -> Any:
    data = _read_pem(path)
    secret = None
    if is_encrypted_pem(data):
        if passphrase is None:
            raise CustodyError(f"{path} is encrypted and this command takes no passphrase")
        secret = passphrase.get(str(path))
    try:
        return load(data, secret)
    except WrongPassphrase as exc:
        raise CustodyError(f"{path}: {exc.message}") from exc
    except MalformedInput as exc:
        raise CustodyError(f"{path}: {exc.message}") from exc


def load_signer(
    ref: str | Path, passphrase: Passphrase | None = None, base: Path | None = None
) -> Signer:
    """The Ed25519 signer `ref` names: a PKCS#11 URI, or a PEM file (relative to `base`)."""
    text = str(ref)
    if text.startswith(PKCS11_SCHEME):
        return Pkcs11Signer.open(Pkcs11Uri.parse(text, base))
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path
    key: SigningKey = _open_pem(path, passphrase, SigningKey.from_pem)
    return key


def load_signing_key(path: Path, passphrase: Passphrase | None = None) -> SigningKey:
    """An Ed25519 key from a PEM file only (what `key hsm-import` puts into a token)."""
    key: SigningKey = _open_pem(path, passphrase, SigningKey.from_pem)
    return key


def load_encryption_key(path: Path, passphrase: Passphrase | None = None) -> EncryptionKey:
    key: EncryptionKey = _open_pem(path, passphrase, EncryptionKey.from_pem)
    return key


# -- PKCS#11 -------------------------------------------------------------------------------------
#: The path attributes of RFC 7512 section 2.3 that name a token or an object; we match on these.
_PATH_ATTRIBUTES = frozenset(
    {"token", "object", "id", "type", "manufacturer", "model", "serial", "slot-id"}
)
#: Path attributes that only describe the library or slot; allowed, not matched on.
_IGNORED_ATTRIBUTES = frozenset(
    {
        "library-description",
        "library-manufacturer",
        "library-version",
        "slot-description",
        "slot-manufacturer",
    }
)


@dataclass(frozen=True)
class Pkcs11Uri:
    """An RFC 7512 URI naming one private key: `pkcs11:token=T;object=O?module-path=...&pin-value=...`
    (or `pin-source=file:/path`). `module-path` is the PKCS#11 library to load."""

    text: str
    module_path: str
    token: str | None = None
    serial: str | None = None
    object: str | None = None
    id: bytes | None = None
    pin: bytes | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, base: Path | None = None) -> Pkcs11Uri:
        if not text.startswith(PKCS11_SCHEME):
            raise CustodyError(f"{text!r} is not a pkcs11: URI")
        path_part, _, query_part = text[len(PKCS11_SCHEME) :].partition("?")
        attrs: dict[str, str] = {}
        raw_id: bytes | None = None
        for item in [p for p in path_part.split(";") if p]:
            name, eq, value = item.partition("=")
            name = name.strip().lower()
            if not eq or (name not in _PATH_ATTRIBUTES and name not in _IGNORED_ATTRIBUTES):
                raise CustodyError(
                    f"{_shown(text)}: {item.split('=')[0]!r} is not an RFC 7512 path attribute "
                    f"(token, object, id, serial, type ...)"
                )
            if name in attrs:
                raise CustodyError(f"{_shown(text)}: {name!r} is given twice")
            if name == "id":
                raw_id = unquote(value, encoding="latin-1").encode("latin-1")
            attrs[name] = unquote(value)
        query: dict[str, str] = {}
        for item in [p for p in query_part.split("&") if p]:
            name, eq, value = item.partition("=")
            name = name.strip().lower()
            if not eq or name not in {"module-path", "module-name", "pin-value", "pin-source"}:
                raise CustodyError(
                    f"{_shown(text)}: {name!r} is not a query attribute this node reads "
                    f"(module-path, pin-value, pin-source)"
                )
            query[name] = unquote(value)
        if attrs.get("type", "private") != "private":
            raise CustodyError(f"{_shown(text)}: type={attrs['type']}: a signing key is private")
        module = query.get("module-path")
        if not module:
            raise CustodyError(
                f"{_shown(text)}: name the token's PKCS#11 library with ?module-path=/path/lib.so"
            )
        if not (attrs.get("object") or raw_id):
            raise CustodyError(f"{_shown(text)}: name the key with object=LABEL or id=%01...")
        if not (attrs.get("token") or attrs.get("serial")):
            raise CustodyError(f"{_shown(text)}: name the token with token=LABEL or serial=...")
        pin: bytes | None = None
        if "pin-value" in query and "pin-source" in query:
            raise CustodyError(f"{_shown(text)}: give pin-value or pin-source, not both")
        if "pin-value" in query:
            pin = query["pin-value"].encode("utf-8")
        elif "pin-source" in query:
            source = query["pin-source"]
            if source.startswith("file:"):
                source = source[len("file:") :]
                if source.startswith("//"):
                    source = source[2:]  # file:///abs/path
            if source.startswith("|"):
                raise CustodyError(f"{_shown(text)}: pin-source runs no programs; name a file")
            pin_path = Path(source)
            if base is not None and not pin_path.is_absolute():
                pin_path = base / pin_path
            pin = read_secret_file(pin_path, "PIN")
        return cls(
            text=text,
            module_path=module,
            token=attrs.get("token"),
            serial=attrs.get("serial"),
            object=attrs.get("object"),
            id=raw_id,
            pin=pin,
        )

    @property
    def shown(self) -> str:
        return _shown(self.text)


def _shown(text: str) -> str:
    """A URI as logs and messages may show it: a pin-value is never printed."""
    path_part, sep, query_part = text.partition("?")
    if not sep:
        return text
    items = [
        "pin-value=[redacted]" if item.lower().startswith("pin-value=") else item
        for item in query_part.split("&")
    ]
    return f"{path_part}?{'&'.join(items)}"


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as exc:  # pragma: no cover - python-pkcs11 is a declared dependency
        raise CustodyError("PKCS#11 keys need the python-pkcs11 package") from exc
    return pkcs11


class _TokenSession:
    """One logged-in session per token and process: a token logs a user in once for all its
    sessions (a second C_Login is refused), and a session is used by one thread at a time."""

    _open: dict[tuple[str, str | None, str | None], _TokenSession] = {}  # noqa: RUF012
    _libs: dict[str, Any] = {}  # noqa: RUF012
    _guard = threading.Lock()

    def __init__(self, uri: Pkcs11Uri) -> None:
        self.uri = uri
        self.lock = threading.Lock()
        self.session: Any = None
        self.connect()

    @classmethod
    def get(cls, uri: Pkcs11Uri) -> _TokenSession:
        key = (os.path.realpath(uri.module_path), uri.token, uri.serial)
        with cls._guard:
            found = cls._open.get(key)
            if found is None:
                found = cls._open[key] = cls(uri)
            return found

    def _lib(self) -> Any:
        pkcs11 = _pkcs11()
        path = os.path.realpath(self.uri.module_path)
        lib = self._libs.get(path)
        if lib is None:
            if not os.path.exists(path):
                raise CustodyError(
                    f"{self.uri.shown}: no PKCS#11 library at {self.uri.module_path}"
                )
            try:
                lib = self._libs[path] = pkcs11.lib(path)
            except pkcs11.PKCS11Error as exc:
                raise CustodyError(
                    f"{self.uri.shown}: {self.uri.module_path} is not a PKCS#11 library ({exc})"
                ) from exc
        return lib

    def connect(self) -> None:
        pkcs11 = _pkcs11()
        lib = self._lib()
        selector = {"token_label": self.uri.token} if self.uri.token else {}
        if self.uri.serial:
            selector["token_serial"] = self.uri.serial
        try:
            token = lib.get_token(**selector)
        except pkcs11.NoSuchToken as exc:
            raise CustodyError(
                f"{self.uri.shown}: no such token in {self.uri.module_path}"
            ) from exc
        except pkcs11.MultipleTokensReturned as exc:
            raise CustodyError(f"{self.uri.shown}: several tokens match; add serial=") from exc
        if self.uri.pin is None:
            raise CustodyError(
                f"{self.uri.shown}: give the token's PIN with pin-source=file:/path (or pin-value)"
            )
        try:
            self.session = token.open(user_pin=self.uri.pin.decode("utf-8"), rw=True)
        except pkcs11.UserAlreadyLoggedIn:
            # Logged in by another program's session of this process (python-pkcs11 logs in on
            # open): a session without login shares that login.
            self.session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange) as exc:
            raise CustodyError(f"{self.uri.shown}: the token refused the PIN") from exc
        except pkcs11.PinLocked as exc:
            raise CustodyError(f"{self.uri.shown}: the token's PIN is locked") from exc
        except pkcs11.PKCS11Error as exc:
            raise CustodyError(f"{self.uri.shown}: cannot open the token ({exc!r})") from exc


class Pkcs11Signer:
    """An Ed25519 key that never leaves its token: every signature is made inside it with
    CKM_EDDSA (PureEdDSA, RFC 8032), over the same tagged bytes SigningKey signs."""

    def __init__(self, uri: Pkcs11Uri, session: _TokenSession, key: Any, public: bytes) -> None:
        self.uri = uri
        self._session = session
        self._key = key
        self._public = public

    @property
    def public_bytes(self) -> bytes:
        return self._public

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.uri.shown})"

    @classmethod
    def open(cls, uri: Pkcs11Uri) -> Pkcs11Signer:
        pkcs11 = _pkcs11()
        session = _TokenSession.get(uri)
        with session.lock:
            private = _find(session.session, uri, pkcs11.ObjectClass.PRIVATE_KEY)
            public_object = _find(session.session, uri, pkcs11.ObjectClass.PUBLIC_KEY)
            try:
                key_type = private[pkcs11.Attribute.KEY_TYPE]
                point = bytes(public_object[pkcs11.Attribute.EC_POINT])
            except pkcs11.PKCS11Error as exc:
                raise CustodyError(
                    f"{uri.shown}: cannot read the key's attributes ({exc!r})"
                ) from exc
        if key_type != pkcs11.KeyType.EC_EDWARDS:
            raise CustodyError(f"{uri.shown}: the key is not an Ed25519 (CKK_EC_EDWARDS) key")
        public = _unwrap_point(point)
        if public is None:
            raise CustodyError(f"{uri.shown}: the public key object holds no Ed25519 point")
        signer = cls(uri, session, private, public)
        # The public object could belong to another key: a probe signature proves the pair.
        probe = b"kp/custody-probe"
        if not verify(public, probe, b"", signer.sign(probe, b"")):
            raise CustodyError(f"{uri.shown}: the token's private and public keys do not match")
        return signer

    def sign(self, tag: bytes, payload: bytes) -> bytes:
        return self.sign_raw(tagged(tag, payload))

    def sign_raw(self, message: bytes) -> bytes:
        pkcs11 = _pkcs11()
        with self._session.lock:
            try:
                return bytes(self._key.sign(message, mechanism=pkcs11.Mechanism.EDDSA))
            except (pkcs11.SessionClosed, pkcs11.SessionHandleInvalid, pkcs11.DeviceRemoved):
                pass  # the token restarted or was replugged: open a new session, once
            self._session.connect()
            self._key = _find(self._session.session, self.uri, pkcs11.ObjectClass.PRIVATE_KEY)
            return bytes(self._key.sign(message, mechanism=pkcs11.Mechanism.EDDSA))


def _find(session: Any, uri: Pkcs11Uri, object_class: Any) -> Any:
    pkcs11 = _pkcs11()
    query: dict[str, Any] = {"object_class": object_class}
    if uri.object:
        query["label"] = uri.object
    if uri.id is not None:
        query["id"] = uri.id
    try:
        return session.get_key(**query)
    except pkcs11.NoSuchKey as exc:
        kind = "private" if object_class == pkcs11.ObjectClass.PRIVATE_KEY else "public"
        raise CustodyError(f"{uri.shown}: the token holds no such {kind} key") from exc
    except pkcs11.MultipleObjectsReturned as exc:
        raise CustodyError(f"{uri.shown}: several keys match; name it with id=") from exc


def _unwrap_point(point: bytes) -> bytes | None:
    """CKA_EC_POINT of an Ed25519 key: the 32 bytes, DER OCTET STRING-wrapped (PKCS#11 3.0) or not."""
    if len(point) == 34 and point[:2] == b"\x04\x20":
        return point[2:]
    if len(point) == 32:
        return point
    return None


def hsm_import(key: SigningKey, uri: Pkcs11Uri) -> Pkcs11Signer:
    """Put `key` into the token `uri` names, as a private key that signs and cannot be read
    back (sensitive, not extractable) and its public key, both labelled and id'd as the URI
    says; returns the token's signer. Refuses when the token already holds a key so named."""
    pkcs11 = _pkcs11()
    session = _TokenSession.get(uri)
    label = uri.object if uri.object else key.key_id
    key_id = uri.id if uri.id is not None else key.public_bytes[:8]
    with session.lock:
        query: dict[Any, Any] = {pkcs11.Attribute.LABEL: label} if uri.object else {}
        if uri.id is not None:
            query[pkcs11.Attribute.ID] = uri.id
        if any(True for _ in session.session.get_objects(query)):
            raise CustodyError(f"{uri.shown}: the token already holds an object so named")
        common = {
            pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.EC_EDWARDS,
            pkcs11.Attribute.TOKEN: True,
            pkcs11.Attribute.LABEL: label,
            pkcs11.Attribute.ID: key_id,
            pkcs11.Attribute.EC_PARAMS: ED25519_EC_PARAMS,
        }
        try:
            session.session.create_object(
                {
                    **common,
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                    pkcs11.Attribute.PRIVATE: True,
                    pkcs11.Attribute.SENSITIVE: True,
                    pkcs11.Attribute.EXTRACTABLE: False,
                    pkcs11.Attribute.SIGN: True,
                    pkcs11.Attribute.VALUE: key.seed(),
                }
            )
            session.session.create_object(
                {
                    **common,
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY,
                    pkcs11.Attribute.VERIFY: True,
                    pkcs11.Attribute.EC_POINT: b"\x04\x20" + key.public_bytes,
                }
            )
        except pkcs11.PKCS11Error as exc:
            raise CustodyError(f"{uri.shown}: the token refused the key ({exc!r})") from exc
    signer = Pkcs11Signer.open(uri)
    if signer.public_bytes != key.public_bytes:  # pragma: no cover - the probe checks the pair
        raise CustodyError(f"{uri.shown}: the token's key is not the one imported")
    return signer
