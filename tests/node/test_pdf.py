"""The printed certificate: every KPCS element in the PDF's text, and a QR code that opens its proof."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pypdf
import pytest
import segno
import zxingcpp
from PIL import Image

from ledger.certificate import HS_DESCRIPTIONS
from node.pdf import (
    KPCS_STATEMENT,
    TITLE,
    NotAParty,
    render_certificate_pdf,
    verification_url,
)
from tests.e2e.harness import REPO, Network
from tests.node.conftest import Signer, submit, wait_final

NAMES = {"BE": "Belgium", "AE": "United Arab Emirates", "IN": "India", "RU": "Russian Federation"}
DIGEST = "5f" * 32
SALT = "a1" * 32


def record(**overrides: Any) -> dict[str, Any]:
    """A party's record as GET /v1/certificates/{number} gives it."""
    out = {
        "number": "BE-2026-000123",
        "status": "import_confirmed",
        "ledger_status": "import_confirmed",
        "exporting_participant": "BE",
        "importing_participant": "AE",
        "origin": ["CD", "BW"],
        "hs_code": "7102.31",
        "carats": "1250.50",
        "value_usd": "3125000.75",
        "parcels": 4,
        "issued_on": "2026-03-02",
        "expires_on": "2026-05-01",
        "digest": DIGEST,
        "identity_salt": SALT,
        "party": True,
        "exporter": {
            "name": "Antwerp Rough Trading NV",
            "address": "Hoveniersstraat 22, Antwerpen",
        },
        "importer": {"name": "Almas Gems DMCC", "address": "Almas Tower, JLT, Dubai"},
        "history": [
            {
                "event_id": "11" * 32,
                "type": "certificate.issue",
                "time": "2026-03-02T09:00:00.000+00:00",
                "height": 7,
            },
            {
                "event_id": "22" * 32,
                "type": "certificate.confirm_import",
                "time": "2026-03-04T10:30:00.000+00:00",
                "height": 19,
            },
        ],
    }
    out.update(overrides)
    return out


def render(rec: dict[str, Any], node_url: str = "http://127.0.0.1:7700") -> tuple[bytes, str]:
    url = verification_url(node_url, rec["number"], rec["digest"])
    pdf = render_certificate_pdf(rec, participant_names=NAMES, verify_url=url, node_url=node_url)
    return pdf, url


