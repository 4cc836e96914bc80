"""SoftHSM2 tokens for the PKCS#11 tests: a token directory and configuration of their own in a
temp dir (SOFTHSM2_CONF), made with Debian's softhsm2-util. Without softhsm2 the tests that need
it are skipped, saying so (`.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Where Debian's softhsm2 puts its PKCS#11 library (the first that exists is used).
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
USER_PIN = "246810"
SO_PIN = "13579111"


def module_path() -> str | None:
    return next((p for p in MODULE_CANDIDATES if os.path.exists(p)), None)


def require_softhsm() -> tuple[str, str]:
    """softhsm2-util and the SoftHSM2 library, or the test is skipped with the reason."""
    util = shutil.which("softhsm2-util")
    module = module_path()
    if util is None or module is None:
        pytest.skip(
            "SoftHSM2 is not installed (Debian package softhsm2: `apt-get install softhsm2`, "
            "which .ci/run does): the PKCS#11 key tests need a token to sign in"
        )
    return util, module


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 configuration whose tokens live under `directory`; `env` points a process at it."""

    directory: Path
    conf: Path
    module: str
    util: str
    pin_file: Path

    @classmethod
    def create(cls, directory: Path) -> SoftHsm:
        util, module = require_softhsm()
        tokens = directory / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        conf = directory / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
            encoding="utf-8",
        )
        pin_file = directory / "user.pin"
        pin_file.write_text(USER_PIN + "\n", encoding="utf-8")
        os.chmod(pin_file, 0o600)
        return cls(directory, conf, module, util, pin_file)

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def init_token(self, label: str | None = None) -> str:
        """A new token with the user PIN in `pin_file`; returns its label."""
        label = label or f"kp-{uuid.uuid4().hex[:10]}"
        subprocess.run(
            [
                self.util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                USER_PIN,
                "--so-pin",
                SO_PIN,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, **self.env},
        )
        return label

    def uri(self, token: str, key: str, *, pin_value: bool = False) -> str:
        pin = f"pin-value={USER_PIN}" if pin_value else f"pin-source=file:{self.pin_file}"
        return f"pkcs11:token={token};object={key}?module-path={self.module}&{pin}"
