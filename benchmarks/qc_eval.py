"""QC of physicians' 主检 conclusions: detection per issue kind and false alarms on clean lists.

Records: the bundled examples and golden cases (tests/cases/*/input.json), Tianchi checkup rows read through the
`wide-csv` adapter, and Tianchi rows composed with real Meinian ultrasound / ECG / kidney texts (../shared/data).
For each record the engine's report is the reference; a *clean* physician list is written from it with this file's
own phrasing table (how physicians word each conclusion, with and without values, advice, sides, in several
numbering styles) — nothing here calls the QC vocabulary or its normalizer. Then one error of one kind is injected
into a copy of the clean list (dropped conclusion, normal/opposite statement, wrong number, opposite-sex term,
swapped side, unsupported diagnosis, duplicated line, advice removed from a class A/B line).

Counted: a clean list with any issue is a false alarm; an injected list is detected when QC reports the injected
kind (for `missed`, the dropped engine conclusion by name) more often than on its clean list.

    python benchmarks/qc_eval.py                      # 600 Tianchi rows (half with Meinian texts) + cases
    python benchmarks/qc_eval.py --tianchi 100 --show 5
    python benchmarks/qc_eval.py --phrasings heldout  # only the held-out phrasing table
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhujian.qc.engine import ISSUE_KINDS

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data next to the checkout (or one level further up for a checkout inside a folder of worktrees).
DATA = next(
    (p for p in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data") if p.exists()),
    ROOT.parent / "shared" / "data",
)
KINDS = ISSUE_KINDS

# ---------------------------------------------------------------------------------------------------------------
# How physicians word conclusions. Written for this benchmark from checkup-report practice and the CHIP-CDN
# diagnosis texts (../shared/data/chip-cdn: 血脂高, 高血脂, 肝酶异常, 肝功异常, 尿酸增高, 高尿酸, 血糖增高 …).
# `{side}` is filled with 左/右/双 from the record's finding. DEV phrasings may have guided the QC vocabulary;
# HELDOUT phrasings were written at the same time and kept out of any tuning.
# ---------------------------------------------------------------------------------------------------------------
DEV: dict[str, list[str]] = {
    "dyslipidemia": ["血脂异常", "高脂血症", "血脂偏高", "血脂紊乱"],
    "高胆固醇血症": ["高胆固醇血症", "胆固醇偏高"],
    "高甘油三酯血症": ["高甘油三酯血症", "甘油三酯升高"],
    "混合型高脂血症": ["混合型高脂血症"],
    "低高密度脂蛋白胆固醇血症": ["低高密度脂蛋白胆固醇血症", "高密度脂蛋白偏低"],
    "dyslipidemia_severe_tg": ["高甘油三酯血症（重度）", "甘油三酯重度升高", "血脂异常（甘油三酯明显升高）"],
    "lipid_borderline": ["血脂边缘升高", "血脂临界偏高"],
    "ifg": ["空腹血糖受损", "空腹血糖偏高", "糖尿病前期（空腹血糖受损）"],
    "diabetes_suspected": ["血糖升高", "空腹血糖升高，糖尿病待排", "高血糖"],
    "hyperglycemia_marked": ["血糖明显升高", "血糖显著增高"],
    "diabetes_known": ["2型糖尿病", "糖尿病"],
    "hba1c_elevated": ["糖化血红蛋白偏高", "HbA1c升高"],
    "hyperuricemia": ["高尿酸血症", "尿酸偏高", "血尿酸升高"],
    "transaminase_elevated": ["转氨酶升高", "ALT升高", "谷丙转氨酶升高", "肝功能异常"],
    "transaminase_marked": ["转氨酶明显升高", "肝功能明显异常"],
    "ggt_elevated": ["γ-谷氨酰转移酶升高", "GGT偏高", "转肽酶升高"],
    "bilirubin_elevated": ["胆红素偏高", "总胆红素升高"],
    "anemia": ["贫血", "轻度贫血", "血红蛋白偏低"],
    "anemia_moderate": ["中度贫血"],
    "leukopenia": ["白细胞减少", "白细胞偏低"],
    "leukocytosis": ["白细胞增多", "白细胞偏高"],
    "thrombocytopenia": ["血小板减少", "血小板偏低"],
    "plt_low_mild": ["血小板计数偏低", "血小板稍低"],
    "hypokalemia": ["低钾血症", "血钾偏低"],
    "hypokalemia_critical": ["严重低钾血症", "低钾血症（危急值）"],
    "egfr_g3": ["肾功能不全", "估算肾小球滤过率降低", "慢性肾脏病3期"],
    "creatinine_elevated": ["血肌酐升高", "肌酐偏高"],
    "hypertension_known": ["高血压病", "原发性高血压", "高血压"],
    "bp_elevated": ["血压升高", "血压偏高"],
    "bp_elevated_marked": ["血压明显升高"],
    "obesity": ["肥胖", "肥胖症"],
    "central_obesity": ["中心型肥胖", "腹型肥胖"],
    "metabolic_syndrome": ["代谢综合征"],
    "abd_c_fatty_liver": ["脂肪肝", "轻度脂肪肝", "脂肪肝（轻度）", "中度脂肪肝"],
    "abd_c_fatty_liver_severe": ["重度脂肪肝"],
    "abd_c_gallbladder_polyp": ["胆囊息肉", "胆囊息肉样病变"],
    "abd_c_gallbladder_stone": ["胆囊结石", "胆结石"],
    "abd_c_kidney_cyst": ["{side}肾囊肿"],
    "abd_c_kidney_stone": ["{side}肾结石"],
    "abd_c_kidney_crystal": ["{side}肾结晶", "{side}肾内钙化灶"],
    "abd_c_liver_cyst": ["肝囊肿"],
    "abd_c_liver_hemangioma": ["肝血管瘤"],
    "abd_c_prostate_hyperplasia": ["前列腺增生", "前列腺肥大"],
    "abd_c_prostate_calcification": ["前列腺钙化灶", "前列腺钙化"],
    "thyroid_nodule": ["甲状腺{side}叶结节", "甲状腺结节"],
    "breast_hyperplasia": ["{side}乳腺增生", "乳腺小叶增生"],
    "breast_nodule": ["{side}乳腺结节"],
    "carotid_plaque": ["{side}颈动脉斑块", "颈动脉斑块形成"],
    "carotid_imt": ["颈动脉内中膜增厚"],
    "gyn_myoma": ["子宫肌瘤"],
    "ecg_c_sinus_brady": ["窦性心动过缓", "窦缓"],
    "ecg_c_sinus_tachy": ["窦性心动过速", "窦速"],
    "ecg_c_sinus_arrhythmia": ["窦性心律不齐"],
    "ecg_c_t_change": ["T波改变", "T波异常"],
    "ecg_c_st_t_change": ["ST-T改变", "ST-T异常"],
    "ecg_c_crbbb": ["完全性右束支传导阻滞", "完右"],
    "ecg_c_irbbb": ["不完全性右束支传导阻滞"],
    "ecg_c_pvc": ["室性早搏", "室早"],
    "ecg_c_pac": ["房性早搏", "房早"],
    "ecg_c_af": ["心房颤动", "房颤"],
    "hp_infection": ["幽门螺杆菌感染", "Hp阳性"],
    "hbsag_positive": ["乙肝表面抗原阳性", "HBsAg阳性"],
    "hbv_small_three": ["乙肝小三阳"],
}
HELDOUT: dict[str, list[str]] = {
    "dyslipidemia": ["血脂高", "高血脂", "血脂增高", "血脂代谢异常"],
    "高甘油三酯血症": ["高甘油三脂"],
    "混合型高脂血症": ["混合性高脂血症"],
    "ifg": ["空腹血糖调节受损", "糖调节受损"],
    "diabetes_suspected": ["血糖增高", "血糖偏高（糖尿病可能）"],
    "hyperuricemia": ["高尿酸", "尿酸增高"],
    "transaminase_elevated": ["肝酶异常", "肝功异常", "肝功能轻度异常", "谷丙转氨酶偏高"],
    "ggt_elevated": ["谷氨酰转肽酶增高"],
    "anemia": ["贫血（轻度）", "血色素偏低"],
    "hypertension_known": ["高血压病（服药中）", "高血压2级"],
    "obesity": ["体重超标"],
    "abd_c_fatty_liver": ["非酒精性脂肪肝", "肝脂肪浸润", "脂肪性肝病"],
    "abd_c_gallbladder_polyp": ["胆囊多发息肉"],
    "abd_c_kidney_cyst": ["{side}肾单纯性囊肿"],
    "thyroid_nodule": ["甲状腺多发结节", "甲状腺{side}叶实性结节"],
    "ecg_c_sinus_brady": ["心动过缓（窦性）"],
    "ecg_c_sinus_arrhythmia": ["窦不齐"],
    "ecg_c_t_change": ["T波低平"],
    "breast_hyperplasia": ["乳腺增生症"],
}
# Item names as physicians quote them.
ITEM_NAMES: dict[str, list[str]] = {
    "tc": ["总胆固醇", "TC", "胆固醇"],
    "tg": ["甘油三酯", "TG"],
    "ldl": ["低密度脂蛋白胆固醇", "LDL-C"],
    "hdl": ["高密度脂蛋白胆固醇", "HDL-C"],
    "glu": ["空腹血糖", "血糖", "FPG"],
    "hba1c": ["糖化血红蛋白", "HbA1c"],
    "ua": ["尿酸", "血尿酸", "UA"],
    "alt": ["谷丙转氨酶", "ALT", "丙氨酸氨基转移酶"],
    "ast": ["谷草转氨酶", "AST"],
    "ggt": ["GGT", "γ-谷氨酰转移酶"],
    "crea": ["肌酐", "血肌酐"],
    "hgb": ["血红蛋白", "Hb"],
    "plt": ["血小板", "PLT"],
    "wbc": ["白细胞", "WBC"],
    "k": ["血钾", "钾"],
}
# What a physician writes when he (wrongly) calls a domain normal, by item; and an organ, by text-finding site.
NORMAL_BY_ITEM = {
    "tc": ["血脂正常", "血脂未见异常"], "tg": ["血脂正常", "血脂四项未见异常"], "ldl": ["血脂正常"],
    "hdl": ["血脂正常"], "glu": ["血糖正常", "空腹血糖正常"], "ua": ["尿酸正常"],
    "alt": ["肝功能正常", "肝功能未见异常"],
    "ast": ["肝功能正常"], "ggt": ["肝功能未见明显异常"], "crea": ["肾功能正常"], "hgb": ["血常规未见异常"],
    "plt": ["血常规正常"], "wbc": ["血常规正常"], "k": ["电解质正常"], "sbp": ["血压正常"], "dbp": ["血压正常"],
    "hba1c": ["血糖正常"],
}
NORMAL_BY_SITE = {
    "肝脏": ["肝胆脾胰未见明显异常", "肝脏未见异常"], "胆囊": ["肝胆脾胰未见明显异常"], "肾脏": ["双肾未见明显异常"],
    "甲状腺": ["甲状腺未见明显异常"], "颈动脉": ["颈动脉未见明显异常"], "心电图": ["心电图正常", "心电图未见异常"],
    "乳腺": ["乳腺未见明显异常"],
}
OPPOSITE_WORDS = {"high": ["偏低", "降低"], "low": ["偏高", "升高"]}
# Conclusions impossible for the other sex.
SEX_LINES = {
    "male": ["前列腺增生", "前列腺钙化灶", "精索静脉曲张", "睾丸鞘膜积液"],
    "female": ["子宫肌瘤", "宫颈纳氏囊肿", "卵巢囊肿", "子宫内膜增厚"],
}
# A lab diagnosis is unsupported when its item is present and normal; an imaging one when nothing like it is seen.
UNSUPPORTED_LAB = [
    ("贫血", "hgb"), ("高尿酸血症", "ua"), ("血小板减少", "plt"), ("白细胞减少", "wbc"), ("高甘油三酯血症", "tg"),
    ("谷丙转氨酶升高", "alt"), ("空腹血糖受损", "glu"), ("低钾血症", "k"), ("高胆固醇血症", "tc"),
]
UNSUPPORTED_IMAGING = [
    ("胆囊结石", ("K80",)), ("右肾结石", ("N20",)), ("肝血管瘤", ("D18",)), ("颈动脉斑块", ("I65", "I70")),
    ("甲状腺结节", ("E04",)), ("心房颤动", ("I48",)), ("完全性左束支传导阻滞", ("I44",)), ("肺结节", ("R91",)),
]
ADVICE = [
    "建议{dept}随访", "建议{dept}就诊", "请于{dept}进一步诊治", "建议定期复查", "建议低脂饮食、适量运动，3个月后复查",
    "{follow}",
]
SIDE_WORD = {"左": "左", "右": "右", "双侧": "双"}
OPPOSITE_SIDE = {"左": "右", "右": "左"}
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


# ---------------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------------
def bundled_records() -> list[dict[str, Any]]:
    from zhujian.examples import example_names, load_example

    out = [load_example(name) for name in example_names()]
    for path in sorted((ROOT / "tests" / "cases").glob("*/input.json")):
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def meinian_texts(rng: random.Random) -> dict[str, list[str]]:
    """Distinct real texts by exam item: ultrasound conclusions, ECG conclusions, left/right kidney descriptions."""
    path = DATA / "meinian" / "texts_dev.csv"
    wanted = {"0102": "超声提示", "1001": "心电图", "0117": "左肾", "0118": "右肾"}
    out: dict[str, list[str]] = {v: [] for v in wanted.values()}
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            item = wanted.get(row["table_id"])
            if item and 2 <= len(row["text"]) <= 200:
                out[item].append(row["text"])
    for texts in out.values():
        rng.shuffle(texts)
    return out


def tianchi_records(kb: Any, count: int, rng: random.Random) -> list[dict[str, Any]]:
    from zhujian.adapters import ingest_file

    path = DATA / "tianchi-diabetes" / "d_train_20180102.csv"
    result = ingest_file(path, "wide-csv", kb=kb)
    records = [r.model_dump(mode="json", exclude_none=True) for r in result if r.sex in ("male", "female")]
    rng.shuffle(records)
    return records[:count]


def compose(record: dict[str, Any], texts: dict[str, list[str]], rng: random.Random) -> dict[str, Any]:
    """Add real Meinian texts to a lab record: one ultrasound conclusion (matching the examinee's sex), one ECG,
    and sometimes a kidney description."""
    out = dict(record)
    added = []
    female_only = ("子宫", "卵巢", "附件", "宫颈", "宫腔", "节育器")
    other = female_only if record["sex"] == "male" else ("前列腺", "睾丸", "精索")
    for item, chance in (("超声提示", 1.0), ("心电图", 0.8), ("左肾", 0.2), ("右肾", 0.2)):
        if rng.random() > chance or not texts[item]:
            continue
        for _ in range(20):
            text = rng.choice(texts[item])
            if not any(word in text for word in other):
                added.append({"item": item, "text": text})
                break
    out["texts"] = list(record.get("texts", [])) + added
    out["visit_id"] = f"{record['visit_id']}-mn"
    return out


# ---------------------------------------------------------------------------------------------------------------
# Clean lists and injected errors
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Line:
    conclusion_id: str
    body: str
    advice: str = ""

    def text(self) -> str:
        return f"{self.body}，{self.advice}" if self.advice else self.body


@dataclass
class Draft:
    lines: list[Line]
    style: int
    heading: bool
    targets: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        parts = []
        for i, line in enumerate(self.lines, start=1):
            text = line.text()
            circled = CIRCLED[i - 1] if i <= len(CIRCLED) else f"{i}."
            marker = [f"{i}. ", f"{i}、", f"（{i}）", circled, f"{i}）", ""][self.style]
            parts.append(marker + text)
        # Unnumbered lists: one per line, or (for every other list) all on one line separated by "；".
        joiner = "；" if self.style == 5 and len(parts) % 2 == 0 else "\n"
        body = joiner.join(parts)
        return ("主检结论：\n" + body) if self.heading else body


def _important(conclusion: dict[str, Any]) -> bool:
    return conclusion["level"] in ("A", "B") or conclusion["category"] == "disease"


def _side_of(conclusion: dict[str, Any], report: dict[str, Any]) -> str | None:
    """The one side the record gives for the conclusion's findings (None when none, or when texts disagree)."""
    ids = {e.get("finding_id") for e in conclusion["evidence"] if e["kind"] == "finding"}
    sides = {
        str(f["attrs"]["side"])
        for f in report["findings"]
        if f["finding_id"] in ids and isinstance(f["attrs"].get("side"), str)
    }
    return sides.pop() if len(sides) == 1 else None


def _bare(name: str) -> str:
    return re.sub(r"（[^（）]*）", "", name).strip() or name


def _quote(items: dict[str, dict[str, Any]], item_id: str, rng: random.Random, value: str | None = None) -> str | None:
    item = items.get(item_id)
    if item is None or item["raw_value"] is None:
        return None
    raw = str(item["raw_value"]) if value is None else value
    if not re.fullmatch(r"\d+(?:\.\d+)?", raw):
        return None
    name = rng.choice(ITEM_NAMES.get(item_id, [item["name"]]))
    unit = f" {item['unit']}" if item.get("unit") and rng.random() < 0.7 else ""
    return f"{name} {raw}{unit}"


def phrase_for(conclusion: dict[str, Any], table: dict[str, list[str]], rng: random.Random) -> str:
    choices = list(table.get(conclusion["id"], []))
    # A lipid subtype is worded only when it is the engine's type (血脂异常（高胆固醇血症）→ 高胆固醇血症 …).
    qualifier = re.search(r"（([^（）]*)）", conclusion["name"])
    if conclusion["id"] == "dyslipidemia" and qualifier:
        choices += table.get(qualifier.group(1), [])
    if not choices:
        return rng.choice([conclusion["name"], _bare(conclusion["name"])])
    return rng.choice(choices)


def clean_draft(report: dict[str, Any], table: dict[str, list[str]], rng: random.Random) -> Draft:
    items = {i["item_id"]: i for i in report["items"] if i.get("item_id")}
    lines: list[Line] = []
    for c in report["conclusions"]:
        if not _important(c) and rng.random() < 0.5:
            continue  # minor findings are often left out; QC does not ask for them by default
        body = phrase_for(c, table, rng)
        side = _side_of(c, report)
        if "{side}" in body:
            body = body.replace("{side}", SIDE_WORD.get(side or "", ""))
        elif side in ("左", "右") and rng.random() < 0.5 and c["id"].startswith("abd_c_kidney"):
            body = side + body
        quoted = [
            q
            for e in c["evidence"]
            if e["kind"] == "item" and e.get("flag") in ("high", "low") and rng.random() < 0.5
            for q in [_quote(items, e["item_id"], rng)]
            if q
        ]
        if quoted:
            body += "：" + "，".join(quoted[:3])
        advice = ""
        if c["level"] in ("A", "B") or rng.random() < 0.5:
            advice = rng.choice(ADVICE).format(dept=c["department"].split("/")[0], follow=c["follow_up"])
        lines.append(Line(c["id"], body, advice))
    if rng.random() < 0.2:
        rng.shuffle(lines)  # not every physician keeps the engine's order
    return Draft(lines, rng.randrange(6), rng.random() < 0.5)


def _copy(draft: Draft) -> Draft:
    return Draft([Line(x.conclusion_id, x.body, x.advice) for x in draft.lines], draft.style, draft.heading)


Injector = Callable[[Draft, dict[str, Any], random.Random], Draft | None]


def inject_missed(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    by_id = {c["id"]: c for c in report["conclusions"]}
    options = [i for i, x in enumerate(draft.lines) if _important(by_id[x.conclusion_id])]
    if not options:
        return None
    index = rng.choice(options)
    out = _copy(draft)
    gone = out.lines.pop(index)
    out.targets["missed"] = by_id[gone.conclusion_id]["name"]
    return out


def inject_contradiction(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    by_id = {c["id"]: c for c in report["conclusions"]}
    items = {i["item_id"]: i for i in report["items"] if i.get("item_id")}
    options: list[tuple[int, str]] = []
    for i, line in enumerate(draft.lines):
        c = by_id[line.conclusion_id]
        if not _important(c):
            continue
        for e in c["evidence"]:
            if e["kind"] == "item" and e.get("flag") in ("high", "low"):
                if e["item_id"] in NORMAL_BY_ITEM:
                    options.append((i, rng.choice(NORMAL_BY_ITEM[e["item_id"]])))
                if e["item_id"] in ITEM_NAMES and e["item_id"] in items:
                    word = rng.choice(OPPOSITE_WORDS[e["flag"]])
                    options.append((i, rng.choice(ITEM_NAMES[e["item_id"]]) + word))
            elif e["kind"] == "finding":
                site = next((f["site"] for f in report["findings"] if f["finding_id"] == e.get("finding_id")), None)
                if site in NORMAL_BY_SITE:
                    options.append((i, rng.choice(NORMAL_BY_SITE[site])))
    if not options:
        return None
    index, text = rng.choice(options)
    out = _copy(draft)
    out.lines[index] = Line(out.lines[index].conclusion_id, text)
    return out


def inject_value(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    by_id = {c["id"]: c for c in report["conclusions"]}
    items = {i["item_id"]: i for i in report["items"] if i.get("item_id")}
    options = []
    for i, line in enumerate(draft.lines):
        for e in by_id[line.conclusion_id]["evidence"]:
            item = items.get(e.get("item_id") or "")
            numeric = item is not None and isinstance(item["value"], int | float) and item["value"] > 0
            if e["kind"] == "item" and item and numeric and re.fullmatch(r"\d+(?:\.\d+)?", str(item["raw_value"])):
                options.append((i, e["item_id"], item))
    if not options:
        return None
    index, item_id, item = rng.choice(options)
    raw = str(item["raw_value"])
    decimals = len(raw.split(".")[1]) if "." in raw else 0
    factor = rng.uniform(1.25, 1.6) if rng.random() < 0.5 else rng.uniform(0.5, 0.8)
    wrong = f"{float(raw) * factor:.{decimals}f}"
    if abs(float(wrong) - float(raw)) < max(0.1 * float(raw), 10**-decimals):
        return None
    quoted = _quote(items, item_id, rng, wrong)
    if quoted is None:
        return None
    out = _copy(draft)
    line = out.lines[index]
    out.lines[index] = Line(line.conclusion_id, re.sub(r"：.*$", "", line.body) + "：" + quoted, line.advice)
    return out


def inject_sex(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    if report["sex"] not in ("male", "female"):
        return None
    other = "female" if report["sex"] == "male" else "male"
    out = _copy(draft)
    out.lines.insert(rng.randrange(len(out.lines) + 1), Line("", rng.choice(SEX_LINES[other])))
    return out


def inject_side(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    by_id = {c["id"]: c for c in report["conclusions"]}
    options = []
    for i, line in enumerate(draft.lines):
        side = _side_of(by_id[line.conclusion_id], report)
        if side in OPPOSITE_SIDE and side in line.body:
            options.append((i, side))
    if not options:
        return None
    index, side = rng.choice(options)
    out = _copy(draft)
    line = out.lines[index]
    out.lines[index] = Line(line.conclusion_id, line.body.replace(side, OPPOSITE_SIDE[side], 1), line.advice)
    return out


def inject_unsupported(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    items = {i["item_id"]: i for i in report["items"] if i.get("item_id")}
    codes = [c["icd10"] for c in report["conclusions"]] + [f["icd10"] for f in report["findings"]]
    options = [text for text, item in UNSUPPORTED_LAB if item in items and items[item]["flag"] == "normal"]
    options += [text for text, prefixes in UNSUPPORTED_IMAGING if not any(c.startswith(prefixes) for c in codes)]
    if not options:
        return None
    out = _copy(draft)
    out.lines.insert(rng.randrange(len(out.lines) + 1), Line("", rng.choice(options)))
    return out


def inject_duplicate(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    if not draft.lines:
        return None
    out = _copy(draft)
    line = rng.choice(out.lines)
    out.lines.append(Line(line.conclusion_id, line.body, rng.choice(["", line.advice])))
    return out


def inject_missing_advice(draft: Draft, report: dict[str, Any], rng: random.Random) -> Draft | None:
    by_id = {c["id"]: c for c in report["conclusions"]}
    options = [i for i, x in enumerate(draft.lines) if by_id[x.conclusion_id]["level"] in ("A", "B")]
    if not options:
        return None
    out = _copy(draft)
    for i in options:
        out.lines[i].advice = ""
    return out


INJECTORS: dict[str, Injector] = {
    "missed": inject_missed,
    "contradiction": inject_contradiction,
    "value_mismatch": inject_value,
    "sex_mismatch": inject_sex,
    "side_mismatch": inject_side,
    "unsupported": inject_unsupported,
    "duplicate": inject_duplicate,
    "missing_advice": inject_missing_advice,
}


# ---------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    clean: int = 0
    false_alarm_lists: int = 0
    false_alarm_kinds: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    detected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)


def _detected(kind: str, clean: list[dict[str, Any]], dirty: list[dict[str, Any]], target: str | None) -> bool:
    if kind == "missed" and target is not None:
        return any(i["kind"] == "missed" and i["conclusion"] == target for i in dirty)
    return sum(i["kind"] == kind for i in dirty) > sum(i["kind"] == kind for i in clean)


def evaluate(records: list[dict[str, Any]], table: dict[str, list[str]], seed: int, show: int = 0) -> Result:
    from zhujian.domain.record import Record
    from zhujian.kb.loader import default_kb
    from zhujian.pipeline.run import build_report
    from zhujian.qc import qc_text

    kb = default_kb()
    rng = random.Random(seed)
    result = Result()
    for data in records:
        record = Record.model_validate(data)
        report_obj = build_report(kb, record)
        report = report_obj.to_dict()
        draft = clean_draft(report, table, rng)
        clean_text = draft.render()
        clean_issues = [i.to_dict() for i in qc_text(kb, record, clean_text, report=report_obj)]
        result.clean += 1
        if clean_issues:
            result.false_alarm_lists += 1
            result.false_alarm_kinds.update(i["kind"] for i in clean_issues)
            result.examples.setdefault("false alarm", []).append(
                f"{record.visit_id}: {clean_issues[0]['kind']}: {clean_issues[0]['detail']} ← {clean_text!r}"
            )
        for kind, injector in INJECTORS.items():
            dirty = injector(draft, report, rng)
            if dirty is None:
                continue
            dirty_issues = [i.to_dict() for i in qc_text(kb, record, dirty.render(), report=report_obj)]
            result.injected[kind] += 1
            if _detected(kind, clean_issues, dirty_issues, dirty.targets.get(kind)):
                result.detected[kind] += 1
            else:
                result.examples.setdefault(kind, []).append(f"{record.visit_id}: {dirty.render()!r}")
    if show:
        for key, lines in result.examples.items():
            print(f"--- not right: {key} ({len(lines)})", file=sys.stderr)
            for line in lines[:show]:
                print("   ", line[:400], file=sys.stderr)
    return result


def load_records(tianchi: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from zhujian.kb.loader import default_kb

    rng = random.Random(seed)
    records = bundled_records()
    counts = {"bundled examples and golden cases": len(records)}
    if tianchi and (DATA / "tianchi-diabetes").exists():
        lab = tianchi_records(default_kb(), tianchi, rng)
        half = len(lab) // 2
        records += lab[:half]
        counts["Tianchi lab rows"] = half
        if (DATA / "meinian").exists():
            texts = meinian_texts(rng)
            records += [compose(r, texts, rng) for r in lab[half:]]
            counts["Tianchi rows + Meinian texts"] = len(lab) - half
        else:
            records += lab[half:]
            counts["Tianchi lab rows"] = len(lab)
    return records, counts


def summary(result: Result) -> Iterator[str]:
    yield "| kind | injected | detected | rate |"
    yield "|---|---:|---:|---:|"
    for kind in KINDS:
        n, d = result.injected[kind], result.detected[kind]
        yield f"| {kind} | {n} | {d} | {d / n:.3f} |" if n else f"| {kind} | 0 | 0 | – |"
    rate = result.false_alarm_lists / result.clean if result.clean else 0.0
    yield ""
    yield f"clean lists: {result.clean}; with any issue (false alarm): {result.false_alarm_lists} ({rate:.1%})"
    if result.false_alarm_kinds:
        yield "false-alarm issues by kind: " + ", ".join(f"{k} {v}" for k, v in result.false_alarm_kinds.most_common())


# Common checkup diagnoses as groups of ICD-10 categories (a concept may sit in neighbouring categories: 2型糖尿病 is
# E11 in the 北京临床版, the KB's 糖尿病 E14).
CHECKUP_GROUPS: dict[str, tuple[str, ...]] = {
    "血脂异常": ("E78",), "高尿酸/痛风": ("E79", "M10"), "糖尿病/高血糖": ("E10", "E11", "E12", "E13", "E14", "R73"),
    "高血压": ("I10", "I11", "I12", "I13", "I15"), "脂肪肝": ("K76.0",), "贫血": ("D50", "D51", "D52", "D53", "D64"),
    "胆囊结石/息肉/胆囊炎": ("K80", "K81", "K82"), "肾结石": ("N20",), "肾囊肿": ("N28.1",), "甲状腺结节": ("E04",),
    "甲亢/甲减": ("E03", "E05"), "心房颤动": ("I48",), "早搏/心律失常": ("I49",), "传导阻滞": ("I44", "I45"),
    "前列腺增生": ("N40",), "子宫肌瘤": ("D25",), "肥胖": ("E66",), "电解质紊乱": ("E87",),
    "动脉斑块/硬化": ("I65.2", "I70"), "骨质疏松": ("M81",), "乙肝": ("B18", "Z22"), "肺结节": ("R91",),
    "转氨酶/肝功能": ("R74",),
}


def _groups(codes: set[str]) -> set[str]:
    # Morphology codes (M8140/3 腺癌) share the letter M with musculoskeletal categories: they are not diagnoses here.
    codes = {c for c in codes if "/" not in c}
    return {name for name, prefixes in CHECKUP_GROUPS.items() if any(c.startswith(prefixes) for c in codes)}


def chip_cdn_wording(split: str = "dev") -> Iterator[str]:
    """Recognition of real diagnosis wording the QC vocabulary was never tuned on: the CHIP-CDN dev texts
    (physician-written, inpatient style). Gold: the text's normalized diagnoses (ICD-10 北京临床版 names → codes) in
    the common checkup groups above. Counted per (text, group): recall = gold groups QC's reading names; precision =
    groups QC names that are gold, over all texts."""
    from zhujian.kb.loader import default_kb
    from zhujian.qc.normalize import read_conclusion
    from zhujian.qc.parse import split_conclusions
    from zhujian.qc.vocabulary import vocabulary_for

    kb = default_kb()
    vocabulary = vocabulary_for(kb)
    with (DATA / "icd10" / "icd10_beijing_v601.csv").open(encoding="utf-8") as handle:
        code_of = {row["name"]: row["code"] for row in csv.DictReader(handle)}
    entries = json.loads((DATA / "chip-cdn" / f"CHIP-CDN_{split}.json").read_text(encoding="utf-8"))
    gold_total = found = named = 0
    per_group: dict[str, list[int]] = {name: [0, 0] for name in CHECKUP_GROUPS}
    wrong: Counter[str] = Counter()
    for entry in entries:
        gold = _groups({code_of[n] for n in entry["normalized_result"].split("##") if n in code_of})
        codes: set[str] = set()
        for line in split_conclusions(entry["text"]):
            conclusion = read_conclusion(kb, vocabulary, line)
            # What the reading names: its first conclusion for each wording (not everything an umbrella covers).
            codes.update(kb.conclusions[p.primary].icd10 for p in conclusion.phrases)
            if conclusion.primary is not None:
                codes.add(kb.conclusions[conclusion.primary].icd10)
        read = _groups(codes)
        gold_total += len(gold)
        found += len(gold & read)
        named += len(read)
        for name in gold:
            per_group[name][0] += 1
            per_group[name][1] += name in read
        wrong.update(read - gold)
    right = found
    yield f"CHIP-CDN {split}: {len(entries)} texts; {gold_total} gold diagnoses in the {len(CHECKUP_GROUPS)} groups"
    yield f"recall {found}/{gold_total} ({found / gold_total:.3f}); precision {right}/{named} ({right / named:.3f})"
    yield "by group (gold, recognized): " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in per_group.items() if v[0])
    if wrong:
        yield "named but not gold: " + ", ".join(f"{k} {v}" for k, v in wrong.most_common(8))


def meinian_self_check(count: int = 2000, seed: int = 5) -> Iterator[str]:
    """False alarms on real physician wording: each real Meinian ultrasound conclusion (超声提示, table 0102) is both
    the record's text and the physician's conclusion list. Whatever QC reports is a false alarm (or an engine
    finding QC cannot read back from the same words, reported as missed)."""
    from zhujian.domain.record import Record
    from zhujian.kb.loader import default_kb
    from zhujian.pipeline.run import build_report
    from zhujian.qc import qc_text

    kb = default_kb()
    rng = random.Random(seed)
    texts = meinian_texts(rng)["超声提示"][:count]
    with_issue = 0
    advice_only = 0
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for number, text in enumerate(texts):
        male = any(w in text for w in ("前列腺", "睾丸", "精索"))
        female = any(w in text for w in ("子宫", "卵巢", "附件", "宫颈", "宫腔", "节育器", "绝经", "乳腺"))
        sex = "male" if male and not female else "female" if female and not male else rng.choice(["male", "female"])
        record = Record.model_validate(
            {"visit_id": f"mn-{number}", "sex": sex, "age": 50, "texts": [{"item": "超声提示", "text": text}]}
        )
        issues = qc_text(kb, record, text, report=build_report(kb, record))
        # An ultrasound conclusion carries no advice; a missing-advice issue on it is right, not a false alarm.
        alarms = [i for i in issues if i.kind != "missing_advice"]
        with_issue += bool(alarms)
        advice_only += bool(issues) and not alarms
        for issue in issues:
            kinds[issue.kind] += 1
            examples.setdefault(issue.kind, f"{text!r} → {issue.detail}")
    yield (
        f"Meinian 超声提示 texts read back as conclusions: {len(texts)}; with an issue other than missing_advice: "
        f"{with_issue} ({with_issue / len(texts):.1%}); with missing_advice only: {advice_only}"
    )
    yield "issues by kind: " + (", ".join(f"{k} {v}" for k, v in kinds.most_common()) or "none")
    for kind, example in examples.items():
        yield f"  e.g. {kind}: {example[:200]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tianchi", type=int, default=600, help="Tianchi rows (half of them get Meinian texts)")
    parser.add_argument("--seed", type=int, default=20260601)
    parser.add_argument("--phrasings", choices=("all", "dev", "heldout"), default="all")
    parser.add_argument("--show", type=int, default=0, help="print this many undetected / false-alarm examples")
    parser.add_argument("--chip-cdn", action="store_true", help="only measure recognition of CHIP-CDN dev wording")
    parser.add_argument("--meinian-self", action="store_true", help="only read real ultrasound conclusions back")
    args = parser.parse_args()
    if args.chip_cdn or args.meinian_self:
        for line in chip_cdn_wording() if args.chip_cdn else meinian_self_check():
            print(line)
        return 0
    table: dict[str, list[str]] = {}
    if args.phrasings in ("all", "dev"):
        table = {k: list(v) for k, v in DEV.items()}
    if args.phrasings in ("all", "heldout"):
        for key, values in HELDOUT.items():
            table.setdefault(key, []).extend(values) if args.phrasings == "all" else table.__setitem__(key, values)
    started = time.perf_counter()
    records, counts = load_records(args.tianchi, args.seed)
    result = evaluate(records, table, args.seed, args.show)
    print(f"records: {len(records)} ({', '.join(f'{k} {v}' for k, v in counts.items())}); phrasings: {args.phrasings}")
    for line in summary(result):
        print(line)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
