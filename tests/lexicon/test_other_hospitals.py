"""Breast, thyroid and gynaecological ultrasound text as other hospitals write it (tests/data/other_hospitals).

The floors hold on the labelled set (both halves; benchmarks/eval_other_hospitals.py prints the figures). The
single cases pin what matters per lesion: each numbered diagnosis keeps its own BI-RADS / C-TIRADS category, a
category ≥ 4 gives the level-B conclusion (ACR BI-RADS 5th ed.; C-TIRADS 2020), and normal anatomy written in other
words (lactating breast, follicles, an IUD in place, a thin postmenopausal endometrium) gives no finding
(../shared/FINDINGS.md).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from zhujian.domain.record import Record
from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text
from zhujian.pipeline.run import build_report

ROOT = Path(__file__).resolve().parents[2]


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_other_hospitals", ROOT / "benchmarks" / "eval_other_hospitals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_other_hospitals"] = module  # dataclasses resolve their annotations through the module
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark()


def _findings(item: str, text: str) -> list[Any]:
    return extract_text(default_kb(), item, text).findings


def _conclusions(item: str, text: str) -> dict[str, str | None]:
    record = Record.model_validate({"visit_id": "t", "sex": "female", "age": 50, "texts": [{"item": item, "text": text}]})
    return {c.conclusion_id: c.level for c in build_report(default_kb(), record, with_history=False).conclusions}


@pytest.mark.parametrize("organ", BENCH.ORGANS)
def test_labelled_set_is_well_formed(organ: str) -> None:
    entries = BENCH.load_set(organ)
    assert len(entries) >= 75
    assert {e["half"] for e in entries} == {"dev", "test"}
    assert len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        assert e["text"] and e["item"]
        for f in e["findings"]:
            assert len(f["icd10"]) == 3 and f["name"], e["id"]
        assert set(e.get("conclusions", ())) <= BENCH.CATEGORY_CONCLUSIONS


@pytest.mark.parametrize("organ", BENCH.ORGANS)
def test_scores_on_the_other_hospital_set(organ: str) -> None:
    result = BENCH.score_organ(default_kb(), organ)
    d = result.as_dict()
    report = f"{organ}: {d}\n" + "\n".join(result.errors)
    assert d["abnormal_texts"] >= 50 and d["normal_texts"] >= 10, report
    assert d["sensitivity"] >= 0.97, report
    assert d["specificity"] >= 0.95, report
    assert d["icd10_f1"] >= 0.97, report
    assert d["incomplete_accuracy"] >= 0.97, report
    assert d["lesion_category_accuracy"] >= 0.93, report
    assert d["conclusion_accuracy"] >= 0.93, report


def _by_kind_and_side(findings: list[Any]) -> dict[tuple[str, str | None], str | None]:
    return {(f.finding_id, f.attrs.get("side")): f.attrs.get("category") for f in findings}


def test_numbered_breast_conclusions_keep_their_own_category() -> None:
    text = "1.右乳低回声结节（BI-RADS 4a类）2.左乳囊肿（BI-RADS 2类）3.双侧腋下未见明显异常淋巴结"
    assert _by_kind_and_side(_findings("超声提示", text)) == {
        ("breast_nodule", "右"): "BI-RADS 4A",
        ("breast_cyst", "左"): "BI-RADS 2",
    }
    assert _conclusions("超声提示", text)["breast_nodule_birads4"] == "B"


def test_a_benign_lesion_named_first_does_not_lower_the_next_one() -> None:
    text = "1.左乳囊肿（BI-RADS 2类）2.右乳实性结节（BI-RADS 4B类）"
    assert _by_kind_and_side(_findings("超声提示", text)) == {
        ("breast_cyst", "左"): "BI-RADS 2",
        ("breast_nodule", "右"): "BI-RADS 4B",
    }
    assert "breast_nodule_birads4" in _conclusions("超声提示", text)


def test_circled_list_numbers_and_roman_categories() -> None:
    found = _findings("超声提示", "①右乳结节（BI-RADS 3类）②左乳结节（BI-RADS Ⅳa类）")
    assert _by_kind_and_side(found) == {("breast_nodule", "右"): "BI-RADS 3", ("breast_nodule", "左"): "BI-RADS 4A"}


def test_birads_3_without_a_higher_lesion_is_short_follow_up() -> None:
    concl = _conclusions("超声提示", "1.右乳低回声结节（BI-RADS 2类）2.左乳低回声结节（BI-RADS 3类）")
    assert "breast_nodule_birads3" in concl and "breast_nodule_birads4" not in concl


def test_category_in_its_own_sentence_after_a_description_mentioning_the_skin() -> None:
    # 长轴与皮肤平行 names a layer, not the surgical skin exam: the category sentence stays with the breast.
    found = _findings("乳腺彩超", "右乳见一低回声结节，大小约1.2×0.8cm，长轴与皮肤平行。BI-RADS 3类。")
    assert _by_kind_and_side(found) == {("breast_nodule", "右"): "BI-RADS 3"}
    assert found[0].attrs["size_mm"] == 12.0


def test_suspicious_calcifications_without_a_mass() -> None:
    text = "右乳2点钟方向乳腺内见簇状分布的微小钙化，未见明确肿块，BI-RADS 4A类。"
    assert _by_kind_and_side(_findings("乳腺彩超", text)) == {("breast_calcification", "右"): "BI-RADS 4A"}
    assert _conclusions("乳腺彩超", text).get("breast_calcification_birads4") == "B"


@pytest.mark.parametrize(
    "text",
    [
        "1.甲状腺右叶结节（C-TIRADS 4A类）2.甲状腺左叶结节（C-TIRADS 3类）",
        "1.甲状腺左叶结节（C-TIRADS 3类）2.甲状腺右叶结节（C-TIRADS 4A类）",
    ],
)
def test_thyroid_gland_takes_its_highest_nodule_category(text: str) -> None:
    nodules = [f for f in _findings("超声提示", text) if f.finding_id == "thyroid_nodule"]
    assert len(nodules) == 1
    assert nodules[0].attrs["category"] == "C-TIRADS 4A"
    assert nodules[0].attrs["side"] == "双侧"
    concl = _conclusions("超声提示", text)
    assert concl.get("thyroid_nodule_tirads4") == "B" and "thyroid_nodule" not in concl


def test_acr_tr_level_and_category_heading_wording() -> None:
    (tr,) = _findings("超声提示", "甲状腺结节（ACR TI-RADS TR4）")
    assert tr.attrs["category"] == "TI-RADS 4"
    (heading,) = _findings("超声提示", "甲状腺右叶结节，TI-RADS分类：4a类")
    assert heading.attrs["category"] == "TI-RADS 4A"


def test_list_numbers_do_not_break_sizes() -> None:
    (myoma,) = _findings("超声提示", "1.子宫肌瘤，大小约2.5×1.8cm 2.宫内节育器位置正常")
    assert myoma.finding_id == "gyn_myoma" and myoma.attrs["size_mm"] == 25.0


@pytest.mark.parametrize(
    ("item", "text"),
    [
        ("乳腺彩超", "哺乳期乳腺：双侧乳腺腺体层增厚，回声均匀，乳管轻度扩张，内为无回声乳汁，未见明显占位。"),
        ("乳腺彩超", "双侧腋窝可见淋巴结回声，大者约1.0×0.4cm，皮髓质分界清，形态正常。"),
        ("乳腺彩超", "双侧乳腺腺体呈中等回声，分布均匀，导管不扩张，未探及实性或囊性占位。"),
        ("妇科超声", "右卵巢大小约3.0×2.1cm，内见一优势卵泡，大小约1.8×1.6cm。左卵巢内见5-6个小卵泡回声。"),
        ("妇科超声", "宫内节育器位置正常，距宫底约1.5cm。"),
        ("妇科超声", "绝经后子宫，体积缩小，肌层回声均匀，内膜厚约0.3cm（双层）。双侧卵巢萎缩，未见明显异常回声。"),
        ("妇科超声", "子宫前位，宫体大小约4.9×4.2×3.8cm，内膜厚约1.0cm，呈分泌期改变。宫颈长约2.9cm，回声均匀。"),
        ("甲状腺彩超", "甲状腺双侧叶大小正常，右叶厚约16mm，左叶厚约15mm，峡部厚约3mm，腺体回声均匀细腻，未探及明显结节。"),
    ],
)
def test_normal_anatomy_in_other_words(item: str, text: str) -> None:
    assert _findings(item, text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("绝经后子宫，宫体大小约4.5×3.6×3.2cm，内膜厚约1.1cm，回声不均。", {"gyn_endometrium"}),
        ("患者已绝经，子宫体积小，内膜厚约0.8cm。", {"gyn_endometrium"}),
        ("子宫增大，宫体呈球形，后壁肌层明显增厚，回声不均，可见栅栏状声影。", {"gyn_adenomyosis"}),
        ("子宫已切除，阴道残端未见明显异常，双侧附件区未见明显包块。", {"gyn_hysterectomy"}),
        ("双侧卵巢体积增大，内见≥12个直径2-9mm的小卵泡，沿包膜下排列。", {"gyn_pcos"}),
        ("左侧卵巢子宫内膜异位囊肿可能", {"gyn_endometrioma"}),
    ],
)
def test_gynaecological_wording(text: str, expected: set[str]) -> None:
    assert {f.finding_id for f in _findings("妇科超声", text)} == expected


def test_a_number_after_a_comparison_is_a_value_not_a_list_item() -> None:
    # E/A<1 followed by item 4 of the list: the ratio must stay readable (ASE/EACVI 2016: E/A < 1 impaired relaxation).
    found = _findings("超声所见", "二尖瓣血流频谱：E/A<14.左心功能：EF：64％")
    assert "heart_lv_diastolic" in {f.finding_id for f in found}


def test_each_summary_item_is_its_own_diagnosis() -> None:
    # 主动脉瓣钙化 listed after 主动脉硬化 must not veto it (the aortic-sclerosis exclude reads the whole sentence).
    found = _findings("超声所见", "小结：1.室壁运动欠协调2.主动脉硬化3.主动脉瓣钙化4.左室舒张功能减低")
    assert {"heart_aortic_valve_other", "heart_aortic_sclerosis", "heart_lv_diastolic"} <= {f.finding_id for f in found}


def test_a_category_2_sentence_of_its_own_still_grades_the_nodule() -> None:
    (nodule,) = _findings("超声所见", "甲状腺左叶可见大小约5.0x3.0mm的低回声。（TI-RADS Ⅱ级）")
    assert nodule.finding_id == "thyroid_nodule" and nodule.attrs["category"] == "TI-RADS 2"
    assert "grade" not in nodule.attrs


def test_a_cystic_nodule_with_category_2_is_one_cyst() -> None:
    found = _findings("超声提示", "甲状腺左叶囊性结节（C-TIRADS 2类）")
    assert [(f.finding_id, f.attrs.get("category")) for f in found] == [("thyroid_cyst", "C-TIRADS 2")]
