"""QC never crashes, whatever the physician typed, and reads the structured form however sparse."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qc_helpers import make_record

from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.pipeline.run import build_report
from zhujian.qc import ISSUE_KINDS, qc_signed_report, qc_text

RECORD = make_record(items={"甘油三酯": 5.4, "钾": 2.6}, texts={"超声提示": "左肾囊肿，大小约12x10mm"})
REPORT = build_report(default_kb(), RECORD)
PIECES = st.sampled_from(
    ["1.", "2、", "（3）", "①", "一、", "血脂", "正常", "偏低", "TG", "5.4", "mmol/L", "左", "右", "肾囊肿", "未见", "无",
     "建议", "；", "\n", " ", "㎎", "ＴＧ", "(", "）", "/", "↑", "高", "低", "前列腺", "150/95", "血压", "钾"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=25).map("".join)))
def test_any_text_gives_well_formed_issues(kb: KnowledgeBase, text: str) -> None:
    for issue in qc_text(kb, RECORD, text, report=REPORT):
        assert issue.kind in ISSUE_KINDS
        assert issue.detail


def test_sparse_structured_conclusions(kb: KnowledgeBase) -> None:
    conclusions = [
        {},
        {"id": None, "name": None},
        {"id": "no_such_conclusion", "name": "肾囊肿", "merged_from": ["also_unknown", 3]},
        {"name": "血脂异常", "advice": None, "follow_up": None},
    ]
    issues = qc_signed_report(RECORD, conclusions, kb)
    assert "missed" in {i.kind for i in issues}  # the class A potassium is in none of them
