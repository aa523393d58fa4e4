"""The fast paths of text extraction agree with their plain counterparts.

- The required-literal pre-filter (one Aho–Corasick pass, then per-alternative literal requirements) only skips
  patterns that cannot match: on real Meinian texts, extraction with it equals extraction trying every pattern of
  the active sites.
- Attribute scans answered from one scan per sentence (`_Runs`) equal a fresh `finditer` from the match onwards.
- A long text without sentence breaks costs time linear in its length, not quadratic.
- Patterns led by a lookahead for their possible first characters (`first_char_class`) match exactly what the plain
  patterns match.
"""

from __future__ import annotations

import csv
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhujian.evaluation import ITEM_OF_TABLE
from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import (
    _CATEGORY,
    _LIST_NUMBER,
    _RATE,
    _SIZE_PAIR,
    _SIZE_SINGLE,
    ExtractionResult,
    _extract_uncached,
    _normalize_chars,
    _Runs,
    lexicon_for,
)
from zhujian.pipeline.literals import first_char_class

# ../shared/data beside the checkout (or further up for a worktree); the test skips when it is absent.
TEXTS = next(
    (p / "shared" / "data" / "meinian" / "texts_dev.csv" for p in Path(__file__).resolve().parents[1:]
     if (p / "shared" / "data").is_dir()),
    Path("texts_dev.csv-not-found"),
)


def _doc(result: ExtractionResult) -> dict[str, Any]:
    return {
        "incomplete": result.incomplete,
        "site": result.site,
        "findings": [(f.to_dict(), f.conclusion, f.critical) for f in result.findings],
    }


def _sample(n: int) -> list[tuple[str, str]]:
    if not TEXTS.exists():
        pytest.skip(f"real texts not available: {TEXTS}")
    with TEXTS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(7).shuffle(rows)
    return [(ITEM_OF_TABLE.get(r["table_id"], r["table_id"]), r["text"]) for r in rows[:n]]


def test_prefilter_changes_no_finding_on_real_texts() -> None:
    lex = lexicon_for(default_kb())
    sample = _sample(1500)
    # Long unbroken texts as well: real texts of one exam joined by commas.
    for i in range(0, 200, 20):
        item = sample[i][0]
        sample.append((item, "，".join(t for _, t in sample[i : i + 20] if t).replace("。", "，")))
    found = 0
    for item, text in sample:
        fast = _doc(_extract_uncached(lex, item, text))
        plain = _doc(_extract_uncached(lex, item, text, prefilter=False))
        assert fast == plain, (item, text)
        found += len(fast["findings"])
    # The sample is not trivially empty: real checkup texts carry many findings.
    assert found > 300


_FRAGMENTS = ["12", "3.5", "x", "×", "*", "mm", "cm", " ", "约", "大小", "长径", "72", "次/分", "bpm", "次", "肝", "，"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30), st.data())
def test_sentence_scan_equals_a_fresh_scan_from_any_position(parts: list[str], data: st.DataObject) -> None:
    text = "".join(parts)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    pattern: re.Pattern[str]
    for pattern in (_SIZE_PAIR, _SIZE_SINGLE, _RATE):
        runs = _Runs(pattern, text, start, end)
        for p in range(start, end + 1):
            extra, joined = runs.scan_from(p)
            got = [m.span() for m in extra] + [m.span() for m in runs.matches[joined:]]
            assert got == [m.span() for m in pattern.finditer(text, p, end)], (text, p)


def test_long_unbroken_text_is_linear() -> None:
    kb = default_kb()
    lex = lexicon_for(kb)
    unit = "肝内见无回声区大小约5x4mm "

    def best(k: int) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = _extract_uncached(lex, "肝脏", unit * k)
            times.append(time.perf_counter() - t0)
        assert result.findings, "the repeated text describes a liver cyst"
        return min(times)

    small, large = best(100), best(800)
    # Eight times the text: about eight times the time when linear, 64 times when quadratic.
    assert large / small < 24, (small, large)


def test_first_character_lookahead_keeps_every_match() -> None:
    lex = lexicon_for(default_kb())
    sources = [("|".join(f"(?:{p})" for p in cf.definition.patterns), cf.pattern) for cf in lex.findings]
    sources += [
        ("|".join(f"(?:{p})" for p in cf.definition.exclude), cf.exclude)
        for cf in lex.findings
        if cf.exclude is not None
    ]
    # Organ patterns, the incomplete-view phrases, RADS categories and list numbers: the pattern inside the lookahead.
    guarded_only = [entry.pattern for entry in lex.site_patterns] + [lex.incomplete, _CATEGORY, _LIST_NUMBER]
    sources += [(g.pattern.split("(?:", 1)[1][:-1], g) for g in guarded_only if g.pattern.startswith("(?=")]
    pairs = [(re.compile(source, guarded.flags), guarded) for source, guarded in sources]
    assert sum(plain.pattern != guarded.pattern for plain, guarded in pairs) > 100, "most patterns are guarded"
    texts = [_normalize_chars(text, lex.headings) for _item, text in _sample(1500)]
    texts += [text for _item, text in _sample(1500)]  # as read by the list-number search: before normalization
    for plain, guarded in pairs:
        for text in texts:
            assert [m.span() for m in guarded.finditer(text)] == [m.span() for m in plain.finditer(text)], (
                plain.pattern,
                text,
            )


def test_first_character_class() -> None:
    assert first_char_class("(?<!淋巴)结节|(?:大小)?约?\\d") == "[\\U00007ed3\\U00005927\\U00007ea6\\d]"
    # Already cheap for `re` (led by a literal or a class), or not describable: no lookahead.
    assert first_char_class("结节") is None
    assert first_char_class("(?:a|b)c") is None
    assert first_char_class("(?<!x).{0,3}结节") is None
    assert first_char_class("(?<!x)[^a]") is None
    assert first_char_class("(?<!x)a?") is None  # can match the empty string
    # Under case folding a literal and a one-character class match the same characters.
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for letter in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        as_class = re.compile(f"[\\U{ord(letter):08x}]", re.IGNORECASE)
        assert as_class.findall(every) == re.compile(letter, re.IGNORECASE).findall(every)
