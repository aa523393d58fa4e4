"""Format registry (the door a plugin uses) and the bundled source profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zhujian.adapters import IngestError, format_names, ingest_file, load_profiles, register_format
from zhujian.adapters.base import ReadRecord, ReadRequest
from zhujian.adapters.profiles import check_profile, select_profile
from zhujian.domain.record import ItemInput, Record
from zhujian.kb.loader import KnowledgeBase, default_kb


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


def test_builtin_formats() -> None:
    assert {"wide-csv", "long", "xlsx"} <= set(format_names())


def test_a_plugin_format_goes_through_the_same_door(tmp_path: Path, kb: KnowledgeBase) -> None:
    def read_key_value(request: ReadRequest) -> Iterator[ReadRecord]:
        request.info.encoding = "utf-8"
        lines = request.path.read_text(encoding="utf-8").splitlines()
        items = []
        for number, line in enumerate(lines, start=1):
            name, value = line.split("=")
            items.append(ItemInput(name=name, value=value, origin=f"{request.path.name}:row {number}:column {name}"))
        read = ReadRecord(first_row=1, row_count=len(lines), record=Record(visit_id="kv", sex="female", items=items))
        read.item_keys = [item.name or "" for item in items]
        read.cells["item"] = len(items)
        yield read

    register_format("key-value-test", read_key_value, "name=value lines (test plugin)", replace=True)
    path = tmp_path / "kv.txt"
    path.write_text("血糖=7.5\n血红蛋白=abc\n", encoding="utf-8")
    result = ingest_file(path, "key-value-test", kb=kb)
    records = list(result)
    assert records[0].visit_id == "kv"
    assert result.report.columns["血糖"].present == 1
    assert result.report.columns["血红蛋白"].rejected == {"unparseable": 1}
    with pytest.raises(ValueError, match="already registered"):
        register_format("key-value-test", read_key_value, "again")


def test_profiles_fit_the_knowledge_base(kb: KnowledgeBase) -> None:
    profiles = load_profiles()
    assert {"korea-nhis", "korea-nhis-labels", "tianchi", "meinian"} <= set(profiles)
    for profile in profiles.values():
        assert profile.source.strip(), profile.name
        assert check_profile(profile, kb) == [], profile.name


def test_korean_age_codes_follow_the_readme() -> None:
    profile = load_profiles()["korea-nhis"]
    # ../shared/data/README.md: 5 = 20–24 … 18 = 85+, in 5-year steps.
    for code in range(5, 18):
        band = profile.age_band(str(code))
        assert band is not None and (band.low, band.high) == (5 * (code - 1), 5 * (code - 1) + 4)
    top = profile.age_band("18")
    assert top is not None and (top.low, top.high) == (85, None)
    assert profile.age_band("4") is None


def test_profile_detection_from_headers() -> None:
    korea = ["ID", "sex", "Age code (5 year old unit)", "Height (5 cm unit)", "Weight (5 kg unit)", "FBG"]
    labels = ["ID", "sex", "Age code (5 year old unit)", "BMI", "BP", "FBG"]
    assert select_profile(korea, None, "wide")[0] is not None
    assert select_profile(korea, None, "wide")[0].name == "korea-nhis"
    assert select_profile(labels, None, "wide")[0].name == "korea-nhis-labels"
    assert select_profile(["vid", "table_id", "field_results"], None, "long")[0].name == "meinian"
    assert select_profile(["vid", "table_id", "field_results"], None, "wide")[0] is None
    assert select_profile(["id", "血糖"], None, "wide") == (None, "no profile matches the header")
    with pytest.raises(IngestError, match="known profiles"):
        select_profile(["id"], "unknown-source", "wide")
