"""The examinee's report (体检报告) as HTML and PDF, from the report JSON.

`render_patient_report_html` needs only Jinja2; `render_patient_report_pdf` imports WeasyPrint when it is called,
because WeasyPrint is slow to import and only the PDF path needs it.
"""

from zhujian.render.html import (
    DEFAULT_CENTER_NAME,
    ReportFormatError,
    build_patient_report_view,
    follow_up_schedule,
    render_patient_report_html,
)
from zhujian.render.pdf import PdfUnavailableError, render_patient_report_pdf

__all__ = [
    "DEFAULT_CENTER_NAME",
    "PdfUnavailableError",
    "ReportFormatError",
    "build_patient_report_view",
    "follow_up_schedule",
    "render_patient_report_html",
    "render_patient_report_pdf",
]
