"""Copy the verification page's fallback crypto (noble's Ed25519 and SHA-2) into node/web/verify/vendor/.

The page checks proofs with WebCrypto where the browser has Ed25519 and SHA-256; where it does not
(an old browser, or a page that is not a secure context), it uses these audited libraries,
shipped with the package (no CDN). Their versions are pinned by scripts/vendor_js/package-lock.json;
this script installs them with `npm ci`, copies the files the page imports, and writes
SHA256SUMS, which tests/node/test_verify_page.py checks against the files.

    .venv/bin/python scripts/vendor_js.py
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "scripts" / "vendor_js"
TARGET = REPO / "node" / "web" / "verify" / "vendor"
#: package -> the files the page needs (their relative imports stay within the set).
FILES = {
    "@noble/ed25519": ["index.js", "LICENSE"],
    "@noble/hashes": ["sha2.js", "_md.js", "_u64.js", "utils.js", "LICENSE"],
}


def sums(directory: Path) -> str:
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(directory).as_posix()}"
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != "SHA256SUMS"
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=SOURCE, check=True)
    if TARGET.exists():
        shutil.rmtree(TARGET)
    for package, names in FILES.items():
        into = TARGET / package.split("/")[-1]
        into.mkdir(parents=True)
        for name in names:
            shutil.copyfile(SOURCE / "node_modules" / package / name, into / name)
    (TARGET / "SHA256SUMS").write_text(sums(TARGET))
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
