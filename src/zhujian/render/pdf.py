"""The examinee's report as an A4 PDF: the HTML report laid out by WeasyPrint with an embedded CJK font."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zhujian.render.html import DEFAULT_CENTER_NAME, render_patient_report_html


class PdfUnavailableError(RuntimeError):
    """WeasyPrint (or the system libraries it loads: Pango, HarfBuzz) is not installed."""


def render_patient_report_pdf(
    report: Mapping[str, Any],
    record: Mapping[str, Any] | None = None,
    *,
    signatures: Sequence[Mapping[str, Any]] | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
    display_name: str | None = None,
) -> bytes:
    """The PDF bytes of the examinee's report; arguments as for `render_patient_report_html`.

    Chinese text needs a CJK font known to fontconfig ("Noto Sans CJK SC" from Debian fonts-noto-cjk, or
    "WenQuanYi Micro Hei"); WeasyPrint embeds the subset it uses.
    """
    html = render_patient_report_html(
        report, record, signatures=signatures, center_name=center_name, display_name=display_name
    )
    try:
        # Imported here: WeasyPrint takes about half a second to import and most callers never make a PDF.
        from weasyprint import HTML  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except (ImportError, OSError) as exc:  # OSError: a system library (Pango) is missing
        raise PdfUnavailableError(f"PDF output needs WeasyPrint and Pango: {exc}") from exc
    pdf = HTML(string=html).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf returns bytes when no target is given
        raise PdfUnavailableError("WeasyPrint returned no PDF bytes")
    return pdf
