"""node/custody.py: encrypted PEM keys and their passphrase, PKCS#11 URIs, signing inside a
SoftHSM2 token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import MalformedInput, WrongPassphrase
from ledger.keys import EncryptionKey, Signer, SigningKey, verify
from node.custody import (
    PASSPHRASE_ENV,
    CustodyError,
    Passphrase,
    Pkcs11Signer,
    Pkcs11Uri,
    hsm_import,
    load_encryption_key,
    load_signer,
)
from tests.softhsm import USER_PIN, SoftHsm


# -- encrypted PEM -------------------------------------------------------------------------------
def test_encrypted_pem_opens_with_its_passphrase_only() -> None:
    key = SigningKey.generate()
    pem = key.to_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key.seed() not in pem
    assert SigningKey.from_pem(pem, b"correct horse").public_bytes == key.public_bytes
    with pytest.raises(WrongPassphrase, match="does not open"):
        SigningKey.from_pem(pem, b"wrong horse")
    with pytest.raises(WrongPassphrase, match="no passphrase"):
        SigningKey.from_pem(pem)
    # A plain key still opens without one, and with one (ignored).
    assert SigningKey.from_pem(key.to_pem()).public_bytes == key.public_bytes
    assert SigningKey.from_pem(key.to_pem(), b"x").public_bytes == key.public_bytes


def test_encrypted_pem_is_pbes2_with_many_pbkdf2_rounds() -> None:
    """OpenSSL reads it, and its KDF is PBKDF2-HMAC-SHA256 at 600,000 rounds (not 2,048)."""
    from cryptography.hazmat.primitives import serialization

    encryption = EncryptionKey.generate()
    pem = encryption.to_pem(b"pass phrase")
    opened = serialization.load_pem_private_key(pem, password=b"pass phrase")
    assert EncryptionKey(opened).public_bytes == encryption.public_bytes  # type: ignore[arg-type]
    der = b"".join(__import__("base64").b64decode(line) for line in pem.splitlines()[1:-1])
    assert bytes.fromhex("06092a864886f70d01050d") in der  # PBES2
    assert bytes.fromhex("06082a864886f70d0209") in der  # hmacWithSHA256
    assert bytes.fromhex("02030927c0") in der  # 600000 iterations
    assert bytes.fromhex("060960864801650304012a") in der  # AES-256-CBC


def test_passphrase_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    path = tmp_path / "k.pem"
    path.write_bytes(key.to_pem(b"from the file"))
    secret = tmp_path / "pass.txt"
    secret.write_text("from the file\n")
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    assert load_signer(path, Passphrase(secret)).public_bytes == key.public_bytes
    monkeypatch.setenv(PASSPHRASE_ENV, "from the file")
    assert load_signer(path, Passphrase()).public_bytes == key.public_bytes
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(CustodyError, match="does not open"):
        load_signer(path, Passphrase())
    # The file wins over the environment.
    assert load_signer(path, Passphrase(secret)).public_bytes == key.public_bytes
    monkeypatch.delenv(PASSPHRASE_ENV)
    # No file, no environment, no terminal: a clear refusal, not a hang on a prompt.
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115
    with pytest.raises(CustodyError, match="--passphrase-file"):
        load_signer(path, Passphrase())
    with pytest.raises(CustodyError, match="cannot read the passphrase file"):
        load_signer(path, Passphrase(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(CustodyError, match="empty"):
        load_signer(path, Passphrase(tmp_path / "empty.txt"))


def test_unreadable_and_malformed_keys(tmp_path: Path) -> None:
    with pytest.raises(CustodyError, match="cannot read the key"):
        load_signer(tmp_path / "none.pem")
    (tmp_path / "junk.pem").write_bytes(b"not a key")
    with pytest.raises(CustodyError, match="not a PKCS#8"):
        load_signer(tmp_path / "junk.pem")
    (tmp_path / "x.pem").write_bytes(EncryptionKey.generate().to_pem())
    with pytest.raises(CustodyError, match="not an Ed25519"):
        load_signer(tmp_path / "x.pem")
    (tmp_path / "e.pem").write_bytes(EncryptionKey.generate().to_pem(b"secret-phrase"))
    with pytest.raises(CustodyError, match="does not open"):
        load_encryption_key(tmp_path / "e.pem", Passphrase(_file(tmp_path, "bad-phrase")))
    assert isinstance(
        load_encryption_key(tmp_path / "e.pem", Passphrase(_file(tmp_path, "secret-phrase"))),
        EncryptionKey,
    )
    assert issubclass(WrongPassphrase, MalformedInput)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.txt"
    path.write_text(text + "\n")
    return path


# -- PKCS#11 URIs --------------------------------------------------------------------------------
def test_uri_parsing(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("4321\n")
    uri = Pkcs11Uri.parse(
        "pkcs11:token=KP%20Token;object=authority;id=%01%ff?module-path=/lib/x.so&pin-source=file:pin",
        base=tmp_path,
    )
    assert (uri.token, uri.object, uri.id, uri.module_path, uri.pin) == (
        "KP Token",
        "authority",
        b"\x01\xff",
        "/lib/x.so",
        b"4321",
    )
    shown = Pkcs11Uri.parse("pkcs11:token=T;object=O?module-path=/m.so&pin-value=9999").shown
    assert "9999" not in shown and "pin-value=[redacted]" in shown
    refused = {
        "pkcs11:token=T;object=O": "module-path",
        "pkcs11:token=T?module-path=/m.so": "object=",
        "pkcs11:object=O?module-path=/m.so": "token=",
        "pkcs11:token=T;object=O;colour=red?module-path=/m.so": "path attribute",
        "pkcs11:token=T;object=O?module-path=/m.so&pin-value=1&pin-source=file:/p": "not both",
        "pkcs11:token=T;object=O;type=public?module-path=/m.so": "private",
        "pkcs11:token=T;object=O?module-path=/m.so&pin-source=|/bin/echo": "no programs",
        "pkcs11:token=T;object=O?module-path=/m.so&verbose=1": "query attribute",
    }
    for text, reason in refused.items():
        with pytest.raises(CustodyError, match=reason):
            Pkcs11Uri.parse(text)


def test_uri_to_a_missing_module_is_a_clear_error() -> None:
    with pytest.raises(CustodyError, match="no PKCS#11 library"):
        load_signer("pkcs11:token=T;object=O?module-path=/nonexistent/lib.so&pin-value=1")


# -- SoftHSM2 ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SoftHsm, str]]:
    """One SoftHSM2 token for this module's tests (the library reads SOFTHSM2_CONF once per
    process, when it is loaded, and does not see tokens made after)."""
    softhsm = SoftHsm.create(tmp_path_factory.mktemp("softhsm"))
    token = softhsm.init_token()
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
    try:
        yield softhsm, token
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before


def _label() -> str:
    return f"k{uuid.uuid4().hex[:8]}"


def test_imported_key_signs_inside_the_token(hsm: tuple[SoftHsm, str]) -> None:
    softhsm, token = hsm
    key = SigningKey.generate()
    uri = Pkcs11Uri.parse(softhsm.uri(token, _label()))
    signer = hsm_import(key, uri)
    assert isinstance(signer, Signer)
    assert signer.public_bytes == key.public_bytes
    signature = signer.sign(b"kp/test", b"payload")
    assert verify(key.public_bytes, b"kp/test", b"payload", signature)
    # Ed25519 is deterministic: the token signs exactly what the software key signs.
    assert signature == key.sign(b"kp/test", b"payload")
    # A second loader of the same URI (pin-value this time) shares the token's login.
    again = load_signer(softhsm.uri(token, uri.object or "", pin_value=True))
    assert again.public_bytes == key.public_bytes


def test_token_key_cannot_be_read_back(hsm: tuple[SoftHsm, str]) -> None:
    import pkcs11

    softhsm, token = hsm
    uri = Pkcs11Uri.parse(softhsm.uri(token, _label()))
    signer = hsm_import(SigningKey.generate(), uri)
    assert isinstance(signer, Pkcs11Signer)
    with pytest.raises(pkcs11.AttributeSensitive):
        signer._key[pkcs11.Attribute.VALUE]
    assert signer._key[pkcs11.Attribute.EXTRACTABLE] is False


def test_import_refuses_to_overwrite_a_key(hsm: tuple[SoftHsm, str]) -> None:
    softhsm, token = hsm
    uri = Pkcs11Uri.parse(softhsm.uri(token, _label()))
    first = SigningKey.generate()
    hsm_import(first, uri)
    with pytest.raises(CustodyError, match="already holds"):
        hsm_import(SigningKey.generate(), uri)
    assert load_signer(uri.text).public_bytes == first.public_bytes


def test_token_errors_are_clear(hsm: tuple[SoftHsm, str], tmp_path: Path) -> None:
    softhsm, token = hsm
    with pytest.raises(CustodyError, match="no such private key"):
        load_signer(softhsm.uri(token, "nobody"))
    with pytest.raises(CustodyError, match="no such token"):
        load_signer(softhsm.uri("no-such-token", "k"))
    not_pkcs11 = tmp_path / "libnot.so"
    not_pkcs11.write_bytes(b"\x7fELF not really")
    with pytest.raises(CustodyError, match="not a PKCS#11 library"):
        load_signer(f"pkcs11:token={token};object=k?module-path={not_pkcs11}&pin-value=1")


def test_wrong_pin_is_refused(tmp_path: Path) -> None:
    """In a process of its own: the module's token is logged in already in this one."""
    softhsm = SoftHsm.create(tmp_path)
    token = softhsm.init_token()
    uri = softhsm.uri(token, "k").replace(f"pin-source=file:{softhsm.pin_file}", "pin-value=0000")
    assert USER_PIN != "0000"
    code = (
        "import sys\n"
        "from node.custody import CustodyError, load_signer\n"
        "try:\n"
        f"    load_signer({uri!r})\n"
        "except CustodyError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **softhsm.env},
        timeout=60,
    )
    assert run.returncode == 3, run.stderr
    assert "refused the PIN" in run.stdout
    assert "0000" not in run.stdout


