"""The printable certificate: every KPCS element of a party's record laid out as a PDF, with a QR code."""

from __future__ import annotations

import io
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import segno
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ledger.certificate import HS_DESCRIPTIONS, MIXED_ORIGIN, country_name

TITLE = "Kimberley Process Certificate"
#: The fixed statement of the KPCS minimum requirements (Annex I, element 1).
KPCS_STATEMENT = (
    "The rough diamonds in this shipment have been handled in accordance with the provisions "
    "of the Kimberley Process Certification Scheme for rough diamonds."
)
#: segno's error correction level and the QR image's quiet zone and pixels per module.
QR_ERROR = "m"
QR_BORDER = 4
QR_SCALE = 8

_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path(pdfmetrics.__file__).resolve().parent.parent / "fonts",
)
_INK = Color(0.10, 0.12, 0.18)
_MUTED = Color(0.38, 0.40, 0.46)
_RULE = Color(0.75, 0.77, 0.82)
_BAND = Color(0.93, 0.94, 0.96)
_STATUS_TEXT = {
    "issued": "ISSUED - in force",
    "import_confirmed": "IMPORT CONFIRMED",
    "import_rejected": "IMPORT REJECTED",
    "voided": "VOIDED",
    "expired": "EXPIRED",
}
#: A certificate in one of these statuses is not valid: its PDF says so across the page (a
#: diagonal stamp) and in a line under the header, so that no one takes the paper for a valid one.
NOT_VALID = {
    "voided": ("VOIDED", "voided by the exporting authority"),
    "import_rejected": ("IMPORT REJECTED", "the importing authority rejected the import"),
    "expired": ("EXPIRED", "past its date of expiry without a confirmed import"),
}
_STAMP = Color(0.72, 0.07, 0.05)
_STAMP_ALPHA = 0.28


class NotAParty(Exception):
    """The node that answered cannot read the exporter and importer of the certificate."""


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    mono: str


def _register_fonts() -> Fonts:
    """A Unicode TrueType face (DejaVu when installed, else the Vera reportlab ships)."""
    faces = (
        ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf"),
        ("Vera.ttf", "VeraBd.ttf", "Vera.ttf"),
    )
    for folder in _FONT_DIRS:
        for regular, bold, mono in faces:
            paths = [folder / regular, folder / bold, folder / mono]
            if all(p.is_file() for p in paths):
                names = [f"kp-{p.stem}" for p in paths]
                for name, path in zip(names, paths, strict=True):
                    if name not in pdfmetrics.getRegisteredFontNames():
                        pdfmetrics.registerFont(TTFont(name, str(path)))
                return Fonts(*names)
    return Fonts("Helvetica", "Helvetica-Bold", "Courier")


def verification_url(node_url: str, number: str, digest_hex: str) -> str:
    """The page a QR code opens: /verify/{number}?d=<digest>, which checks the ledger's proof in
    the phone's browser and says whether this very document is the one the ledger records."""
    base = node_url if node_url.startswith(("http://", "https://")) else "https://" + node_url
    quoted = urllib.parse.quote(number, safe="")
    return f"{base.rstrip('/')}/verify/{quoted}?d={digest_hex}"


def qr_code(url: str) -> segno.QRCode:
    return segno.make(url, error=QR_ERROR, micro=False)