def pdf_text(pdf: bytes) -> str:
    """The text of every page, with runs of whitespace made one space."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def pdf_images(pdf: bytes) -> list[Image.Image]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [image.image for page in reader.pages for image in page.images]


def qr_matrix(image: Image.Image, modules: int, border: int = 4) -> list[list[int]]:
    """Sample the centre of each module of a QR image (1 = dark), quiet zone of `border` modules."""
    gray = image.convert("L")
    width, height = gray.size
    assert width == height and width % (modules + 2 * border) == 0, (gray.size, modules)
    scale = width // (modules + 2 * border)
    return [
        [
            int(
                gray.getpixel(
                    ((border + x) * scale + scale // 2, (border + y) * scale + scale // 2)
                )
                < 128
            )
            for x in range(modules)
        ]
        for y in range(modules)
    ]


def check_qr(pdf: bytes, expected_url: str) -> None:
    images = pdf_images(pdf)
    assert len(images) == 1, "one picture on the certificate: its QR code"
    # Decoded as a phone would...
    decoded = [
        r.text
        for r in zxingcpp.read_barcodes(images[0])
        if r.format == zxingcpp.BarcodeFormat.QRCode
    ]
    assert decoded == [expected_url]
    # ...and module by module against the symbol segno makes of the expected URL.
    symbol = segno.make(expected_url, error="m", micro=False)
    expected = [list(row) for row in symbol.matrix]
    assert qr_matrix(images[0], len(expected)) == expected


def test_every_kpcs_element_is_in_the_text() -> None:
    rec = record()
    pdf, _ = render(rec)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    compact = text.replace(" ", "")
    for expected in (
        TITLE,
        " ".join(KPCS_STATEMENT.split()),
        "BE-2026-000123",
        "Congo, The Democratic Republic of the (CD)",
        "Botswana (BW)",
        "2026-03-02",
        "2026-05-01",
        "Exporting Authority of Belgium (BE)",
        "United Arab Emirates (AE)",
        "Antwerp Rough Trading NV",
        "Hoveniersstraat 22, Antwerpen",
        "Almas Gems DMCC",
        "Almas Tower, JLT, Dubai",
        "1250.50 ct",
        "US$ 3125000.75",
        "7102.31",
        " ".join(HS_DESCRIPTIONS["7102.31"].split()),
        "IMPORT CONFIRMED",
        "certificate.confirm_import",
    ):
        assert expected in text, expected
    assert "NUMBER OF PARCELS 4" in text
    # The document code: the ledger digest and the identity salt, whole.
    assert DIGEST in compact and SALT in compact


def test_the_qr_code_opens_the_verification_page_of_this_number_and_digest() -> None:
    pdf, url = render(record())
    assert url == f"http://127.0.0.1:7700/verify/BE-2026-000123?d={DIGEST}"
    check_qr(pdf, url)


def test_the_qr_check_notices_another_url() -> None:
    pdf, url = render(record())
    with pytest.raises(AssertionError):
        check_qr(pdf, url.replace("000123", "000124"))


def test_mixed_origin_replacement_zone_and_a_voided_status() -> None:
    rec = record(
        origin=["MIXED"],
        hs_code="7102.10",
        status="voided",
        reason="lost",
        replaces="BE-2026-000100",
        replaced_by="BE-2026-000130",
    )
    text = pdf_text(render(rec)[0])
    for expected in ("Mixed", "Unsorted", "VOIDED", "lost", "BE-2026-000100", "BE-2026-000130"):
        assert expected in text, expected


def stamps(pdf: bytes) -> list[tuple[str, float, float]]:
    """Text drawn at a slant, as (text, angle in degrees, effective size in points)."""
    found: list[tuple[str, float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        a = tm[0] * cm[0] + tm[1] * cm[2]
        b = tm[0] * cm[1] + tm[1] * cm[3]
        angle = math.degrees(math.atan2(b, a))
        if text.strip() and abs(angle) > 1:
            found.append((text.strip(), angle, size * math.hypot(a, b)))

    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        page.extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize(
    ("status", "label", "why"),
    [
        ("voided", "VOIDED", "voided by the exporting authority on 2026-03-05"),
        ("import_rejected", "IMPORT REJECTED", "the importing authority rejected the import"),
        ("expired", "EXPIRED", "past its date of expiry without a confirmed import on 2026-05-01"),
    ],
)
def test_a_certificate_that_is_not_valid_says_so_across_the_page(
    status: str, label: str, why: str
) -> None:
    history = record()["history"][:1]
    if status == "voided":
        history.append(
            {"event_id": "33" * 32, "type": "certificate.void", "time": "2026-03-05T08:00:00Z"}
        )
    reason = {"voided": "lost in transit", "import_rejected": "seal broken"}.get(status)
    rec = record(status=status, history=history, **({"reason": reason} if reason else {}))
    pdf, url = render(rec)
    # Corner to corner in large letters: slanted like the page's diagonal, of a size no one
    # misses (the status field alone said VOIDED in 13 pt, as a valid one says ISSUED).
    [(text, angle, size)] = stamps(pdf)
    assert text == label
    assert 45 < angle < 65 and size >= 60, (angle, size)
    text = pdf_text(pdf)
    line = f"NOT VALID - {label}: {why}."
    assert line in text, text[:600]
    if reason:
        assert f"Reason given: {reason}." in text
    assert "Do not accept a shipment on this certificate." in text
    assert "NOT VALID" in (pypdf.PdfReader(io.BytesIO(pdf)).metadata.title or "")
    check_qr(pdf, url)  # the stamp leaves the QR code readable


@pytest.mark.parametrize("status", ["issued", "import_confirmed"])
def test_a_valid_certificate_has_no_stamp(status: str) -> None:
    pdf, _ = render(record(status=status))
    assert stamps(pdf) == []
    assert "NOT VALID" not in pdf_text(pdf)


def test_non_latin_names_are_printed() -> None:
    rec = record(exporter={"name": "Société Générale des Diamants", "address": "Ålesund øst"})
    text = pdf_text(render(rec)[0])
    assert "Société Générale des Diamants" in text and "Ålesund øst" in text


def test_a_record_without_the_parties_cannot_be_printed() -> None:
    rec = record(party=False, identities="IN is not a party to this certificate")
    del rec["exporter"], rec["importer"], rec["identity_salt"]
    with pytest.raises(NotAParty, match="IN is not a party"):
        render(rec)


def test_the_verification_url_quotes_the_number_and_adds_a_scheme() -> None:
    assert verification_url("node.example:7700/", "BE-1", "ab") == (
        "https://node.example:7700/verify/BE-1?d=ab"
    )
    assert urllib.parse.urlsplit(verification_url("https://n", "A/B?", "ab")).path.endswith(
        "/A%2FB%3F"
    )


# -- through the command line, against live nodes ------------------------------------------------
def run_pdf(net: Network, code: str, number: str, out: Path) -> subprocess.CompletedProcess[str]:
    node = net.node(code)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "node.cli",
            "cert",
            "pdf",
            number,
            "--node",
            node.url,
            "--token",
            node.token,
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "KPLEDGER_GENESIS": str(net.directory / "genesis.json")},
        timeout=60,
    )


@pytest.mark.slow
def test_kpledger_cert_pdf_for_the_parties_and_not_for_others(
    network_factory: Any, tmp_path: Path
) -> None:
    net: Network = network_factory("pdf")
    signer = Signer.for_network(net)
    document = signer.document("BE", "AE", "PDF")
    issuance = signer.issue(document)
    wait_final(net, net.node("BE"), [submit(net.node("BE"), issuance.event)])
    wait_final(net, net.node("AE"), [submit(net.node("AE"), signer.confirm(issuance))])
    number, digest = document["number"], issuance.digest.hex()
    for code in ("BE", "AE"):
        out = tmp_path / f"{code}.pdf"
        result = run_pdf(net, code, number, out)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        url = f"{net.node(code).url}/verify/{number}?d={digest}"
        assert answer["verify_url"] == url
        pdf = out.read_bytes()
        text = pdf_text(pdf)
        for party in ("exporter", "importer"):
            assert document[party]["name"] in text and document[party]["address"] in text
        for key in ("carats", "value_usd", "issued_on", "expires_on", "hs_code"):
            assert document[key] in text, key
        assert "Exporting Authority of Belgium (BE)" in text and "IMPORT CONFIRMED" in text
        assert document["identity_salt"] in text.replace(" ", "")
        check_qr(pdf, url)
        # The page the QR code opens checks this number and digest (tests/e2e/test_verify_page.py
        # opens it in a browser); the public answer it checks says the digest matches.
        status, body = net.node(code).get(f"/v1/public/certificates/{number}?digest={digest}")
        assert status == 200 and body["digest_matches"] is True
        assert body["status"] == "import_confirmed"
    for code in ("IN", "RU"):
        out = tmp_path / f"{code}.pdf"
        result = run_pdf(net, code, number, out)
        assert result.returncode == 1 and "not a party" in result.stdout
        assert not out.exists()
    result = run_pdf(net, "BE", "BE-PDF-99999", tmp_path / "none.pdf")
    assert result.returncode == 1 and "certificate_not_found" in result.stdout


def test_a_historical_record_is_printed_as_one() -> None:
    rec = record(
        number="BE-2009-000455",
        historical=True,
        accounts=["BE"],
        issued_on="2009-06-30",
        expires_on="2009-08-29",
    )
    rec["history"] = [{**rec["history"][0], "type": "certificate.historical"}]
    pdf, url = render(rec)
    text = pdf_text(pdf)
    assert "HISTORICAL RECORD" in text and "entered from the authority's archive" in text
    assert "certificate.historical" in text and "as issued" not in text
    assert "historical record" in (pypdf.PdfReader(io.BytesIO(pdf)).metadata.title or "")
    assert "HISTORICAL RECORD" not in pdf_text(render(record())[0])
    check_qr(pdf, url)
