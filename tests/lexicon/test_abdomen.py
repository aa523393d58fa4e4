"""Abdominal and urinary ultrasound lexicon (lexicon/abdomen.yaml): short texts written in the style of Chinese
checkup reports (organ descriptions of tables 0113-0118 and `器官:诊断` conclusion lists), with the findings that
../shared/FINDINGS.md expects (name, WHO three-character ICD-10 category) and the attributes the extractor reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text

LEXICON = Path(__file__).resolve().parents[2] / "src" / "zhujian" / "kb" / "data" / "lexicon" / "abdomen.yaml"
ABDOMEN_IDS = {f["id"] for f in yaml.safe_load(LEXICON.read_text(encoding="utf-8"))["findings"]}


@pytest.fixture(scope="module")
def kb():
    return default_kb()


def _abdomen(kb, item: str, text: str):
    result = extract_text(kb, item, text)
    return [f for f in result.findings if f.finding_id in ABDOMEN_IDS], result.incomplete


def _pairs(findings) -> set[tuple[str, str]]:
    return {(f.name, f.icd10[:3]) for f in findings}


# (item, text, expected {(name, ICD-10 category)}) — the abdominal findings must be exactly these.
CASES: list[tuple[str, str, set[tuple[str, str]]]] = [
    # normal templates and negations
    ("肝脏", "肝脏大小、形态正常，包膜光整，肝内血管走行清晰，实质回声均匀。", set()),
    ("肝脏", "肝脏形态大小正常，轮廓规整，光点分布尚均匀，肝内未见明显占位，门静脉不宽。", set()),
    ("胆囊", "胆囊大小、形态正常，囊壁光滑，囊腔内透声好，胆总管无扩张。", set()),
    ("胆囊", "胆囊壁光滑，未见增厚，囊内未见结石及息肉样病变，胆总管不扩张。", set()),
    ("胰腺", "胰腺大小、形态正常，边缘规整，内部回声均匀，胰管未见扩张。", set()),
    ("脾脏", "脾脏形态正常，包膜光整，实质回声均匀，脾厚度约40mm。", set()),
    ("脾脏", "脾脏大小、形态正常，脾厚约42mm，回声均匀。", set()),
    ("左肾", "左肾大小、形态正常，包膜光滑，实质回声均匀，集合系统未见分离及结石影。", set()),
    ("左肾", "左肾大小形态正常，集合系统未见明显分离，输尿管上段未见扩张。", set()),
    ("超声提示", "肝、胆、胰、脾、左肾、右肾未发现明显异常", set()),
    ("超声提示", "膀胱、前列腺、双侧输尿管未发现明显异常", set()),
    # liver
    ("肝脏", "肝脏形态大小正常，轮廓规整，肝内回声呈点状密集弥漫性增强，管道结构欠清晰。", {("脂肪肝", "K76")}),
    ("肝脏", "肝脏稍大，前场回声增强，后场回声衰减，肝内管道显示不清。", {("脂肪肝", "K76"), ("肝大", "R16")}),
    ("肝脏", "肝实质回声细密增强，远场回声衰减，肝肾反差增大。", {("脂肪肝", "K76")}),
    ("超声提示", "肝:脂肪肝趋势胆、胰、脾、左肾、右肾未发现明显异常", {("脂肪肝", "K76")}),
    ("超声提示", "肝:脂肪肝（非均匀性）胆、脾未发现明显异常", {("非均匀性脂肪肝", "K76")}),
    ("肝脏", "肝右叶可见一个高回声团，大小约15x12mm，边界清，其内呈网络样改变。", {("肝血管瘤", "D18")}),
    ("肝脏", "肝实质回声均匀，肝右叶见一斑点状强回声，直径约4mm，后方伴声影。", {("肝内钙化灶", "K76")}),
    ("肝脏", "肝内见数个强回声沿胆管走行分布，较大约5x3mm，后伴声影。", {("肝内胆管结石", "K80")}),
    ("肝脏", "肝脏大小正常，肝右后叶见一低回声区，大小约25x20mm，边界欠清。", {("肝占位", "K76")}),
    ("肝脏", "肝表面凹凸不平，实质回声增粗，门静脉内径约15mm。",
     {("肝硬化", "K74"), ("门静脉增宽", "K76")}),  # cirrhosis absorbs its diffuse echo changes
    ("肝脏", "肝脏大小正常，实质光点增粗，分布欠均匀，其内未见明显异常光团。",
     {("肝实质回声增粗", "K76"), ("肝实质回声不均", "K76")}),
    ("超声提示", "肝:肝内钙化灶肝血管瘤（多发）胆、胰、脾未发现明显异常", {("肝内钙化灶", "K76"), ("肝血管瘤", "D18")}),
    # gallbladder and bile ducts
    ("胆囊", "胆囊大小正常，壁稍毛糙，囊腔内可见一个团状强回声，大小约18x12mm，后方伴声影，随体位改变而移动。",
     {("胆囊壁毛糙", "K81"), ("胆囊结石", "K80")}),
    ("胆囊", "胆囊形态正常，胆囊前壁可见一个稍高回声附着，大小约6x4mm，后方无声影，不随体位改变而移动。",
     {("胆囊息肉", "K82")}),
    ("胆囊", "胆囊壁毛糙，囊内壁见数个点状强回声附着，后方伴彗星尾征。", {("胆囊壁毛糙", "K81"), ("胆囊胆固醇结晶", "K82")}),
    # Poor transmission alone is not sludge (no echo described in the lumen).
    ("胆囊", "胆囊壁增厚，厚约5mm，呈双边，囊腔内透声差。", {("胆囊壁增厚", "K81")}),
    ("胆囊", "胆囊区未显示胆囊回声，胆总管内径约6mm。", {("胆囊未显示", "Z90")}),
    ("胆囊", "胆囊未探及（自述已切除），胆总管未见扩张。", {("胆囊切除术后", "Z90")}),
    ("胆囊", "胆囊大小正常，壁光滑，胆总管增宽，内径约12mm。", {("胆总管扩张", "K83")}),
    ("超声提示", "胆:胆囊附壁结石肝、胰、脾未发现明显异常", {("胆囊结石", "K80")}),
    ("超声提示", "胆:慢性胆囊炎胆囊结石（充满型）肝、胰、脾未发现明显异常", {("胆囊炎", "K81"), ("胆囊结石", "K80")}),
    # pancreas
    # "饱满" alone is a soft descriptor, not enlargement.
    ("胰腺", "胰腺形态饱满，实质回声增粗增强，胰管未见扩张。", {("胰腺回声异常", "K86")}),
    ("胰腺", "胰尾部见一低回声结节，大小约20x15mm，边界欠清。", {("胰腺占位", "K86")}),
    # spleen
    ("脾脏", "脾脏形态饱满，包膜光整，实质回声均匀，脾厚约46mm，长径约128mm。", {("脾大", "R16")}),
    ("脾脏", "脾脏形态正常，实质回声均匀，脾厚度约4.5cm。", {("脾大", "R16")}),
    ("脾脏", "脾脏大小正常，脾门处可见一类圆形低回声，大小约11x10mm，回声与脾脏实质一致。", {("副脾", "Q89")}),
    ("脾脏", "脾脏形态正常，脾内见点状强回声，声影不明显。", {("脾内钙化灶", "D73")}),
    ("脾脏", "脾内可见一个无回声区，大小约15x12mm，后方回声增强。", {("脾囊肿", "D73")}),
    # kidneys and ureters
    ("左肾", "左肾形态大小正常，肾盏内见一个强回声，大小约6x4mm，后方伴声影。集合系统未见分离。", {("肾结石", "N20")}),
    ("右肾", "右肾形态大小正常，实质回声均匀，肾内可见多个点状强回声，后无明显声影。", {("肾结晶", "N20")}),
    ("右肾", "右肾上极见一个无回声区，大小约25x20mm，壁薄，后方回声增强。", {("肾囊肿", "N28")}),
    ("右肾", "右肾内可见一个无回声区，大小约11x10mm，内见点状强回声。", {("肾囊肿", "N28")}),
    ("左肾", "左肾形态大小正常，集合系统分离约22mm，呈烟斗状。", {("肾积水", "N13")}),
    ("右肾", "右肾下极见一高回声结节，大小约9x8mm，边界清晰。", {("肾错构瘤", "D30")}),
    ("左肾", "左肾中极实质内见一低回声团，大小约30x25mm，边界欠清，内可见血流信号。", {("肾占位", "N28")}),
    ("右肾", "右肾体积缩小，大小约75x35mm，实质回声增强，皮髓质分界不清。", {("肾萎缩", "N26"), ("肾实质回声改变", "N28")}),
    ("超声提示", "双侧输尿管:右侧输尿管上段结石并扩张左肾、膀胱未发现明显异常",
     {("输尿管结石", "N20"), ("输尿管扩张", "N13")}),
    # bladder and prostate
    ("超声提示", "前列腺:前列腺增生并钙化膀胱、双侧输尿管未发现明显异常", {("前列腺增生", "N40"), ("前列腺钙化", "N42")}),
    ("超声提示", "前列腺:前列腺囊肿膀胱未发现明显异常", {("前列腺囊肿", "N42")}),
    ("超声提示", "膀胱:膀胱壁增厚毛糙前列腺:前列腺稍大", {("膀胱壁毛糙增厚", "N32"), ("前列腺增生", "N40")}),
    ("超声提示", "膀胱:膀胱占位性病变，建议进一步检查前列腺未发现明显异常", {("膀胱占位", "N32")}),
    ("超声提示", "膀胱:膀胱结石前列腺未发现明显异常", {("膀胱结石", "N21")}),
    # several organs in one conclusion list
    ("超声提示", "肝:脂肪肝（中度）肝囊肿（多发）胆:胆囊结石右肾:右肾结晶脾、胰未发现明显异常",
     {("脂肪肝", "K76"), ("肝囊肿", "K76"), ("胆囊结石", "K80"), ("肾结晶", "N20")}),
]


@pytest.mark.parametrize(("item", "text", "expected"), CASES, ids=[c[1][:24] for c in CASES])
def test_findings(kb, item, text, expected):
    findings, _ = _abdomen(kb, item, text)
    assert _pairs(findings) == expected


def _one(kb, item: str, text: str, name: str, side: str | None = None):
    findings, _ = _abdomen(kb, item, text)
    hits = [f for f in findings if f.name == name and (side is None or f.attrs.get("side") == side)]
    assert len(hits) == 1, [(f.name, f.attrs) for f in findings]
    return hits[0]


def test_fatty_liver_grade_from_conclusion_list(kb):
    f = _one(kb, "超声提示", "肝:脂肪肝（重度）胆、胰、脾未发现明显异常", "脂肪肝")
    assert f.attrs.get("grade") == "重度"


def test_fatty_liver_description_has_no_grade(kb):
    f = _one(kb, "肝脏", "肝脏形态饱满，轮廓规整，肝内回声呈点状密集弥漫性增强，肝内管道结构不清晰。", "脂肪肝")
    assert "grade" not in f.attrs


def test_liver_cyst_size_and_count(kb):
    f = _one(kb, "肝脏", "肝脏形态大小正常，肝左叶见多个无回声区，大者约2.1x1.8cm，壁薄，透声好。", "肝囊肿")
    assert f.attrs["size_mm"] == 21.0
    assert f.attrs["count"] == "多发"


def test_gallbladder_polyp_size_for_rule(kb):
    f = _one(kb, "胆囊", "胆囊内壁见一等回声突起，大小约12x8mm，无声影，不随体位移动。", "胆囊息肉")
    assert f.attrs["size_mm"] == 12.0


def test_gallbladder_polyp_size_before_the_echo(kb):
    f = _one(kb, "胆囊", "胆囊形态大小正常，于胆囊内壁可见一个直径约3mm的较强回声附着，无声影，不随体位改变而移动。", "胆囊息肉")
    assert f.attrs["size_mm"] == 3.0


def test_kidney_findings_per_side(kb):
    findings, _ = _abdomen(kb, "超声提示", "左肾:左肾结晶右肾:右肾结晶膀胱、双侧输尿管未发现明显异常")
    assert sorted(f.attrs.get("side") for f in findings if f.name == "肾结晶") == ["右", "左"]


def test_kidney_side_from_item_and_list(kb):
    stone = _one(kb, "超声提示", "左肾:左肾结石（多发）右肾:右肾囊肿肝、胆、胰、脾未发现明显异常", "肾结石", "左")
    assert stone.attrs["count"] == "多发"
    _one(kb, "超声提示", "左肾:左肾结石（多发）右肾:右肾囊肿肝、胆、胰、脾未发现明显异常", "肾囊肿", "右")
    f = _one(kb, "0118", "右肾形态大小正常，肾内可见一个强回声，大小约4x3mm，后方伴声影。", "肾结石")
    assert f.attrs["side"] == "右"
    assert f.attrs["size_mm"] == 4.0


def test_hydronephrosis_grade(kb):
    f = _one(kb, "超声提示", "右肾:右肾中度积水左肾、膀胱未发现明显异常", "肾积水", "右")
    assert f.attrs["grade"] == "中度"


def test_uncertain_hemangioma(kb):
    f = _one(kb, "超声提示", "肝:考虑肝血管瘤胆、胰、脾未发现明显异常", "肝血管瘤")
    assert f.uncertain
    # A described lesion stays a finding; the suspected diagnosis in another clause does not make it uncertain.
    f = _one(kb, "肝脏", "肝右叶见一稍高回声，约8x6mm，考虑血管瘤。", "肝血管瘤")
    assert f.attrs["size_mm"] == 8.0


def test_incomplete_without_findings(kb):
    findings, incomplete = _abdomen(kb, "肝脏", "因腹腔气体干扰，肝脏显示不清。")
    assert findings == [] and incomplete
    findings, incomplete = _abdomen(kb, "超声提示", "膀胱:膀胱充盈欠佳前列腺未发现明显异常")
    assert findings == [] and incomplete


def test_incomplete_with_findings(kb):
    findings, incomplete = _abdomen(kb, "肝脏", "部分肝叶显示不清，所见肝内回声密集增强，远场衰减。")
    assert _pairs(findings) == {("脂肪肝", "K76")} and incomplete


def test_cholecystectomy_suppresses_not_seen(kb):
    findings, _ = _abdomen(kb, "胆囊", "胆囊区未显示胆囊回声（自述已切除），胆总管上段内径约6mm。")
    assert _pairs(findings) == {("胆囊切除术后", "Z90")}


def test_spleen_thickness_threshold(kb):
    assert _pairs(_abdomen(kb, "脾脏", "脾脏形态正常，包膜光整，实质回声均匀，脾厚度约43mm。")[0]) == {("脾大", "R16")}
    assert _abdomen(kb, "脾脏", "脾脏形态正常，包膜光整，实质回声均匀，脾厚度约（41）mm。")[0] == []
