"""The knowledge base: the shipped KB loads with no problem at all, meets the minimum content, and deliberately
broken KB files fail with a message that names the file, the path inside it and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zhujian.kb.loader import KBError, load_kb, normalize_label
from zhujian.kb.schema import CenterConfig, CriticalOverride

KB_ROOT = Path(__file__).resolve().parents[1] / "src" / "zhujian" / "kb" / "data"


def test_shipped_kb_has_no_problems() -> None:
    try:
        kb = load_kb()
    except KBError as exc:  # list every problem at once
        pytest.fail(str(exc))
    assert kb.version.startswith(kb.manifest.version)


def test_minimum_content() -> None:
    kb = load_kb()
    assert len(kb.items) >= 150
    assert len(kb.conclusions) >= 200
    assert len(kb.findings) >= 100
    assert kb.critical_values


def test_every_entry_names_a_source() -> None:
    kb = load_kb()
    for item in kb.items.values():
        assert item.source.strip(), item.id
        for ref in item.reference:
            assert ref.source.strip(), item.id
    for c in kb.conclusions.values():
        assert c.source.strip(), c.id
    for r in kb.rules:
        assert r.source.strip(), r.id
    for f in kb.findings.values():
        assert f.source.strip(), f.id


TIANCHI_HEADERS = ["*天门冬氨酸氨基转换酶", "*丙氨酸氨基转换酶", "*碱性磷酸酶", "*r-谷氨酰基转换酶", "*总蛋白", "白蛋白", "*球蛋白", "白球比例", "甘油三酯", "总胆固醇", "高密度脂蛋白胆固醇", "低密度脂蛋白胆固醇", "尿素", "肌酐", "尿酸", "乙肝表面抗原", "乙肝表面抗体", "乙肝e抗原", "乙肝e抗体", "乙肝核心抗体", "白细胞计数", "红细胞计数", "血红蛋白", "红细胞压积", "红细胞平均体积", "红细胞平均血红蛋白量", "红细胞平均血红蛋白浓度", "红细胞体积分布宽度", "血小板计数", "血小板平均体积", "血小板体积分布宽度", "血小板比积", "中性粒细胞%", "淋巴细胞%", "单核细胞%", "嗜酸细胞%", "嗜碱细胞%", "血糖"]


@pytest.mark.parametrize("header", TIANCHI_HEADERS)
def test_tianchi_headers_resolve(header: str) -> None:
    # The headers of ../shared/data/tianchi-diabetes, as printed in its README and file.
    assert load_kb().resolve_item(header) is not None, header


@pytest.mark.parametrize(
    ("label", "item_id"),
    [
        ("收缩压", "sbp"),
        ("舒张压", "dbp"),
        ("血清甘油三酯", "tg"),
        ("血清高密度脂蛋白", "hdl"),
        ("血清低密度脂蛋白", "ldl"),
        ("FBG", "glu"),
        ("HDLC", "hdl"),
        ("LDLC", "ldl"),
        ("SC", "crea"),
        ("γ-GTP", "ggt"),
        ("Hb", "hgb"),
        ("UP", "u_pro"),
    ],
)
def test_meinian_and_korean_headers(label: str, item_id: str) -> None:
    assert load_kb().resolve_item(label) == item_id


def test_label_normalization() -> None:
    assert normalize_label(" *丙氨酸氨基转换酶： ") == "丙氨酸氨基转换酶"
    assert normalize_label("ＬＤＬ－Ｃ") == "ldl-c"


def _broken_copy(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(KB_ROOT, root)
    for rel, text in files.items():
        (root / rel).write_text(text, encoding="utf-8")
    return root


BROKEN = [
    (
        "unknown key",
        {
            "items/zz_broken.yaml": "items:\n  - {id: zz, name: 测试, name_en: t, section: s, kind: quantitative, unit: U/L, "
            "unitt: x, source: s}\n"
        },
        "items/zz_broken.yaml",
        "items[0].unitt",
        "Extra inputs are not permitted",
    ),
    (
        "low above high",
        {
            "items/zz_broken.yaml": "items:\n  - id: zz\n    name: 测试\n    name_en: t\n    section: s\n    kind: quantitative\n"
            "    unit: U/L\n    reference: [{low: 9, high: 3, source: s}]\n    source: s\n"
        },
        "items/zz_broken.yaml",
        "items[0].reference[0]",
        "low 9.0 is above high 3.0",
    ),
    (
        "rule with unknown conclusion",
        {
            "rules/zz_broken.yaml": "rules:\n  - {id: zz, conclusion: no_such_conclusion, when: {item: glu, op: '>=', value: 7}, "
            "source: s}\n"
        },
        "rules/zz_broken.yaml",
        "rules[0].conclusion",
        "unknown conclusion 'no_such_conclusion'",
    ),
    (
        "rule on unknown item",
        {
            "rules/zz_broken.yaml": "rules:\n  - {id: zz, conclusion: critical_value_unmapped, when: {item: glucoze, op: '>=', "
            "value: 7}, source: s}\n"
        },
        "rules/zz_broken.yaml",
        "rules[0].when",
        "unknown item 'glucoze'",
    ),
    (
        "unknown condition kind",
        {
            "rules/zz_broken.yaml": "rules:\n  - {id: zz, conclusion: critical_value_unmapped, when: {itme: glu}, source: s}\n"
        },
        "rules/zz_broken.yaml",
        "rules[0].when",
        "a condition must start with one of",
    ),
    (
        "bad regular expression",
        {
            "lexicon/zz_broken.yaml": "findings:\n  - {id: zz, name: 测试, icd10: K76, patterns: ['(unclosed'], source: s}\n"
        },
        "lexicon/zz_broken.yaml",
        "zz.patterns[0]",
        "bad regular expression",
    ),
    (
        "unknown site",
        {
            "lexicon/zz_broken.yaml": "findings:\n  - {id: zz, name: 测试, icd10: K76, sites: [livr], patterns: [x], source: s}\n"
        },
        "lexicon/zz_broken.yaml",
        "zz.sites",
        "unknown site 'livr'",
    ),
    (
        "bad ICD-10 code",
        {
            "conclusions/zz_broken.yaml": "conclusions:\n  - {id: zz, name: 测试, icd10: K7, system: s, category: finding, "
            "order: 1, department: d, follow_up: f, advice: a, explanation: e, source: s}\n"
        },
        "conclusions/zz_broken.yaml",
        "conclusions[0].icd10",
        "String should match pattern",
    ),
    (
        "duplicate alias",
        {
            "items/zz_broken.yaml": "items:\n  - {id: zz, name: 测试, name_en: t, section: s, kind: quantitative, unit: U/L, "
            "aliases: [ALT], source: s}\n"
        },
        "items/zz_broken.yaml",
        "zz.aliases",
        "also belongs to item",
    ),
    (
        "YAML syntax error",
        {"rules/zz_broken.yaml": "rules: [\n"},
        "rules/zz_broken.yaml",
        "",
        "YAML syntax error",
    ),
]


@pytest.mark.parametrize(("title", "files", "file", "path", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_kb_is_named(
    tmp_path: Path, title: str, files: dict[str, str], file: str, path: str, message: str
) -> None:
    root = _broken_copy(tmp_path, files)
    with pytest.raises(KBError) as info:
        load_kb(root)
    problems = info.value.problems
    assert any(
        (p.file == file or p.file.endswith("zz_broken.yaml")) and p.path.startswith(path) and message in p.message
        for p in problems
    ), [str(p) for p in problems]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    root = _broken_copy(
        tmp_path,
        {
            "rules/zz_a.yaml": "rules:\n  - {id: za, conclusion: nope_a, when: {item: glu, op: '>=', value: 7}, source: s}\n",
            "rules/zz_b.yaml": "rules:\n  - {id: zb, conclusion: nope_b, when: {item: glu, op: '>=', value: 7}, source: s}\n",
        },
    )
    with pytest.raises(KBError) as info:
        load_kb(root)
    text = str(info.value)
    assert "nope_a" in text and "nope_b" in text


def test_center_override_changes_critical_threshold() -> None:
    kb = load_kb()
    k_low = next(c for c in kb.critical_values if c.item == "k" and c.op in ("<", "<="))
    center = CenterConfig(name="t", critical_overrides=[CriticalOverride(id=k_low.id, value=3.0)])
    tuned = load_kb(center=center)
    assert next(c for c in tuned.critical_values if c.id == k_low.id).value == 3.0


def test_center_threshold_holds_when_a_freed_kb_left_its_tables_under_the_same_id() -> None:
    # The evaluation tables (critical thresholds among them) are kept per KB object. A center's copy has the same
    # KB version as the plain KB, and a KB made after another was freed can get the freed one's id: tables left
    # under that id by a plain KB must not be used for the center's KB (K 2.9 mmol/L is critical only at <= 3.0).
    from zhujian.domain.record import Record
    from zhujian.pipeline import evaluate
    from zhujian.pipeline.run import build_report

    plain = load_kb()
    k_low = next(c for c in plain.critical_values if c.item == "k" and c.op in ("<", "<="))
    assert k_low.value < 2.9
    tuned = load_kb(center=CenterConfig(name="t", critical_overrides=[CriticalOverride(id=k_low.id, value=3.0)]))
    record = Record.model_validate(
        {
            "person_id": "P1",
            "visit_id": "V1",
            "sex": "female",
            "age": 60,
            "items": [{"name": "钾", "value": "2.9", "unit": "mmol/L"}],
        }
    )
    assert not build_report(plain, record).critical
    evaluate._CACHES[id(tuned)] = evaluate._CACHES[id(plain)]  # what a reused id would find
    alerts = build_report(tuned, record).critical
    assert [a.rule_id for a in alerts if a.source == "item"] == [k_low.id]


def test_center_override_unknown_id_is_an_error() -> None:
    with pytest.raises(KBError) as info:
        load_kb(center=CenterConfig(critical_overrides=[CriticalOverride(id="no_such_value", value=1)]))
    assert "no_such_value" in str(info.value)
