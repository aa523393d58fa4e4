"""Records for the QC tests, built from the values the tests name (reference intervals and thresholds from the KB
sources: WS/T 404/405, 中国血脂管理指南 2023, 2019 重要异常结果 consensus)."""

from __future__ import annotations

from typing import Any

from zhujian.domain.record import Record


def make_record(
    sex: str = "male",
    age: float = 45,
    items: dict[str, Any] | None = None,
    texts: dict[str, str] | None = None,
    history: list[str] | None = None,
) -> Record:
    """A record with ordinary normal vitals and blood count, plus the items and texts a test gives."""
    base: dict[str, Any] = {
        "身高": 172, "体重": 66, "收缩压": 118, "舒张压": 76, "白细胞计数": 6.1, "血红蛋白": 150 if sex == "male" else 130,
        "血小板计数": 220, "空腹血糖": 5.0, "总胆固醇": 4.5, "甘油三酯": 1.2, "高密度脂蛋白胆固醇": 1.3,
        "低密度脂蛋白胆固醇": 2.6, "丙氨酸氨基转移酶": 25, "尿酸": 330 if sex == "male" else 280, "肌酐": 75 if sex == "male" else 60,
    }
    base.update(items or {})
    return Record.model_validate(
        {
            "visit_id": "qc-test",
            "sex": sex,
            "age": age,
            "items": [{"name": name, "value": value} for name, value in base.items()],
            "texts": [{"item": item, "text": text} for item, text in (texts or {}).items()],
            "questionnaire": {"history": history or []},
        }
    )
