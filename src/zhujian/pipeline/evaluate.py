"""Normalize and evaluate measured items: alias → KB item, value parsing, unit conversion, plausibility,
reference interval (the input's own range wins), flag, critical value, derived items (BMI, eGFR, non-HDL-C, WHR)."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from zhujian.domain.record import ItemInput, Record
from zhujian.domain.report import CriticalAlert, EvaluatedItem, Flag, Problem
from zhujian.kb.loader import KnowledgeBase, normalize_unit
from zhujian.kb.schema import CriticalValueDef, ItemDef, OrdinalLevel, QualitativeValue
from zhujian.pipeline.values import ParsedValue, parse_range, parse_value, plain_number, value_text
from zhujian.risk.egfr import egfr_ckd_epi_2021_cr

# Comparison operators as small integers, so that compiled code compares without calling a Python function.
OP_CODES: dict[str, int] = {"<": 0, "<=": 1, ">": 2, ">=": 3, "==": 4, "!=": 5}


def passes(code: int, value: float, threshold: float) -> bool:
    """`value <op> threshold` for the operator whose code `OP_CODES` gives."""
    if code == 0:
        return value < threshold
    if code == 1:
        return value <= threshold
    if code == 2:
        return value > threshold
    if code == 3:
        return value >= threshold
    if code == 4:
        return value == threshold
    return value != threshold


def compare(value: float, op: str, threshold: float) -> bool:
    return passes(OP_CODES[op], value, threshold)


@lru_cache(maxsize=8192)
def _category_key(text: str) -> str:
    key = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "")
    return key.replace("＋", "+").replace("－", "-")


@dataclass
class ItemCaches:
    """Per-KB lookups built once: category synonyms per item, critical values per item; and, filled as records come,
    the KB item of each source code and name, and the unit conversion of each (item, source unit): a checkup system
    sends the same labels and units for everyone."""

    ordinal: dict[str, dict[str, OrdinalLevel]]
    qualitative: dict[str, dict[str, QualitativeValue]]
    critical: dict[str, list[CriticalValueDef]]
    by_code: dict[str, str | None] = field(default_factory=dict)
    by_name: dict[str, str | None] = field(default_factory=dict)
    conversions: dict[tuple[str, str], tuple[float, float] | None] = field(default_factory=dict)
    specs: dict[str, ItemSpec] = field(default_factory=dict)
    # `_converted_range` answers by (range text, factor, offset): a plain dict is cheaper to call from compiled code
    # than the lru_cache wrapper.
    ranges: dict[tuple[str, float, float], tuple[float | None, float | None] | None] = field(default_factory=dict)
    # `critical` with each comparison's operator code and threshold.
    critical_tests: dict[str, list[tuple[int, float, CriticalValueDef]]] = field(default_factory=dict)


class ItemSpec:
    """What evaluating a plain value reads of an item's definition, read once per KB (attributes of a native class
    are much cheaper than a pydantic model's in the compiled engine)."""

    def __init__(self, item: ItemDef, categorical: bool) -> None:
        self.item = item
        # Whether the item has ordinal levels or qualitative values to look a result up in.
        self.categorical = categorical
        self.name: str = item.name
        self.unit: str | None = item.unit
        self.quantitative = item.kind == "quantitative"
        self.plausible_low: float | None = item.plausible_low
        self.plausible_high: float | None = item.plausible_high
        self.reference_from_input_only: bool = item.reference_from_input_only
        self.reference: list[tuple[str, float | None, float | None, float | None, float | None]] = [
            (ref.sex, ref.age_min, ref.age_max, ref.low, ref.high) for ref in item.reference
        ]

    def plausible(self, value: float) -> bool:
        """`_plausible(item, value)`."""
        return _within_plausible(value, self.plausible_low, self.plausible_high)

    def interval(self, sex: str, age: float | None) -> tuple[float | None, float | None] | None:
        """The KB's reference interval (WS/T 404/405 bands) for this sex and age: the first band that applies."""
        for ref_sex, age_min, age_max, low, high in self.reference:
            if ref_sex != "any" and ref_sex != sex:
                continue
            if age_min is not None and (age is None or age < age_min):
                continue
            if age_max is not None and (age is None or age >= age_max):
                continue
            return low, high
        return None