def qr_png(url: str) -> bytes:
    """The QR code as a PNG: one square of QR_SCALE pixels per module, black on white."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="png", scale=QR_SCALE, border=QR_BORDER, dark="#000", light="#fff")
    return out.getvalue()


def origin_text(origin: Sequence[str]) -> str:
    if list(origin) == [MIXED_ORIGIN]:
        return "Mixed (parcels of more than one country of origin)"
    return ", ".join(f"{country_name(code)} ({code})" for code in origin)


def participant_text(code: str, names: Mapping[str, str]) -> str:
    name = names.get(code)
    return f"{name} ({code})" if name and name != code else code


def _groups(text: str, size: int = 8, per_line: int = 4) -> str:
    groups = [text[i : i + size] for i in range(0, len(text), size)]
    lines = [" ".join(groups[i : i + per_line]) for i in range(0, len(groups), per_line)]
    return "\n".join(lines)


class _Page:
    """A cursor over an A4 canvas: labelled fields in columns, wrapped to their width."""

    margin = 42.0

    def __init__(self, canvas: Canvas, fonts: Fonts) -> None:
        self.c = canvas
        self.f = fonts
        self.width, self.height = A4
        self.y = self.height - self.margin

    def text(
        self,
        x: float,
        y: float,
        value: str,
        *,
        size: float = 10,
        font: str | None = None,
        color: Color = _INK,
        width: float | None = None,
        leading: float | None = None,
    ) -> float:
        """Draw wrapped text from (x, y) downwards; returns the y below the last line."""
        font = font or self.f.regular
        leading = leading or size * 1.3
        lines: list[str] = []
        for paragraph in value.split("\n"):
            lines += simpleSplit(paragraph, font, size, width) if width else [paragraph]
        self.c.setFont(font, size)
        self.c.setFillColor(color)
        for line in lines:
            self.c.drawString(x, y, line)
            y -= leading
        return y

    def field(self, x: float, y: float, label: str, value: str, width: float, **kw: Any) -> float:
        size = kw.pop("size", 10.5)
        y = self.text(x, y, label.upper(), size=7, color=_MUTED, font=self.f.bold)
        return self.text(x, y - 1 - max(0.0, size - 10.5), value, size=size, width=width, **kw) - 6

    def rule(self, y: float) -> None:
        self.c.setStrokeColor(_RULE)
        self.c.setLineWidth(0.6)
        self.c.line(self.margin, y, self.width - self.margin, y)


def render_certificate_pdf(
    record: Mapping[str, Any],
    *,
    participant_names: Mapping[str, str],
    verify_url: str,
    node_url: str,
    printed_at: datetime | None = None,
) -> bytes:
    """The certificate document of a party's record (GET /v1/certificates/{number}) as PDF bytes.

    Raises NotAParty when the record does not carry the exporter and importer.
    """
    if not record.get("exporter") or not record.get("importer") or not record.get("identity_salt"):
        raise NotAParty(
            str(
                record.get("identities")
                or record.get("identities_error")
                or "the record does not carry the exporter and importer identities"
            )
        )
    printed_at = printed_at or datetime.now(UTC)
    fonts = _register_fonts()
    buffer = io.BytesIO()
    number = str(record["number"])
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1)
    status = str(record.get("status", ""))
    not_valid = NOT_VALID.get(status)
    canvas.setTitle(
        f"{TITLE} {number}"
        + (" (historical record)" if record.get("historical") else "")
        + (f" ({not_valid[0]}: NOT VALID)" if not_valid else "")
    )
    canvas.setAuthor(participant_text(record["exporting_participant"], participant_names))
    canvas.setSubject("KPCS certificate printed from the kpledger ledger")
    page = _Page(canvas, fonts)
    m, full = page.margin, page.width - 2 * page.margin
    half = full / 2 - 10

    # Header band: title, number and the KPCS statement.
    canvas.setFillColor(_BAND)
    canvas.rect(0, page.height - 160, page.width, 160, stroke=0, fill=1)
    y = page.text(m, page.height - 58, TITLE, size=22, font=fonts.bold)
    y = page.text(m, y - 2, "Kimberley Process Certification Scheme", size=10, color=_MUTED)
    number_x = page.width - m - 150
    page.text(number_x, y - 10, "CERTIFICATE No.", size=7, font=fonts.bold, color=_MUTED)
    page.text(number_x, y - 26, number, size=13, font=fonts.bold, width=150)
    page.text(m, y - 12, KPCS_STATEMENT, size=9.5, width=full - 175, leading=12.5)
    y = page.height - 185
    if not_valid:
        y = _status_line(page, record, not_valid, page.height - 160) - 25

    # The KPCS elements, in two columns.
    authority = participant_text(record["exporting_participant"], participant_names)
    left = [
        ("Issuing authority", f"Exporting Authority of {authority}"),
        ("Exporting participant", authority),
        ("Exporter (name and address)", _party(record["exporter"])),
        ("Country of origin", origin_text(record.get("origin", []))),
        ("Carat weight", f"{record['carats']} ct"),
        ("Number of parcels", str(record["parcels"])),
    ]
    hs = str(record["hs_code"])
    right = [
        ("Date of issue", str(record["issued_on"])),
        ("Date of expiry", str(record["expires_on"])),
        (
            "Importing participant",
            participant_text(record["importing_participant"], participant_names),
        ),
        ("Importer (name and address)", _party(record["importer"])),
        ("HS code", f"{hs}  {HS_DESCRIPTIONS.get(hs, '')}".rstrip()),
        ("Value", f"US$ {record['value_usd']}"),
    ]
    if record.get("replaces"):
        left.append(("Replaces certificate", str(record["replaces"])))
    if record.get("zone"):
        right.append(("Approved origin zone", str(record["zone"])))
    y_left, y_right = y, y
    for label, value in left:
        y_left = page.field(m, y_left, label, value, half)
    for label, value in right:
        y_right = page.field(m + full / 2 + 10, y_right, label, value, half)
    y = min(y_left, y_right) - 4
    page.rule(y + 8)
    y -= 8

    # Status and validation, beside the QR code.
    qr_size = 150.0
    qr_x = page.width - m - qr_size
    text_width = full - qr_size - 20
    top = y - 6
    y = page.field(
        m,
        top,
        "Status",
        _STATUS_TEXT.get(status, status.upper()),
        text_width,
        size=13,
        font=fonts.bold,
    )
    if record.get("historical"):
        y = page.field(
            m,
            y,
            "Historical record",
            "A certificate from before the ledger, entered from the authority's archive in the "
            "status it ended with (certificate.historical); not issued on the ledger.",
            text_width,
        )
    if record.get("reason"):
        y = page.field(m, y, "Reason", str(record["reason"]), text_width)
    if record.get("replaced_by"):
        y = page.field(m, y, "Replaced by", str(record["replaced_by"]), text_width)
    y = page.field(
        m,
        y,
        "Validation",
        (
            "Recorded from the archive of the participant named in the history, signed with its "
            "registered key. Document code (with the document, it proves this is the "
            "certificate as recorded):"
            if record.get("historical")
            else "Signed by the exporting authority with its registered key and recorded on the "
            "Kimberley Process ledger. Document code (with the document, it proves this is the "
            "certificate as issued):"
        ),
        text_width,
        size=9,
    )
    digest, salt = str(record["digest"]), str(record["identity_salt"])
    for label, value in (("ledger digest", digest), ("identity salt", salt)):
        y = page.text(m, y + 2, label, size=7, color=_MUTED)
        y = page.text(m, y + 1, _groups(value), size=8, font=fonts.mono, width=text_width) - 2
    canvas.drawImage(
        ImageReader(io.BytesIO(qr_png(verify_url))),
        qr_x,
        top - qr_size + 8,
        qr_size,
        qr_size,
    )
    page.text(qr_x, top - qr_size, "Scan to verify on the public ledger", size=7, color=_MUTED)
    y = min(y, top - qr_size - 14)
    verify_line = _hard_wrap(f"Verify: {verify_url}", 110)
    y = page.text(m, y, verify_line, size=7.5, font=fonts.mono, color=_MUTED) - 8
    page.rule(y + 4)

    # History: every event of the certificate on the ledger.
    y = page.text(m, y - 8, "HISTORY ON THE LEDGER", size=7, font=fonts.bold, color=_MUTED) - 2
    for item in record.get("history", []):
        line = f"{item.get('time', '')}   block {item.get('height', '')}   {item.get('type', '')}"
        y = page.text(m, y, line, size=8.5)
        y = page.text(
            m + 12, y, f"event {item.get('event_id', '')}", size=7, font=fonts.mono, color=_MUTED
        )

    # Footer.
    canvas.setFillColor(white)
    footer = (
        f"Printed {printed_at.isoformat(timespec='seconds')} from the node at {node_url}. "
        "The ledger, not this paper, is authoritative: check the number, and this document with "
        "its document code, with `kpledger verify NUMBER --document FILE.json` or the QR code."
    )
    page.rule(m + 34)
    page.text(m, m + 22, footer, size=7, color=_MUTED, width=full, leading=9)
    if not_valid:
        _stamp(page, not_valid[0])
    canvas.setFillColor(black)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _status_line(
    page: _Page, record: Mapping[str, Any], not_valid: tuple[str, str], top: float
) -> float:
    """A red band across the page under the header: NOT VALID, why, when and the reason given.
    Returns the y under it."""
    label, why = not_valid
    when = ""
    event_type = {"VOIDED": "certificate.void", "IMPORT REJECTED": "certificate.reject_import"}
    for item in record.get("history", []):
        if item.get("type") == event_type.get(label):
            when = f" on {str(item.get('time', ''))[:10]}"
    if label == "EXPIRED":
        when = f" on {record.get('expires_on', '')}"
    text = f"NOT VALID - {label}: {why}{when}."
    if record.get("reason"):
        text += f" Reason given: {record['reason']}."
    text += " Do not accept a shipment on this certificate."
    width = page.width - 2 * page.margin - 20
    lines = simpleSplit(text, page.f.bold, 10, width)
    height = 12 + 13 * len(lines)
    page.c.setFillColor(_STAMP)
    page.c.rect(0, top - height, page.width, height, stroke=0, fill=1)
    page.text(page.margin + 10, top - 16, text, size=10, font=page.f.bold, color=white, width=width)
    return top - height


def _stamp(page: _Page, label: str) -> None:
    """`label` in large letters across the page, corner to corner, over everything, in a
    translucent red that leaves the fields under it readable."""
    c = page.c
    angle = math.degrees(math.atan2(page.height, page.width))
    diagonal = math.hypot(page.width, page.height)
    size = min(150.0, 0.72 * diagonal / pdfmetrics.stringWidth(label, page.f.bold, 1))
    text_width = pdfmetrics.stringWidth(label, page.f.bold, size)
    c.saveState()
    c.translate(page.width / 2, page.height / 2)
    c.rotate(angle)
    c.setFillColor(_STAMP)
    c.setStrokeColor(_STAMP)
    c.setFillAlpha(_STAMP_ALPHA)
    c.setStrokeAlpha(_STAMP_ALPHA + 0.1)
    c.setLineWidth(max(4.0, size / 18))
    pad = size * 0.25
    c.roundRect(-text_width / 2 - pad, -size * 0.55, text_width + 2 * pad, size * 1.15, size * 0.12)
    c.setFont(page.f.bold, size)
    c.drawCentredString(0, -size * 0.36, label)
    c.restoreState()


def _hard_wrap(text: str, width: int) -> str:
    """Break a long token (a URL) every `width` characters: wrapping at spaces cannot."""
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


def _party(party: Mapping[str, Any]) -> str:
    return f"{party.get('name', '')}\n{party.get('address', '')}"