# -- TLS with a node key that stays in its token ---------------------------------------------------
class _OutsideSigner:
    """A Signer that is no SigningKey (as a token's is), backed by a software key for the test."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.public_bytes = key.public_bytes

    def sign(self, tag: bytes, payload: bytes) -> bytes:
        return self._key.sign(tag, payload)

    def sign_raw(self, message: bytes) -> bytes:
        return self._key.sign_raw(message)


def test_a_delegated_tls_certificate_speaks_for_the_node_key_that_signed_it() -> None:
    from cryptography.hazmat.primitives import serialization

    from node.tls import certificate_key, delegated_certificate, node_certificate

    node_key, tls_key, stranger = (
        SigningKey.generate(),
        SigningKey.generate(),
        SigningKey.generate(),
    )
    cert = delegated_certificate(_OutsideSigner(node_key), tls_key)
    der = cert.public_bytes(serialization.Encoding.DER)
    # The TLS key is the certificate's; the node key is what it speaks for.
    assert (
        cert.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        == tls_key.public_bytes
    )
    assert certificate_key(der) == node_key.public_bytes
    # A self-signed node certificate still speaks for its own key.
    own = node_certificate(node_key).public_bytes(serialization.Encoding.DER)
    assert certificate_key(own) == node_key.public_bytes
    # Naming a key that did not sign it (here: signed by another key) speaks for nobody.
    forged = delegated_certificate(_Claiming(node_key.public_bytes, stranger), tls_key)
    assert certificate_key(forged.public_bytes(serialization.Encoding.DER)) is None
    # One flipped byte of the signature: nobody either.
    tampered = der[:-1] + bytes([der[-1] ^ 1])
    assert certificate_key(tampered) is None


class _Claiming(_OutsideSigner):
    """Claims `public` but signs with another key: what an impostor's certificate would be."""

    def __init__(self, public: bytes, key: SigningKey) -> None:
        super().__init__(key)
        self.public_bytes = public


