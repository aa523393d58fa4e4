"""Quality control of a physician's 主检 conclusions against the record, with the engine as the oracle.

Entry points: `qc_text` (free-text conclusions), `qc_signed_report` (the workbench's structured conclusions at sign
time) and the `zhujian qc` command (`zhujian.qc.cli`). Pure: no web, database or network imports.
"""

from zhujian.qc.engine import (
    ISSUE_KINDS,
    ISSUE_LABELS,
    QcIssue,
    blocking_issues,
    check_lines,
    qc_signed_report,
    qc_text,
)
from zhujian.qc.parse import ConclusionLine, split_conclusions
from zhujian.qc.vocabulary import load_qc_vocabulary, vocabulary_for

__all__ = [
    "ISSUE_KINDS",
    "ISSUE_LABELS",
    "ConclusionLine",
    "QcIssue",
    "blocking_issues",
    "check_lines",
    "load_qc_vocabulary",
    "qc_signed_report",
    "qc_text",
    "split_conclusions",
    "vocabulary_for",
]
