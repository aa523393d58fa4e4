"""Scoring of text findings against hand-labelled gold sets (FINDINGS.md conventions).

Metrics, per text:
- abnormal-text sensitivity: of the texts the gold set calls abnormal (≥ 1 finding), the share with ≥ 1 extracted
  finding;
- specificity: of the texts the gold set calls normal, the share with no extracted finding;
- ICD-10 finding F1: micro-averaged over texts, comparing the multisets of WHO three-character categories.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.extract import extract_text

# Meinian table ids (../shared/data/README.md) and the exam-item label a checkup system would give each.
ITEM_OF_TABLE = {
    "0101": "超声所见",
    "0102": "超声提示",
    "0113": "肝脏",
    "0114": "胆囊",
    "0115": "胰腺",
    "0116": "脾脏",
    "0117": "左肾",
    "0118": "右肾",
    "1001": "心电图",
    "1308": "眼科",
    "2302": "健康状况",
}


def text_key(table_id: str, text: str) -> str:
    return table_id + ":" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_texts(path: Path) -> dict[str, tuple[str, str, int]]:
    """key → (table_id, text, count) for texts_dev.csv."""
    out: dict[str, tuple[str, str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out[text_key(row["table_id"], row["text"])] = (row["table_id"], row["text"], int(row["count"] or 1))
    return out


def gold_half(key: str) -> str:
    """Stable split of the gold set: "dev" texts may be studied while tuning the lexicon, "test" texts may not."""
    return "dev" if int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 2 == 0 else "test"


def load_gold(paths: Iterable[Path]) -> list[dict[str, Any]]:
    gold: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            gold.extend(json.loads(line) for line in handle if line.strip())
    return gold


@dataclass
class Score:
    texts: int = 0
    abnormal: int = 0
    abnormal_hit: int = 0
    normal: int = 0
    normal_clean: int = 0
    tp: int = 0
    predicted: int = 0
    expected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sensitivity(self) -> float:
        return self.abnormal_hit / self.abnormal if self.abnormal else 1.0

    @property
    def specificity(self) -> float:
        return self.normal_clean / self.normal if self.normal else 1.0

    @property
    def precision(self) -> float:
        return self.tp / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "abnormal_texts": self.abnormal,
            "normal_texts": self.normal,
            "sensitivity": round(self.sensitivity, 4),
            "specificity": round(self.specificity, 4),
            "icd10_precision": round(self.precision, 4),
            "icd10_recall": round(self.recall, 4),
            "icd10_f1": round(self.f1, 4),
        }


# FINDINGS.md accepts E06 or E07 for 甲状腺回声不均; compare them as one category.
_EQUIVALENT = {"E07": "E06"}


def _category(code: str) -> str:
    return _EQUIVALENT.get(code[:3], code[:3])


def score_gold(
    kb: KnowledgeBase, gold: list[dict[str, Any]], texts: dict[str, tuple[str, str, int]]
) -> dict[str, Score]:
    """Scores overall ("all") and per table id. Gold entries whose text is not in `texts` are skipped."""
    scores: dict[str, Score] = {"all": Score()}
    for entry in gold:
        found = texts.get(entry["key"])
        if found is None:
            continue
        table, text, _count = found
        result = extract_text(kb, ITEM_OF_TABLE.get(table, table), text)
        expected = Counter(_category(f["icd10"]) for f in entry["findings"])
        predicted = Counter(_category(f.icd10) for f in result.findings)
        for s in (scores["all"], scores.setdefault(table, Score())):
            s.texts += 1
            if expected:
                s.abnormal += 1
                s.abnormal_hit += bool(predicted)
            else:
                s.normal += 1
                s.normal_clean += not predicted
            s.tp += sum((expected & predicted).values())
            s.predicted += sum(predicted.values())
            s.expected += sum(expected.values())
        if expected != predicted:
            scores["all"].errors.append({
                "key": entry["key"],
                "text": text,
                "expected": sorted(f"{f['name']}/{f['icd10'][:3]}" for f in entry["findings"]),
                "predicted": sorted(f"{f.name}/{f.icd10[:3]}" for f in result.findings),
            })
    return scores
