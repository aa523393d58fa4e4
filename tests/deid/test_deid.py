"""De-identification of canonical records: no identifier survives anywhere in the output, pseudonyms are stable per
key, date shifts keep a person's intervals, clinical text is untouched, and the manifest tells what was done."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import zhujian
from zhujian.deid import (
    Deidentifier,
    DeidError,
    DeidOptions,
    deidentify_file,
    find_pii,
    id_number_check_digit,
    is_valid_id_number,
    load_or_create_key,
    mask_pii,
)
from zhujian.deid_cli import deid_command
from zhujian.domain.record import Record
from zhujian.kb.loader import default_kb

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# Synthetic identifiers. The two 18-digit numbers are the worked examples of GB 11643-1999; their check digits by
# hand (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, sum mod 11 → "10X98765432"):
# 11010519491231002 → sum 167, 167 mod 11 = 2 → "X";  44052418800101001 → sum 195, 195 mod 11 = 8 → "4".
NAME = "欧阳秀英"
CONTACT = "李建国"
DOCTOR = "赵立新"
ID18 = "11010519491231002X"
ID15 = "110105491231002"  # the same person's old 15-digit number (region, yymmdd, sequence)
MOBILE = "13812345678"
MOBILE_AS_NUMBER = 13912345678
MOBILE_FORMATTED = "+86 139-1234-5678"
LANDLINE = "010-87654321"
LANDLINE_SHENZHEN = "(0755)26543210"
EMAIL = "ouyang.xy@example.com"
ADDRESS = "北京市朝阳区建国路88号3栋2单元501室"
ADDRESS_2 = "广东省深圳市南山区科技园路1号"
LIVER_TEXT = "肝脏形态大小正常，包膜光整，实质回声细密增强。"
THYROID_TEXT = "甲状腺右叶可见一低回声结节，大小约4×3mm，TI-RADS 3类。"

IDENTIFIERS = [
    NAME,
    "欧阳",
    CONTACT,
    DOCTOR,
    ID18,
    ID15,
    MOBILE,
    str(MOBILE_AS_NUMBER),
    "139-1234-5678",
    LANDLINE,
    "87654321",
    "26543210",
    EMAIL,
    ADDRESS,
    "建国路88号",
    ADDRESS_2,
    "科技园路",
    "1960-05-04",
    "2024-0001",
    "2025-0002",
    "2023-0456",
    "ZJ-000999",
    "王小明",
]


def _rows() -> list[dict[str, Any]]:
    first = {
        "person_id": ID18,
        "visit_id": "2024-0001",
        "sex": "female",
        "birth_date": "1960-05-04",
        "exam_date": "2024-03-01",
        "questionnaire": {
            "history": [f"高血压病史5年，联系人{CONTACT} {MOBILE}"],
            "medications": ["氨氯地平"],
            "family_history": ["母亲 糖尿病"],
            "symptoms": [],
        },
        "items": [
            {"name": "姓名", "value": NAME, "origin": "his.csv:row 3:column 姓名"},
            {"name": "身份证号", "value": ID18},
            {"name": "联系电话", "value": MOBILE_AS_NUMBER},
            {
                "name": "空腹血糖",
                "value": "6.5",
                "unit": "mmol/L",
                "reference_range": "3.9-6.1",
                "origin": "his.csv:row 3:column 血糖",
            },
            {"name": "备注", "value": f"受检者{NAME}，电话{MOBILE_FORMATTED}，邮箱{EMAIL}"},
        ],
        "texts": [
            {"item": "肝脏", "section": "彩超", "text": LIVER_TEXT},
            {"item": "一般情况", "text": f"姓名：{NAME} 身份证：{ID15} 住址：{ADDRESS} 座机{LANDLINE_SHENZHEN}"},
            {"item": "心电图", "text": f"窦性心律，房室传导阻滞（一度），报告医生：{DOCTOR}"},
            {"item": "备注", "text": f"欧阳女士于2024年3月1日体检，家住{ADDRESS_2}，工作单位电话{LANDLINE}。"},
        ],
        "prior_visits": [
            {
                "visit_id": "2023-0456",
                "exam_date": "2023-02-15",
                "items": [{"name": "空腹血糖", "value": "6.0", "unit": "mmol/L"}],
                "texts": [{"item": "肝脏", "text": "肝脏形态大小正常"}],
            }
        ],
    }
    second = {
        "person_id": ID18,
        "visit_id": "2025-0002",
        "sex": "female",
        "birth_date": "1960-05-04",
        "exam_date": "2025-03-10",
        "items": [{"name": "空腹血糖", "value": "7.1", "unit": "mmol/L"}],
        "texts": [{"item": "肝脏", "section": "彩超", "text": LIVER_TEXT}],
        "prior_visits": [{"visit_id": "2024-0001", "exam_date": "2024-03-01"}],
    }
    third = {
        "person_id": "ZJ-000999",
        "visit_id": "2025-0003",
        "sex": "male",
        "age": 45,
        "exam_date": "2025-01-01",
        "texts": [{"item": "甲状腺", "section": "彩超", "text": THYROID_TEXT}],
    }
    return [first, second, third]


def _write_input(path: Path) -> Path:
    first, second, third = _rows()
    lines = [
        json.dumps(first, ensure_ascii=False),
        json.dumps(second, ensure_ascii=False),
        '{"person_id": "王小明", "visit_id": ',  # a broken line: left out, and its content never copied
        json.dumps(third, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(tmp_path: Path, key: Path, name: str, shift: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    source = _write_input(tmp_path / "records.jsonl")
    out = tmp_path / f"{name}.jsonl"
    run = deidentify_file(source, out, key, DeidOptions(shift_dates=shift, max_shift_days=30))
    raw = out.read_text(encoding="utf-8")
    return [json.loads(line) for line in raw.splitlines()], run.manifest, raw


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "deid.key"


def test_check_digit_matches_the_standard_examples() -> None:
    assert id_number_check_digit("11010519491231002") == "X"
    assert id_number_check_digit("44052418800101001") == "4"
    assert is_valid_id_number(ID18) and is_valid_id_number("440524188001010014")
    assert not is_valid_id_number("110105194912310021")  # wrong check digit
    assert is_valid_id_number(ID15)
    assert not is_valid_id_number("110105491331002")  # month 13


def test_no_identifier_survives_anywhere(tmp_path: Path, key_file: Path) -> None:
    rows, manifest, raw = _run(tmp_path, key_file, "out", shift=True)
    manifest_text = json.dumps(manifest, ensure_ascii=False)
    for identifier in IDENTIFIERS:
        assert identifier not in raw, identifier
        assert identifier not in manifest_text, identifier
    key_hex = key_file.read_text(encoding="ascii").strip()
    assert key_hex not in raw and key_hex not in manifest_text
    for placeholder in ("[姓名]", "[身份证号]", "[电话]", "[邮箱]", "[地址]"):
        assert placeholder in raw
    # Every output row is still a canonical record the engine accepts.
    for row in rows:
        Record.model_validate(row)


def test_clinical_text_and_values_are_untouched(tmp_path: Path, key_file: Path) -> None:
    rows, _, _ = _run(tmp_path, key_file, "out")
    first, second, third = rows
    assert first["texts"][0] == {"item": "肝脏", "section": "彩超", "text": LIVER_TEXT}
    assert first["texts"][2]["text"] == "窦性心律，房室传导阻滞（一度），报告医生：[姓名]"
    assert first["texts"][1]["text"] == "姓名：[姓名] 身份证：[身份证号] 住址：[地址] 座机[电话]"
    assert first["texts"][3]["text"] == "[姓名]女士于2024年3月1日体检，家住[地址]，工作单位电话[电话]。"
    assert first["questionnaire"] == {
        "history": ["高血压病史5年，联系人[姓名] [电话]"],
        "medications": ["氨氯地平"],
        "family_history": ["母亲 糖尿病"],
        "symptoms": [],
    }
    glucose = first["items"][3]
    assert glucose == {
        "name": "空腹血糖",
        "value": "6.5",
        "unit": "mmol/L",
        "reference_range": "3.9-6.1",
        "origin": "his.csv:row 3:column 血糖",
    }
    assert [i["value"] for i in first["items"][:3]] == ["[姓名]", "[身份证号]", "[电话]"]
    assert first["items"][4]["value"] == "受检者[姓名]，电话[电话]，邮箱[邮箱]"
    assert second["texts"][0]["text"] == LIVER_TEXT
    assert third["texts"][0]["text"] == THYROID_TEXT
    # Without --shift-dates the dates stay as they were.
    assert (first["exam_date"], first["prior_visits"][0]["exam_date"]) == ("2024-03-01", "2023-02-15")


def test_birth_date_becomes_age_at_each_visit(tmp_path: Path, key_file: Path) -> None:
    rows, _, _ = _run(tmp_path, key_file, "out", shift=True)
    first, second, third = rows
    assert "birth_date" not in first and "birth_date" not in second
    # Born 1960-05-04: 63 on 2024-03-01 (before the birthday), 62 on 2023-02-15, 64 on 2025-03-10.
    assert (first["age"], first["prior_visits"][0]["age"], second["age"]) == (63, 62, 64)
    assert third["age"] == 45


def test_pseudonyms_are_stable_per_key_and_differ_between_keys(tmp_path: Path, key_file: Path) -> None:
    rows_a, manifest_a, raw_a = _run(tmp_path, key_file, "a")
    _, manifest_b, raw_b = _run(tmp_path, key_file, "b")
    rows_c, manifest_c, _ = _run(tmp_path, tmp_path / "other.key", "c")

    assert raw_a == raw_b  # same key, same input → the same output, byte for byte
    assert manifest_a["key_id"] == manifest_b["key_id"] != manifest_c["key_id"]
    first, second, third = rows_a
    assert first["person_id"] == second["person_id"] != third["person_id"]
    assert first["person_id"].startswith("p-") and first["visit_id"].startswith("v-")
    # The visit 2024-0001 is the same pseudonym as a row's own id and as the next row's prior visit.
    assert second["prior_visits"][0]["visit_id"] == first["visit_id"]
    assert len({first["visit_id"], second["visit_id"], third["visit_id"], first["prior_visits"][0]["visit_id"]}) == 4
    other_first = rows_c[0]
    assert other_first["person_id"] != first["person_id"] and other_first["visit_id"] != first["visit_id"]


def test_date_shift_keeps_a_persons_intervals(tmp_path: Path, key_file: Path) -> None:
    rows, manifest, _ = _run(tmp_path, key_file, "shifted", shift=True)
    first, second, third = rows
    exam_1 = dt.date.fromisoformat(first["exam_date"])
    prior_1 = dt.date.fromisoformat(first["prior_visits"][0]["exam_date"])
    exam_2 = dt.date.fromisoformat(second["exam_date"])
    offset = exam_1 - dt.date(2024, 3, 1)
    assert dt.timedelta(days=1) <= abs(offset) <= dt.timedelta(days=30)
    assert exam_1 - prior_1 == dt.date(2024, 3, 1) - dt.date(2023, 2, 15) == dt.timedelta(days=380)
    assert exam_2 - exam_1 == dt.date(2025, 3, 10) - dt.date(2024, 3, 1) == dt.timedelta(days=374)
    assert second["prior_visits"][0]["exam_date"] == first["exam_date"]
    # The date written in the free text moved with the person's exam date (both were 2024-03-01).
    assert f"于{exam_1.year}年{exam_1.month}月{exam_1.day}日体检" in first["texts"][3]["text"]
    assert manifest["transformations"]["date_shifted"] == 5  # 3 exam dates + 2 prior-visit dates
    assert manifest["transformations"]["text_date_shifted"] == 1
    assert abs(dt.date.fromisoformat(third["exam_date"]) - dt.date(2025, 1, 1)) <= dt.timedelta(days=30)


def test_manifest(tmp_path: Path, key_file: Path) -> None:
    rows, manifest, _ = _run(tmp_path, key_file, "out")
    source = tmp_path / "records.jsonl"
    out = tmp_path / "out.jsonl"
    assert (tmp_path / "out.jsonl.manifest.json").is_file()
    assert json.loads((tmp_path / "out.jsonl.manifest.json").read_text(encoding="utf-8")) == manifest
    assert manifest["source"] == {
        "file": "records.jsonl",
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "rows": 4,
    }
    assert manifest["output"]["rows"] == 3 == len(rows)
    assert manifest["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["engine_version"] == zhujian.__version__
    assert manifest["kb_version"] == default_kb().version
    assert manifest["rows"] == [
        {"output_row": 1, "source_row": 1},
        {"output_row": 2, "source_row": 2},
        {"output_row": 3, "source_row": 4},
    ]
    (error,) = manifest["errors"]
    assert error["source_row"] == 3 and "not valid JSON" in error["reason"]
    key_id = manifest["key_id"]
    assert len(key_id) == 16 and int(key_id, 16) >= 0
    assert manifest["options"] == {"shift_dates": False, "max_shift_days": 30}
    # Counted by hand from _rows(): see the comments on each identifier there.
    counts = manifest["transformations"]
    assert counts["person_id"] == 3
    assert counts["visit_id"] == 5  # 3 rows + 2 prior visits
    assert counts["id_number"] == 2  # item 身份证号, the 15-digit number in 一般情况
    assert counts["email"] == 1
    assert counts["phone"] == 5  # item 联系电话, history mobile, 备注 +86, 座机, 工作单位电话
    assert counts["name"] == 6  # item 姓名, 受检者, 姓名：, 联系人, 报告医生：, 欧阳女士
    assert counts["address"] == 2
    assert counts["birth_date_to_age"] == 4  # rows 1 and 2, and the prior visit of each
    assert "date_shifted" not in counts


def test_key_file_is_created_private_and_reused(tmp_path: Path, key_file: Path) -> None:
    created = load_or_create_key(key_file)
    assert created.created and len(created.key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = load_or_create_key(key_file)
    assert not again.created and again.key == created.key and again.warnings == []
    key_file.chmod(0o644)
    assert "readable by others" in load_or_create_key(key_file).warnings[0]


@pytest.mark.parametrize(("content", "message"), [("not hex", "hex-encoded"), ("00ff", "at least 16")])
def test_bad_key_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    key = tmp_path / "bad.key"
    key.write_text(content, encoding="ascii")
    with pytest.raises(DeidError, match=message):
        load_or_create_key(key)


def test_output_may_not_overwrite_input_or_key(tmp_path: Path, key_file: Path) -> None:
    source = _write_input(tmp_path / "records.jsonl")
    with pytest.raises(DeidError, match="overwrite"):
        deidentify_file(source, source, key_file)
    with pytest.raises(DeidError, match="overwrite"):
        deidentify_file(source, key_file, key_file)


def test_names_without_a_cue_are_masked_when_the_record_names_the_person() -> None:
    deidentifier = Deidentifier(b"k" * 32)
    row = {
        "visit_id": "1",
        "sex": "male",
        "items": [{"name": "姓名", "value": "仉子墨"}],  # a rare surname no list holds
        "texts": [{"item": "备注", "text": "仉子墨自述乏力两周"}],
    }
    out = deidentifier.deidentify_record(row)
    assert out["texts"][0]["text"] == "[姓名]自述乏力两周"


@pytest.mark.parametrize(
    "text",
    [
        LIVER_TEXT,
        "肝区未见异常，右肾区无叩痛",
        "左心室舒张功能减低，房室瓣反流（轻度）",
        "预激综合征（旁路传导）",
        "患者高血压病史10年，患者于2020年诊断糖尿病",
        "右侧乳腺外上象限可见一低回声结节，大小约16x11mm，BI-RADS 4B类",
        "使用镇静药物后复查",
        "建议到当地社区医院随访",
        "血压 150/95 mmHg，空腹血糖 7.2 mmol/L",
    ],
)
def test_clinical_wording_is_not_taken_for_an_identifier(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_faker_identities_do_not_survive(tmp_path: Path) -> None:
    faker = pytest.importorskip("faker")
    fake = faker.Faker("zh_CN")
    fake.seed_instance(20240301)
    rows, secrets_used = [], []
    for n in range(40):
        name, ssn, phone, email, address = fake.name(), fake.ssn(), fake.phone_number(), fake.email(), fake.address()
        secrets_used += [name, ssn, phone, email, address]
        rows.append(
            {
                "person_id": ssn,
                "visit_id": f"V{n}",
                "sex": "unknown",
                "items": [{"name": "姓名", "value": name}, {"name": "手机", "value": phone}],
                "texts": [
                    {"item": "备注", "text": f"受检者{name}自述无不适，邮箱{email}，住址：{address}，身份证{ssn}"},
                    {"item": "肝脏", "text": LIVER_TEXT},
                ],
            }
        )
    source = tmp_path / "fake.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "fake_out.jsonl"
    deidentify_file(source, out, tmp_path / "fake.key")
    raw = out.read_text(encoding="utf-8")
    leaked = [s for s in secrets_used if s in raw]
    assert leaked == []
    assert raw.count(LIVER_TEXT) == 40


def test_deid_command(tmp_path: Path, key_file: Path) -> None:
    app = typer.Typer()
    app.command("deid")(deid_command)

    @app.callback()
    def main() -> None:
        """A group, as in the real CLI, so the command is called by name."""

    source = _write_input(tmp_path / "records.jsonl")
    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(
        app, ["deid", str(source), "--out", str(out), "--key-file", str(key_file), "--shift-dates"]
    )
    assert result.exit_code == 0, result.output
    assert "4 row(s) in, 3 out" in result.output
    assert "line 3 left out: not valid JSON" in result.output
    assert "created a new key" in result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads((tmp_path / "cli.jsonl.manifest.json").read_text(encoding="utf-8"))["options"] == {
        "shift_dates": True,
        "max_shift_days": 180,
    }
    bad = CliRunner().invoke(
        app, ["deid", str(source), "--out", str(out), "--key-file", str(key_file), "--format", "x"]
    )
    assert bad.exit_code == 2 and "--format must be jsonl or json" in bad.output


def test_real_checkup_texts_keep_every_word() -> None:
    """Real Meinian ultrasound, ECG and eye-exam texts hold no identifiers; the scanner must leave all of them alone
    (the overall-status table 2302 is left out: it holds record numbers)."""
    texts_file = DATA / "meinian" / "texts_dev.csv"
    if not texts_file.is_file():
        pytest.skip(f"real data not found at {texts_file} (../shared/data is absent)")
    import csv

    with texts_file.open(encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle) if row["table_id"] != "2302"]
    assert len(texts) > 60000
    changed = [t for t in texts if find_pii(t)]
    assert changed == []


def test_no_kb_item_label_is_taken_for_an_identity_field() -> None:
    """An item whose label looked like 姓名 or 电话 would lose its value, and a label taken for a name or an address
    would be masked itself: none of the KB's item names or aliases may be either."""
    deidentifier = Deidentifier(b"k" * 32)
    kb = default_kb()
    labels = [label for item in kb.items.values() for label in (item.name, *item.aliases)]
    assert len(labels) > 500
    rows = [{"visit_id": "v", "sex": "male", "items": [{"name": label, "value": "5.6"}]} for label in labels]
    changed = [r["items"][0] for r in rows if deidentifier.deidentify_record(r)["items"][0] != r["items"][0]]
    assert changed == []
