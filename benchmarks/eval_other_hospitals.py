"""Score `extract` on breast, thyroid and gynaecological ultrasound text written in other hospitals' styles
(tests/data/other_hospitals, labelled per ../shared/FINDINGS.md before the extractor was run on it).

Per organ group: abnormal-text sensitivity, specificity and ICD-10 three-character F1 (`zhujian.evaluation`, as
benchmarks/eval_findings.py), the `incomplete` flag, per-lesion category accuracy (BI-RADS / C-TIRADS / TI-RADS of
each labelled lesion against the finding of the same ICD-10 category and side) and the category-dependent
conclusions of the report (BI-RADS ≥ 4 → breast_nodule_birads4, C-TIRADS ≥ 4 → thyroid_nodule_tirads4 …).

python benchmarks/eval_other_hospitals.py              # table per organ group (both halves)
python benchmarks/eval_other_hospitals.py --half test  # only the held-out half
python benchmarks/eval_other_hospitals.py --errors 40  # also list disagreements
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhujian.domain.record import Record
from zhujian.evaluation import Score, score_gold
from zhujian.kb.loader import KnowledgeBase, load_kb
from zhujian.pipeline.extract import extract_text
from zhujian.pipeline.run import build_report

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "other_hospitals"
ORGANS = ("breast", "thyroid", "gynaecology")
# Conclusions whose choice depends on a lesion's category (rules/neck_breast.yaml).
CATEGORY_CONCLUSIONS = frozenset(
    {"breast_nodule_birads4", "breast_nodule_birads3", "breast_nodule", "thyroid_nodule_tirads4", "thyroid_nodule"}
)
# FINDINGS.md accepts E06 or E07 for 甲状腺回声不均 (as zhujian.evaluation compares them).
_EQUIVALENT = {"E07": "E06"}


def load_set(organ: str, half: str = "all") -> list[dict[str, Any]]:
    """The labelled texts of one organ group; `half` "dev" (studied while tuning), "test" (held out) or "all"."""
    with (DATA / f"{organ}.jsonl").open(encoding="utf-8") as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    return entries if half == "all" else [e for e in entries if e["half"] == half]


def _icd(code: str) -> str:
    return _EQUIVALENT.get(code[:3], code[:3])


def _norm_category(category: str | None) -> str:
    return re.sub(r"\s+", " ", (category or "").upper()).strip()


@dataclass
class OrganResult:
    organ: str
    score: Score
    incomplete_right: int = 0
    lesions: int = 0
    lesions_right: int = 0
    conclusion_texts: int = 0
    conclusion_right: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = self.score.as_dict()
        d["incomplete_accuracy"] = round(self.incomplete_right / self.score.texts, 4) if self.score.texts else 1.0
        d["lesions"] = self.lesions
        d["lesion_category_accuracy"] = round(self.lesions_right / self.lesions, 4) if self.lesions else 1.0
        d["conclusion_texts"] = self.conclusion_texts
        d["conclusion_accuracy"] = (
            round(self.conclusion_right / self.conclusion_texts, 4) if self.conclusion_texts else 1.0
        )
        return d


def category_conclusions(kb: KnowledgeBase, item: str, text: str) -> set[str]:
    """The category-dependent conclusion ids of a report made from this one text."""
    record = Record.model_validate(
        {"visit_id": "other-hospitals", "sex": "female", "age": 50, "texts": [{"item": item, "text": text}]}
    )
    report = build_report(kb, record, with_history=False)
    return {c.conclusion_id for c in report.conclusions} & CATEGORY_CONCLUSIONS


def score_organ(kb: KnowledgeBase, organ: str, half: str = "all") -> OrganResult:
    entries = load_set(organ, half)
    gold = [{"key": e["id"], "findings": e["findings"]} for e in entries]
    texts = {e["id"]: (e["item"], e["text"], 1) for e in entries}
    scores = score_gold(kb, gold, texts)
    result = OrganResult(organ, scores["all"])
    for err in scores["all"].errors:
        result.errors.append(f"[{err['key']}] {err['text']}\n  gold: {err['expected']}\n  got : {err['predicted']}")
    for e in entries:
        extracted = extract_text(kb, e["item"], e["text"])
        result.incomplete_right += extracted.incomplete == e["incomplete"]
        if extracted.incomplete != e["incomplete"]:
            result.errors.append(f"[{e['id']}] incomplete: gold {e['incomplete']}, got {extracted.incomplete}")
        for f in e["findings"]:
            want = f["attrs"].get("category")
            if want is None:
                continue
            result.lesions += 1
            side = f["attrs"].get("side")
            same = [
                p for p in extracted.findings
                if _icd(p.icd10) == _icd(f["icd10"]) and (organ == "thyroid" or side is None
                                                         or p.attrs.get("side") == side)
            ]
            got = sorted(_norm_category(p.attrs.get("category")) for p in same)
            if _norm_category(want) in got:
                result.lesions_right += 1
            else:
                result.errors.append(f"[{e['id']}] category of {f['name']} {side or ''}: gold {want}, got {got}")
        if "conclusions" in e:
            result.conclusion_texts += 1
            got_ids = category_conclusions(kb, e["item"], e["text"])
            if got_ids == set(e["conclusions"]):
                result.conclusion_right += 1
            else:
                result.errors.append(f"[{e['id']}] conclusions: gold {sorted(e['conclusions'])}, got {sorted(got_ids)}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--errors", type=int, default=0, help="list up to this many disagreements per organ group")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--half", choices=("dev", "test", "all"), default="all", help="the dev half, the held-out test half or both"
    )
    args = parser.parse_args()
    kb = load_kb()
    results = [score_organ(kb, organ, args.half) for organ in ORGANS]
    if args.json:
        print(json.dumps({r.organ: r.as_dict() for r in results}, ensure_ascii=False, indent=2))
    else:
        print(
            "| organ | texts | abnormal | normal | sensitivity | specificity | ICD-10 P | ICD-10 R | ICD-10 F1 "
            "| incomplete flag | lesion category | category conclusions |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results:
            d = r.as_dict()
            print(
                f"| {r.organ} | {d['texts']} | {d['abnormal_texts']} | {d['normal_texts']} | {d['sensitivity']:.3f} | "
                f"{d['specificity']:.3f} | {d['icd10_precision']:.3f} | {d['icd10_recall']:.3f} | "
                f"{d['icd10_f1']:.3f} | {d['incomplete_accuracy']:.3f} | "
                f"{r.lesions_right}/{r.lesions} ({d['lesion_category_accuracy']:.3f}) | "
                f"{r.conclusion_right}/{r.conclusion_texts} ({d['conclusion_accuracy']:.3f}) |"
            )
    for r in results:
        for err in r.errors[: args.errors]:
            print(f"\n{err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