def test_the_passphrase_is_asked_for_on_a_terminal(tmp_path: Path) -> None:
    """No file, no environment, but a terminal: the prompt, without echo, and the key opens."""
    import pty
    import select
    import time

    key = SigningKey.generate()
    path = tmp_path / "k.pem"
    path.write_bytes(key.to_pem(b"typed at the prompt"))
    code = (
        "from node.custody import Passphrase, load_signer\n"
        f"print('opened', load_signer({str(path)!r}, Passphrase()).public_bytes.hex())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV}
    pid, fd = pty.fork()
    if pid == 0:  # the child: a process whose controlling terminal is the pty
        os.chdir(Path(__file__).resolve().parents[2])
        os.execve(sys.executable, [sys.executable, "-c", code], env)
    seen = b""
    deadline = time.monotonic() + 60
    sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not sent and b"passphrase for" in seen:
                os.write(fd, b"typed at the prompt\n")
                sent = True
            if b"opened" in seen and seen.endswith(b"\n"):
                break
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert sent, seen
    assert f"opened {key.public_bytes.hex()}".encode() in seen, seen
    assert b"typed at the prompt" not in seen  # not echoed
    assert os.waitstatus_to_exitcode(status) == 0


def test_hsm_import_refusals_are_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from node.cli import main

    key = tmp_path / "k.pem"
    key.write_bytes(SigningKey.generate().to_pem(b"the passphrase"))
    (tmp_path / "pass").write_text("the passphrase\n")
    uri = "pkcs11:token=T;object=k?module-path=/nonexistent/lib.so&pin-value=1234"
    cases = [
        (
            ["--key", str(key), "--uri", uri, "--passphrase-file", str(tmp_path / "pass")],
            "no PKCS#11 library",
        ),
        (["--key", str(key), "--uri", "pkcs11:token=T;object=k"], "module-path"),
        (["--key", str(key), "--uri", uri], "is encrypted"),
        (["--key", str(tmp_path / "none.pem"), "--uri", uri], "cannot read the key"),
    ]
    for args, reason in cases:
        result = CliRunner(env={PASSPHRASE_ENV: None}).invoke(  # type: ignore[dict-item]
            main, ["key", "hsm-import", *args, "--json"]
        )
        assert result.exit_code == 2, (args, result.output)
        out = json.loads(result.output)
        assert out["error"] == "key_unavailable" and reason in out["message"], out
        assert "1234" not in result.output


def test_key_prove_signs_inside_the_token(hsm: tuple[SoftHsm, str]) -> None:
    """A joiner whose keys are in a token proves possession without a key file."""
    from click.testing import CliRunner

    from ledger.keys import verify_possession
    from node.cli import main

    softhsm, token = hsm
    key = SigningKey.generate()
    uri = softhsm.uri(token, _label())
    hsm_import(key, Pkcs11Uri.parse(uri))
    result = CliRunner().invoke(
        main,
        ["key", "prove", "--role", "node", "--participant", "BW", "--key-file", uri,
         "--chain-id", "kp-x", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["public_key"] == key.public_bytes.hex()
    proof = bytes.fromhex(out["proof"])
    assert verify_possession(key.public_bytes, "node", "kp-x", "BW", proof)
    assert proof == key.prove_possession("kp-x", "BW", "node")
    result = CliRunner().invoke(
        main,
        ["key", "prove", "--role", "encryption", "--participant", "BW", "--key-file", uri,
         "--chain-id", "kp-x", "--json"],
    )  # fmt: skip
    assert result.exit_code == 2 and "X25519" in json.loads(result.output)["message"]


def test_gov_reads_the_public_key_of_an_encrypted_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gov propose admit --authority-pub FILE` with an encrypted private key file."""
    from node.cli.gov import public_key

    signing, encryption = SigningKey.generate(), EncryptionKey.generate()
    (tmp_path / "a.pem").write_bytes(signing.to_pem(b"joiner's phrase"))
    (tmp_path / "e.pem").write_bytes(encryption.to_pem(b"joiner's phrase"))
    monkeypatch.setenv(PASSPHRASE_ENV, "joiner's phrase")
    assert public_key(str(tmp_path / "a.pem"), "--authority-pub") == signing.public_bytes
    assert public_key(str(tmp_path / "e.pem"), "--encryption-pub") == encryption.public_bytes
    monkeypatch.setenv(PASSPHRASE_ENV, "another phrase")
    with pytest.raises(SystemExit) as exited:
        public_key(str(tmp_path / "a.pem"), "--authority-pub")
    assert exited.value.code == 2