_K = TypeVar("_K")
_V = TypeVar("_V")

# Bound on each per-KB memo above (labels and units of a stream are few; a hostile stream must not grow them).
_MEMO_SIZE = 65536


def _remember(memo: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store `value` under `key`, emptying the memo first when it is full."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


# Per-KB tables, by the KB's identity. The entry holds the KB object itself and is used only for that very object:
# a center's copy (`KnowledgeBase.with_center`) has the same version but other critical thresholds, and a KB created
# after another was freed can get the freed one's id. Holding the object keeps its id from being reused while cached.
_CACHES: dict[int, tuple[KnowledgeBase, ItemCaches]] = {}
# KBs whose tables are kept at once (a process normally has one or two; tests make many).
_CACHED_KBS = 8


def caches_for(kb: KnowledgeBase) -> ItemCaches:
    hit = _CACHES.get(id(kb))
    if hit is not None and hit[0] is kb:
        return hit[1]
    ordinal: dict[str, dict[str, OrdinalLevel]] = {}
    qualitative: dict[str, dict[str, QualitativeValue]] = {}
    for item in kb.items.values():
        if item.scale:
            table: dict[str, OrdinalLevel] = {}
            for level in item.scale:
                for word in (level.label, *level.synonyms):
                    table[_category_key(word)] = level
            ordinal[item.id] = table
        if item.values:
            qtable: dict[str, QualitativeValue] = {}
            for qv in item.values:
                for word in (qv.label, *qv.synonyms):
                    qtable[_category_key(word)] = qv
            qualitative[item.id] = qtable
    critical: dict[str, list[CriticalValueDef]] = {}
    for cv in kb.critical_values:
        critical.setdefault(cv.item, []).append(cv)
    caches = ItemCaches(ordinal, qualitative, critical)
    caches.critical_tests = {
        item_id: [(OP_CODES[cv.op], cv.value, cv) for cv in defs] for item_id, defs in critical.items()
    }
    if len(_CACHES) >= _CACHED_KBS:
        _CACHES.clear()
    _CACHES[id(kb)] = (kb, caches)
    return caches


def item_spec(kb: KnowledgeBase, caches: ItemCaches, item_id: str) -> ItemSpec:
    """The ItemSpec of a KB item, made on first use."""
    spec = caches.specs.get(item_id)
    if spec is None:
        spec = caches.specs[item_id] = ItemSpec(
            kb.items[item_id], item_id in caches.ordinal or item_id in caches.qualitative
        )
    return spec


def evaluated_origin(record: Record, index: int) -> str:
    return _origin(record.items[index], index)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class ItemEvaluation:
    items: list[EvaluatedItem]
    by_id: dict[str, EvaluatedItem]
    alerts: list[CriticalAlert]
    problems: list[Problem]


def evaluate_items(kb: KnowledgeBase, record: Record) -> ItemEvaluation:
    caches = caches_for(kb)
    sex = record.sex
    age = record.age_years()
    items: list[EvaluatedItem] = []
    by_id: dict[str, EvaluatedItem] = {}
    problems: list[Problem] = []
    alerts: list[CriticalAlert] = []
    unresolved: list[tuple[EvaluatedItem, tuple[float, ...]]] = []
    for index, given in enumerate(record.items):
        evaluated = _evaluate_one(kb, caches, given, index, sex, age, problems, unresolved)
        items.append(evaluated)
        if evaluated.item_id is None or evaluated.value is None:
            continue
        previous = by_id.get(evaluated.item_id)
        if previous is not None and previous.value is not None:
            if previous.value != evaluated.value:
                problems.append(
                    Problem(
                        "duplicate",
                        f"{evaluated.name} 出现两次且数值不同（{_fmt(previous.value)} 与 {_fmt(evaluated.value)}），"
                        "规则使用第一次的结果",
                        item=evaluated.source_name,
                        value=evaluated.raw_value,
                        field=evaluated_origin(record, index),
                    )
                )
            continue
        by_id[evaluated.item_id] = evaluated
    _derive(kb, caches, record, items, by_id, sex, age, problems)
    critical_tests = caches.critical_tests
    for evaluated in items:
        item_id = evaluated.item_id
        value = evaluated.value
        if item_id is None or not isinstance(value, float):
            continue
        tests = critical_tests.get(item_id)
        if tests is None:
            continue
        for code, threshold, cv in tests:
            if passes(code, value, threshold):
                evaluated.critical = True
                alerts.append(
                    CriticalAlert(
                        level=cv.level,
                        reason=cv.reason,
                        source="item",
                        item_id=evaluated.item_id,
                        value=evaluated.value,
                        unit=evaluated.unit,
                        rule_id=cv.id,
                    )
                )
    for evaluated, readings in unresolved:
        _alert_possible_critical(caches, evaluated, readings, alerts)
    return ItemEvaluation(items, by_id, alerts, problems)


def _alert_possible_critical(
    caches: ItemCaches, evaluated: EvaluatedItem, readings: tuple[float, ...], alerts: list[CriticalAlert]
) -> None:
    """A value with several plausible readings is not used, but if one of them is a critical value the physician
    must see it at the top of the report: an alert (and through it a class-A/B conclusion) names every reading."""
    assert evaluated.item_id is not None
    unit = f" {evaluated.unit}" if evaluated.unit else ""
    shown = " 或 ".join(_fmt(r) for r in readings) + unit
    for cv in caches.critical.get(evaluated.item_id, ()):
        hits = [r for r in readings if compare(r, cv.op, cv.value)]
        if not hits:
            continue
        evaluated.critical = True
        alerts.append(
            CriticalAlert(
                level=cv.level,
                reason=f"{evaluated.name}结果“{evaluated.raw_value}”无法确定数值（可读作 {shown}），"
                f"若为 {_fmt(hits[0])}{unit} 则为危急值，请立即核对原始结果：{cv.reason}",
                source="item",
                item_id=evaluated.item_id,
                value=evaluated.raw_value,
                unit=evaluated.unit,
                rule_id=cv.id,
            )
        )


def _origin(given: ItemInput, index: int) -> str:
    """Where an item came from, for its problems (built only when a problem needs it)."""
    return given.origin or f"items[{index}]"


def _resolve(kb: KnowledgeBase, caches: ItemCaches, given: ItemInput) -> str | None:
    """The KB item of a source item: its code (a KB id or an alias), else its name."""
    item_id: str | None = None
    code = given.code
    if code:
        memo = caches.by_code
        item_id = memo.get(code)
        # `get` then `in`, never `in` then `[]`: another thread may clear the memo in between.
        if item_id is None and code not in memo:
            item_id = _remember(memo, code, code if code in kb.items else kb.resolve_item(code))
    name = given.name
    if item_id is None and name:
        memo = caches.by_name
        item_id = memo.get(name)
        if item_id is None and name not in memo:
            item_id = _remember(memo, name, kb.resolve_item(name))
    return item_id


def _conversion(kb: KnowledgeBase, caches: ItemCaches, item_id: str, unit: str) -> tuple[float, float] | None:
    """(factor, offset) from the source unit to the item's canonical unit, or None when the KB has no conversion."""
    key = (item_id, unit)
    memo = caches.conversions
    conv = memo.get(key)
    if conv is not None or key in memo:
        return conv
    return _remember(memo, key, kb.unit_factors.get(item_id, {}).get(normalize_unit(unit)))


def _evaluate_one(
    kb: KnowledgeBase,
    caches: ItemCaches,
    given: ItemInput,
    index: int,
    sex: str,
    age: float | None,
    problems: list[Problem],
    unresolved: list[tuple[EvaluatedItem, tuple[float, ...]]],
) -> EvaluatedItem:
    source_name = given.name or given.code or ""
    given_value = given.value
    raw = None if given_value is None else given_value if type(given_value) is str else value_text(given_value)
    item_id = _resolve(kb, caches, given)
    if item_id is None:
        problems.append(
            Problem(
                "item_unknown",
                f"未知项目“{source_name}”：知识库中没有这个名称或别名，原值保留未解释",
                item=source_name,
                value=raw,
                field=_origin(given, index),
            )
        )
        return EvaluatedItem(
            None, source_name, source_name, raw, raw, given.unit, None, None, None, "unknown", section=given.section
        )
    spec = item_spec(kb, caches, item_id)
    item = spec.item
    # Positional up to `section` (EvaluatedItem's field order): a keyword argument doubles the cost of the call.
    result = EvaluatedItem(
        item_id,
        spec.name,
        source_name,
        raw,
        None,
        spec.unit,
        None,
        None,
        None,
        "unknown",
        False,
        None,
        None,
        False,
        given.section,
    )

    # Categories first: ordinal dipsticks and qualitative results are words or symbols, not numbers.
    if spec.categorical and given_value is not None and not isinstance(given_value, (int, float)):
        key = _category_key(str(given_value))
        level = caches.ordinal.get(item_id, {}).get(key)
        if level is not None and item.normal_max_rank is not None:
            result.value = level.label
            result.rank = level.rank
            result.unit = None
            result.flag = "abnormal" if level.rank > item.normal_max_rank else "normal"
            return result
        qv = caches.qualitative.get(item_id, {}).get(key)
        if qv is None and key.endswith(")") and "(" in key:
            qv = caches.qualitative.get(item_id, {}).get(key.split("(")[0])
        if qv is not None:
            result.value = qv.label
            result.unit = None
            result.flag = "abnormal" if qv.abnormal else "normal"
            return result

    # The common case, a plain number without bound, remark or separators, is read without a ParsedValue.
    number = plain_number(given_value)
    parsed: ParsedValue | None = None
    remark: str | None = None
    if number is None:
        parsed = parse_value(given_value)
        if parsed.kind == "empty":
            problems.append(
                Problem(
                    "empty",
                    f"{item.name}（{source_name}）没有结果值",
                    item=source_name,
                    value=raw,
                    field=_origin(given, index),
                )
            )
            return result
        if parsed.kind == "not_done":
            problems.append(
                Problem(
                    "not_done",
                    f"{item.name}（{source_name}）未检查：原值“{parsed.text}”",
                    item=source_name,
                    value=raw,
                    field=_origin(given, index),
                )
            )
            result.value = None
            result.qualifier = parsed.text
            return result
        if parsed.kind not in ("number", "ambiguous"):
            why = f"：{parsed.reason}" if parsed.reason else ""
            problems.append(
                Problem(
                    "unparseable",
                    f"{item.name}（{source_name}）的结果“{raw}”无法解读为数值或分类{why}",
                    item=source_name,
                    value=raw,
                    field=_origin(given, index),
                )
            )
            return result
        remark = parsed.remark
    if not spec.quantitative:
        problems.append(
            Problem(
                "unparseable",
                f"{item.name}（{source_name}）应为分类结果（如 阴性/阳性、-/+），收到数值“{raw}”",
                item=source_name,
                value=raw,
                field=_origin(given, index),
            )
        )
        return result

    unit = given.unit
    if remark is not None and unit is None and normalize_unit(remark) in kb.unit_factors.get(item_id, {}):
        unit, remark = remark, None
    factor, offset = 1.0, 0.0
    if unit is not None and unit.strip():
        conv = _conversion(kb, caches, item_id, unit)
        if conv is None:
            problems.append(
                Problem(
                    "unit_unknown",
                    f"{item.name}（{source_name}）的单位“{unit}”无法换算为 {item.unit}，结果未使用",
                    item=source_name,
                    value=raw,
                    field=_origin(given, index),
                )
            )
            result.unit = unit
            return result
        factor, offset = conv
    value: float | None = None
    if parsed is None or (parsed.kind == "number" and parsed.number is not None and not parsed.readings):
        # One plain reading, used when plausible (without a message to prepare).
        plain = number if parsed is None else parsed.number
        assert plain is not None
        value = _convert(plain, factor, offset)
        if not spec.plausible(value):
            value = None
            _resolve_number(
                item,
                parsed if parsed is not None else ParsedValue("number", number=plain),
                factor,
                offset,
                raw,
                unit,
                source_name,
                _origin(given, index),
                problems,
            )
    else:
        value = _resolve_number(item, parsed, factor, offset, raw, unit, source_name, _origin(given, index), problems)
    if value is None:
        if parsed is not None and parsed.kind == "ambiguous":
            plausible = tuple(
                r for r in (_convert(x.number, factor, offset) for x in parsed.readings) if _plausible(item, r)
            )
            if plausible:
                unresolved.append((result, plausible))
        return result
    result.value = value
    bound = None if parsed is None else parsed.bound
    if bound is not None:
        result.qualifier = bound
    elif remark is not None:
        result.qualifier = remark
        if remark not in ("↑", "↓", "+", "*"):
            problems.append(
                Problem(
                    "remark",
                    f"{item.name}（{source_name}）结果带有备注“{remark}”，数值 {_fmt(value)} 已使用",
                    item=source_name,
                    value=raw,
                    field=_origin(given, index),
                )
            )

    ref: tuple[float | None, float | None] | None = None
    reference_range = given.reference_range
    if reference_range:
        range_key = (reference_range, factor, offset)
        ranges = caches.ranges
        ref = ranges.get(range_key)
        if ref is None and range_key not in ranges:
            ref = _remember(ranges, range_key, _converted_range(reference_range, factor, offset))
        if ref is None:
            problems.append(
                Problem(
                    "reference_unparseable",
                    f"{item.name}（{source_name}）的参考范围“{reference_range}”无法解读，改用知识库默认范围",
                    item=source_name,
                    value=reference_range,
                    field=_origin(given, index),
                )
            )
    if ref is not None:
        result.ref_low, result.ref_high, result.ref_source = ref[0], ref[1], "input"
    elif not spec.reference_from_input_only:
        interval = spec.interval(sex, age)
        if interval is not None:
            result.ref_low, result.ref_high = interval
            result.ref_source = "kb"
    result.flag = _flag(value, result.ref_low, result.ref_high, result.ref_source, bound)
    return result


@lru_cache(maxsize=16384)
def _converted_range(text: str, factor: float, offset: float) -> tuple[float | None, float | None] | None:
    """A printed reference range in the canonical unit, or None when it cannot be read or converted. The same lab
    prints the same range for every person, so the answer is kept."""
    parsed_range = parse_range(text)
    if parsed_range is None:
        return None
    low, high = _range_bound(parsed_range.low, factor, offset), _range_bound(parsed_range.high, factor, offset)
    # e.g. "1e307-1e308" mg/dL: beyond any representable number once converted
    if (low is not None and not math.isfinite(low)) or (high is not None and not math.isfinite(high)):
        return None
    return low, high


def _range_bound(bound: float | None, factor: float, offset: float) -> float | None:
    return None if bound is None else round(bound * factor + offset, 6)


def _convert(number: float, factor: float, offset: float) -> float:
    value = number * factor + offset
    return round(value, 6) if factor != 1.0 or offset != 0.0 else value


def _within_plausible(value: float, low: float | None, high: float | None) -> bool:
    return math.isfinite(value) and not ((low is not None and value < low) or (high is not None and value > high))


def _plausible(item: ItemDef, value: float) -> bool:
    return _within_plausible(value, item.plausible_low, item.plausible_high)


def _resolve_number(
    item: ItemDef,
    parsed: ParsedValue,
    factor: float,
    offset: float,
    raw: str | None,
    unit: str | None,
    source_name: str,
    where: str,
    problems: list[Problem],
) -> float | None:
    """The value in the canonical unit, or None (with a problem) when it is implausible or cannot be read one way.

    A number typed with separators ("6,8", "1,234") is read the way its plausible range allows: one plausible
    reading is used and the report says how it was read; several plausible readings are never narrowed down."""
    unit_text = f" {unit}" if unit else ""
    if parsed.kind == "number" and parsed.number is not None:
        value = _convert(parsed.number, factor, offset)
        if not _plausible(item, value):
            limits = _limits(item)
            problems.append(
                Problem(
                    "implausible",
                    f"{item.name}（{source_name}）= {raw}{unit_text} 超出可能范围 {limits}，疑为录入错误，结果未使用",
                    item=source_name,
                    value=raw,
                    field=where,
                )
            )
            return None
        if parsed.readings:
            problems.append(
                Problem(
                    "separator_read",
                    f"{item.name}（{source_name}）的结果“{raw}”按{parsed.readings[0].how}读作 "
                    f"{_fmt(parsed.number)}{unit_text}，请核对原始结果",
                    item=source_name,
                    value=raw,
                    field=where,
                )
            )
        return value
    limits = _limits(item)
    readings = [(r, _convert(r.number, factor, offset)) for r in parsed.readings]
    plausible = [(r, v) for r, v in readings if _plausible(item, v)]
    shown = "、".join(f"{_fmt(r.number)}（{r.how}）" for r, _ in readings)
    if len(plausible) == 1:
        reading, value = plausible[0]
        problems.append(
            Problem(
                "separator_read",
                f"{item.name}（{source_name}）的结果“{raw}”可读作 {shown}，只有 {_fmt(reading.number)}{unit_text} "
                f"在可能范围 {limits} 内，按此读取，请核对原始结果",
                item=source_name,
                value=raw,
                field=where,
            )
        )
        return value
    if plausible:
        why = f"可读作 {shown}，均在可能范围 {limits} 内，无法确定"
    else:
        why = f"可读作 {shown}，均超出可能范围 {limits}"
    problems.append(
        Problem(
            "ambiguous",
            f"{item.name}（{source_name}）的结果“{raw}”{why}，结果未使用，请核对原始结果",
            item=source_name,
            value=raw,
            field=where,
        )
    )
    return None


def _limits(item: ItemDef) -> str:
    """The plausible range of an item as messages show it (built only when a message needs it)."""
    return f"[{_fmt(item.plausible_low)}, {_fmt(item.plausible_high)}] {item.unit}"


def _flag(value: float, low: float | None, high: float | None, source: str | None, bound: str | None) -> Flag:
    if source is None:
        return "unknown"
    if high is not None and value > high:
        return "high"
    if low is not None and value < low:
        return "low"
    if bound == ">" and high is not None and value >= high:
        return "high"
    if bound == "<" and low is not None and value <= low:
        return "low"
    return "normal"


def _derive(
    kb: KnowledgeBase,
    caches: ItemCaches,
    record: Record,
    items: list[EvaluatedItem],
    by_id: dict[str, EvaluatedItem],
    sex: str,
    age: float | None,
    problems: list[Problem],
) -> None:
    """Items a checkup report always states but sources often omit, computed from measured items."""

    def num(item_id: str) -> float | None:
        e = by_id.get(item_id)
        return e.value if e is not None and isinstance(e.value, float) else None

    def add(item_id: str, value: float, how: str) -> None:
        if item_id not in kb.items or item_id in by_id:
            return
        item = kb.items[item_id]
        decimals = item.decimals if item.decimals is not None else 2
        value = round(value, decimals)
        interval = item_spec(kb, caches, item_id).interval(sex, age)
        low, high = interval if interval is not None else (None, None)
        evaluated = EvaluatedItem(
            item_id,
            item.name,
            how,
            None,
            value,
            item.unit,
            low,
            high,
            "kb" if interval else None,
            _flag(value, low, high, "kb" if interval else None, None),
            derived=True,
        )
        items.append(evaluated)
        by_id[item_id] = evaluated

    height, weight = num("height"), num("weight")
    if height and weight and height > 0:
        add("bmi", weight / (height / 100.0) ** 2, "计算：体重/身高²")
    tc, hdl = num("tc"), num("hdl")
    if tc is not None and hdl is not None:
        add("non_hdl", tc - hdl, "计算：总胆固醇−HDL-C")
    waist, hip = num("waist"), num("hip")
    if waist and hip:
        add("whr", waist / hip, "计算：腰围/臀围")
    crea = num("crea")
    if crea is not None and age is not None and (sex == "male" or sex == "female") and age >= 18:
        value = egfr_ckd_epi_2021_cr(scr_mg_dl=crea / 88.4, age=age, sex="male" if sex == "male" else "female")
        if math.isfinite(value):
            add("egfr", value, "计算：CKD-EPI 2021 肌酐方程")
    elif crea is not None and "egfr" not in by_id:
        missing = "性别" if sex not in ("male", "female") else "年龄"
        problems.append(
            Problem("derived_missing_input", f"未计算 eGFR：缺少{missing}（或年龄 < 18 岁）", item="egfr", field="egfr")
        )
