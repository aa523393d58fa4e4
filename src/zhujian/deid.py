"""De-identification of canonical checkup records (the JSON lines `zhujian ingest` writes) for dataset export.

What it does to each record:
- `person_id` and `visit_id` become keyed pseudonyms (HMAC-SHA256 under a secret key): the same person gets the same
  pseudonym across files and runs with the same key, and nobody without the key can recompute or reverse it.
- Every string (texts, questionnaire, item names and values, origins, any other field) is scanned for direct
  identifiers and each one found is replaced by a typed placeholder: names after cues (姓名：, 受检者, 患者…) and in
  name fields, 18- and 15-digit 身份证 numbers, mobile and landline numbers, e-mail addresses, postal addresses,
  medical record numbers after cues, and birth dates after cues. Clinical wording is left exactly as it was.
- A birth date becomes an age in whole years at each visit (computed from the original dates) and is removed.
- Optionally (`shift_dates`) every date of a person — exam dates and dates written in the free text — moves by the
  same keyed number of days (never 0, at most `max_shift_days`), so intervals between a person's visits are kept.

Limits: names are found only after a cue or in a field that says it is a name (no named-entity model); an address
needs two parts (e.g. 市+区, 路+号) or a cue (住址：) to be recognised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLACEHOLDERS: dict[str, str] = {
    "name": "[姓名]",
    "id_number": "[身份证号]",
    "phone": "[电话]",
    "email": "[邮箱]",
    "address": "[地址]",
    "record_number": "[编号]",
    "birth_date": "[出生日期]",
}
MANIFEST_FORMAT = "zhujian-deid-manifest/1"
DEFAULT_MAX_SHIFT_DAYS = 180
_MIN_KEY_BYTES = 16

# ---- identity-card numbers (GB 11643-1999, check digit ISO 7064 MOD 11-2) -------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"


def _digits(text: str) -> str:
    """ASCII digits of a string that may hold full-width digits (１２３) — `\\d` matches both."""
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)


def id_number_check_digit(first17: str) -> str:
    """The 18th character of a 身份证 number from its first 17 digits (GB 11643-1999, ISO 7064 MOD 11-2)."""
    digits = _digits(first17)
    if len(digits) != 17 or not digits.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(d) * w for d, w in zip(digits, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def _valid_birth(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def is_valid_id_number(text: str) -> bool:
    """An 18-digit number with a real birth date and a matching check digit, or a 15-digit one with a real date."""
    digits = _digits(text.replace(" ", "")).upper().replace("Ｘ", "X")
    if len(digits) == 18 and digits[:17].isdigit():
        birth_ok = 1800 <= int(digits[6:10]) <= 2100 and _valid_birth(
            int(digits[6:10]), int(digits[10:12]), int(digits[12:14])
        )
        return birth_ok and id_number_check_digit(digits[:17]) == digits[17]
    if len(digits) == 15 and digits.isdigit():
        return _valid_birth(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))
    return False


def _looks_like_id18(digits: str) -> bool:
    """A real birth date in place: masked even when the check digit is wrong (a typo is still someone's number)."""
    return 1800 <= int(digits[6:10]) <= 2100 and _valid_birth(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))


# ---- patterns ------------------------------------------------------------------------------------

_CJK = "\u4e00-\u9fff"
# Characters that end a name or place: particles, verbs and the first characters of the next label (性别, 年龄…).
_STOP = "的了是在和与及或等男女岁自述诉称因于为向从由对被将已未无有不之也性年龄电话住地址联手身份证出生职业单位"
_NAME_CHAR = f"(?:(?![{_STOP}])[{_CJK}])"
# After an explicit label (姓名：) only the first characters of the next label end the name (性别, 年龄, 身份证…).
_LABELLED_NAME_CHAR = f"(?:(?![性年身电住地出职联手婚籍])[{_CJK}])"
_SURNAMES_SINGLE = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康"
    "施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗"
    "谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜"
    "冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝于"
    # Less common surnames; ones that are everyday words after 患者 (来, 平, 原, 由, 和…) are left out on purpose.
    "萧赖洪官封谈匡鞠惠荆冀郁胥栗鄢谌奚粟冼蔺楼闻厉伊仝郜阚权帅屠朴廉禹井祖漆狄扈晁芮都阙浦戈邸雍辜羊裘亓邰赫杭"
    "鲜逯茹诸亢嵇湛戎茅呼尉冶檀昝奉"
)
_SURNAMES_COMPOUND = (
    "欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|长孙|宇文|司徒|夏侯|轩辕|令狐|端木|独孤|南宫|西门|百里|"
    "呼延|闻人|澹台|公冶|申屠|太史|万俟"
)
_PERSON_NAME = f"(?:(?:{_SURNAMES_COMPOUND}){_NAME_CHAR}{{1,2}}|[{_SURNAMES_SINGLE}]{_NAME_CHAR}{{1,2}})"
_DELIM = r"[:：]\s*|\s+"
# Cues after which a name is expected whatever follows it.
_STRONG_NAME_CUES = (
    "患者姓名|病人姓名|受检者姓名|姓名|受检者|受检人|体检者|体检人|被检者|就诊者|就诊人|联系人|监护人|家属|签名|签字"
)
# Cues that also begin ordinary clinical phrases (患者高血压…): a name counts only after a delimiter (患者：李明) or
# when a delimiter follows it (患者李明，男).
_WEAK_NAME_CUES = (
    "患者|病人|主检医师|主检医生|报告医生|报告医师|审核医生|审核医师|检查医生|检查医师|医生|医师"
    "|记录者|操作者|检查者|报告人|审核人"
)
_NAME_END = r"(?=[，,。；;、\s（(：:]|$|先生|女士|男|女|\d)"
_NAME_PATTERNS = (
    # 姓名：X — after an explicit label any 2–4 characters are the name, whatever the surname.
    re.compile(rf"(?:{_STRONG_NAME_CUES})[:：]\s*(?P<v>{_LABELLED_NAME_CHAR}{{2,4}})"),
    re.compile(rf"(?:{_STRONG_NAME_CUES})(?:{_DELIM})?(?P<v>{_PERSON_NAME})"),
    re.compile(rf"(?:{_WEAK_NAME_CUES})(?:{_DELIM})(?P<v>{_PERSON_NAME})"),
    re.compile(rf"(?:{_WEAK_NAME_CUES})(?P<v>{_PERSON_NAME}){_NAME_END}"),
    # 王先生, 李女士: the surname alone identifies together with the rest of a record.
    re.compile(rf"(?P<v>(?:(?:{_SURNAMES_COMPOUND})|[{_SURNAMES_SINGLE}]){_NAME_CHAR}{{0,2}}?)(?=先生|女士)"),
)
_NAME_CUE_HINT = re.compile(rf"{_STRONG_NAME_CUES}|{_WEAK_NAME_CUES}|先生|女士")

# ASCII-only boundaries: `\w` would count the Chinese character before an address (邮箱x@y.cn) as part of it.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_ID18 = re.compile(r"(?<![\dA-Za-z])(?P<v>\d{6}\s?\d{8}\s?\d{3}[\dXxＸｘ])(?![\dA-Za-z])")
_ID15 = re.compile(r"(?<![\dA-Za-z])(?P<v>\d{15})(?![\dA-Za-z])")
_MOBILE = re.compile(
    r"(?<![\dA-Za-z])(?P<v>(?:(?:\+|＋|00)?\s?\(?86\)?[\s-]?)?[1１][3-9３-９]\d(?:[\s-]?\d{4}){2})(?![\dA-Za-z])"
)
_LANDLINE = re.compile(
    r"(?<![\dA-Za-z.])(?P<v>(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3})[\s-]?[2-9]\d{6,7}(?:\s?(?:转|ext\.?|-)\s?\d{1,6})?)(?![\d.])"
)
_PHONE_CUE = re.compile(
    r"(?:联系电话|电话号码|手机号码|手机号|电话|手机|座机|联系方式|tel|TEL|Tel|phone|Phone)"
    r"(?:[:：]\s*|\s*)(?P<v>[+＋(（]?\d[\d\s\-()（）]{5,18}\d)"
)
_RECORD_CUE = re.compile(
    r"(?:病历号|病案号|住院号|门诊号|体检号|体检编号|档案号|就诊卡号|医保卡号|社保卡号|医保号|卡号|登记号|条码号|流水号|ID号)"
    r"(?:[:：]\s*|\s*)(?P<v>[A-Za-z0-9][A-Za-z0-9\-]{3,})"
)
_LONG_NUMBER = re.compile(r"(?<![\dA-Za-z.])(?P<v>\d{10,}[Xx]?)(?![\d.])")
_DATE_TEXT = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})(?:(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})|年(?P<m2>\d{1,2})月(?P<d2>\d{1,2})日?)(?!\d)"
)
_BIRTH_CUE = re.compile(
    r"(?:出生日期|出生年月日|出生年月|出生|生日)(?:[:：]\s*|\s*)"
    r"(?P<v>(?:19|20)\d{2}(?:[-/.]\d{1,2}(?:[-/.]\d{1,2})?|年\d{1,2}月(?:\d{1,2}日?)?))"
)
_ADDRESS_CUE = re.compile(
    r"(?:家庭住址|家庭地址|现住址|现住|户籍地址|户籍地|联系地址|通讯地址|通信地址|居住地址|居住地|单位地址|工作单位|住址|地址)"
    r"(?:[:：]\s*)(?P<v>[^，,。；;\n]{2,80})"
)
# Place names may hold 和 (和平区) or 业 (工业园区); only particles and verbs end them.
_PLACE = f"(?:(?![的了是在与及或等自述诉称因于为向从由对被将已未无有不之也患者检查住址：:])[{_CJK}])"
_NUM = r"[\d一二三四五六七八九十百零〇]"
_ADDRESS = re.compile(
    rf"(?P<prov>{_PLACE}{{2,4}}(?:省|自治区|特别行政区))?"
    rf"(?P<city>{_PLACE}{{2,4}}市|{_PLACE}{{2,6}}(?:自治州|地区|盟))?"
    rf"(?P<dist>{_PLACE}{{1,4}}(?:区|县|旗))?"
    rf"(?P<town>{_PLACE}{{1,5}}(?:街道|镇|乡))?"
    rf"(?P<village>{_PLACE}{{1,6}}(?:村|社区|小区|花园|公寓|大厦|家园|新村|苑))?"
    rf"(?P<road>{_PLACE}{{1,8}}(?:大道|大街|路|街|巷|弄|胡同)(?:{_NUM}+段)?)?"
    rf"(?P<num>{_NUM}+(?:-{_NUM}+)?(?:号|弄))?"
    rf"(?P<unit>(?:(?:{_NUM}+|[A-Za-z])(?:-{_NUM}+)?(?:栋|幢|座|号楼|单元|层|楼|室|户))+)?"
)
# A postcode right after an address belongs to it.
_POSTCODE_TAIL = re.compile(r"\s*(?:邮编|邮政编码)?[:：]?\s*\d{6}(?!\d)")
_POSTCODE_CUE = re.compile(r"(?:邮编|邮政编码)[:：]?\s*(?P<v>\d{6})(?!\d)")
_ADDRESS_PARTS = ("prov", "city", "dist", "town", "village", "road", "num", "unit")
# The ending of each address part; numbered parts (88号, 3栋, 501室) need their number.
_ADDRESS_SUFFIX = re.compile(
    rf"省|自治区|特别行政区|市|自治州|地区|盟|区|县|旗|街道|镇|乡|村|社区|小区|花园|公寓|大厦|家园|苑|大道|大街|路|街|巷|胡同"
    rf"|(?:{_NUM}|[A-Za-z])(?:号楼|号|弄|栋|幢|座|单元|层|楼|室|户)"
)
_ADDRESS_PART_MAX = 10  # the longest part body in _ADDRESS (a road name of up to 8 characters, plus a section number)
_ADDRESS_HINT = re.compile(r"省|市|区|县|旗|镇|乡|村|社区|小区|花园|公寓|大厦|苑|路|街|巷|弄|胡同|号|栋|幢|单元|室")

# Field names (keys, item names, text items) that say what identifier the value is.
_IDENTITY_FIELDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("id_number", re.compile(r"身份证|证件号|id_?card|id_?number|identity", re.IGNORECASE)),
    ("phone", re.compile(r"电话|手机|联系方式|座机|phone|mobile|telephone|^tel$", re.IGNORECASE)),
    ("email", re.compile(r"邮箱|电子邮件|e-?mail", re.IGNORECASE)),
    ("address", re.compile(r"地址|住址|居住地|户籍|address", re.IGNORECASE)),
    ("birth_date", re.compile(r"出生日期|出生年月|生日|birth_?day", re.IGNORECASE)),
    (
        "record_number",
        re.compile(r"病历号|病案号|住院号|门诊号|体检号|档案号|卡号|医保号|mrn|medical_?record", re.IGNORECASE),
    ),
    ("name", re.compile(r"姓名|名字|联系人|监护人|patient_?name|person_?name|full_?name|^name$", re.IGNORECASE)),
)
# Keys of a record that carry a value, whose meaning the sibling label (item name, text item) gives.
_LABEL_KEYS = ("name", "item")
_VALUE_KEYS = ("value", "text")
# Keys the record schema defines with a clinical meaning: never treated as identity fields by their name.
_STRUCTURAL_KEYS = frozenset(
    {
        "visit_id",
        "person_id",
        "sex",
        "age",
        "exam_date",
        "birth_date",
        "questionnaire",
        "items",
        "texts",
        "prior_visits",
        "code",
        "unit",
        "reference_range",
        "section",
        "origin",
        "value",
        "text",
        "item",
        "history",
        "medications",
        "family_history",
        "symptoms",
        "smoking",
        "drinking",
        "north",
        "urban",
        "name",
    }
)


@dataclass(frozen=True, slots=True)
class PiiSpan:
    kind: str  # a key of PLACEHOLDERS
    start: int
    end: int


def _identity_field_kind(label: str) -> str | None:
    text = label.strip().lstrip("*")
    for kind, pattern in _IDENTITY_FIELDS:
        if pattern.search(text):
            return kind
    return None


def _label_kind(data: dict[str, Any]) -> str | None:
    """What identifier an item or text holds, from its label (item 姓名, text 联系地址), or None."""
    label = next((data[k] for k in _LABEL_KEYS if isinstance(data.get(k), str)), None)
    return _identity_field_kind(label) if label else None


def _key_kind(key: str, top_level: bool) -> str | None:
    """What identifier a JSON key names. `name` is a person's name only at the top of a record; inside an item it
    is the item's label."""
    if key == "name":
        return "name" if top_level else None
    if key in _STRUCTURAL_KEYS:
        return None
    return _identity_field_kind(key)


def _address_windows(text: str) -> list[tuple[int, int]]:
    """Stretches of text where two address-part endings lie close together: the only places an address of two or
    more parts can be. Searching only there keeps the full pattern off most clinical sentences."""
    ends = [(m.start(), m.end()) for m in _ADDRESS_SUFFIX.finditer(text)]
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(ends):
        j = i
        while j + 1 < len(ends) and ends[j + 1][0] - ends[j][1] <= _ADDRESS_PART_MAX:
            j += 1
        if j > i:
            windows.append((max(0, ends[i][0] - _ADDRESS_PART_MAX), ends[j][1]))
        i = j + 1
    return windows


def _address_spans(text: str) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    for start, end in _address_windows(text):
        spans.extend(_address_spans_in(text, start, end))
    return spans


def _address_spans_in(text: str, start: int, stop: int) -> list[PiiSpan]:
    spans: list[PiiSpan] = []
    position = start
    while position < stop:
        match = _ADDRESS.search(text, position, stop)
        if match is None:
            break
        if match.end() == match.start():
            position = match.start() + 1
            continue
        parts = [p for p in _ADDRESS_PARTS if match.group(p)]
        # One part alone is ordinary clinical wording (肝区, 右心室, 旁路); an address has at least two.
        if len(parts) >= 2:
            end = match.end()
            tail = _POSTCODE_TAIL.match(text, end)
            if tail is not None:
                end = tail.end()
            spans.append(PiiSpan("address", match.start(), end))
            position = end
        else:
            position = match.start() + 1
    return spans


def find_pii(text: str) -> list[PiiSpan]:
    """Direct identifiers in a text, non-overlapping, in order. Earlier detectors win an overlap."""
    candidates: list[PiiSpan] = []

    def add(kind: str, pattern: re.Pattern[str], check: Any = None) -> None:
        for match in pattern.finditer(text):
            group = "v" if "v" in pattern.groupindex else 0
            if check is not None and not check(match.group(group)):
                continue
            candidates.append(PiiSpan(kind, match.start(group), match.end(group)))

    if "@" in text:
        add("email", _EMAIL)
    has_digit = any(c.isdigit() for c in text)
    if has_digit:
        add("id_number", _ID18, lambda v: _looks_like_id18(_digits(v.replace(" ", ""))) or is_valid_id_number(v))
        add("id_number", _ID15, is_valid_id_number)
        add("phone", _MOBILE)
        add("phone", _PHONE_CUE)
        add("phone", _LANDLINE)
        add("record_number", _RECORD_CUE)
        add("birth_date", _BIRTH_CUE)
        add("address", _POSTCODE_CUE)
        add("record_number", _LONG_NUMBER)
    if _NAME_CUE_HINT.search(text):
        for pattern in _NAME_PATTERNS:
            add("name", pattern)
    if "地址" in text or "住" in text or "户籍" in text or "单位" in text or "居住" in text:
        add("address", _ADDRESS_CUE)
    if _ADDRESS_HINT.search(text):
        candidates.extend(_address_spans(text))

    chosen: list[PiiSpan] = []
    taken = [False] * len(text)
    for span in candidates:  # detector order is priority order
        if span.end <= span.start or any(taken[span.start : span.end]):
            continue
        chosen.append(span)
        for i in range(span.start, span.end):
            taken[i] = True
    return sorted(chosen, key=lambda s: s.start)


def mask_pii(text: str) -> str:
    """The text with every identifier found replaced by its placeholder (no known names, no date shift)."""
    return Deidentifier(secrets.token_bytes(32)).scrub_text(text)


# ---- keys ----------------------------------------------------------------------------------------


class DeidError(ValueError):
    """A de-identification input, key or option that cannot be used; the message says which and why."""


def key_id(key: bytes) -> str:
    """A short public id of a key (a hash of it): which key was used, without revealing the key."""
    return hashlib.sha256(b"zhujian-deid-key-id\x00" + key).hexdigest()[:16]


@dataclass(frozen=True)
class LoadedKey:
    key: bytes
    created: bool
    warnings: list[str]


def load_or_create_key(path: Path) -> LoadedKey:
    """Read the hex key in `path`, or create the file with a new random 256-bit key (permissions 0600)."""
    if not path.exists():
        key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # the umask may have narrowed the mode, never widen it beyond 0600
            os.write(descriptor, (key.hex() + "\n").encode("ascii"))
        finally:
            os.close(descriptor)
        return LoadedKey(key, True, [])
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DeidError(f"key file {path}: expected a hex-encoded key ({exc.__class__.__name__})") from exc
    if len(key) < _MIN_KEY_BYTES:
        raise DeidError(f"key file {path}: key is {len(key)} bytes; at least {_MIN_KEY_BYTES} are needed")
    warnings = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        warnings.append(f"key file {path} is readable by others (mode {mode:o}); run chmod 600 {path}")
    return LoadedKey(key, False, warnings)


# ---- the de-identifier ---------------------------------------------------------------------


@dataclass
class DeidOptions:
    shift_dates: bool = False
    max_shift_days: int = DEFAULT_MAX_SHIFT_DAYS

    def __post_init__(self) -> None:
        if self.max_shift_days < 1:
            raise DeidError(f"max_shift_days must be at least 1, got {self.max_shift_days}")


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _age_at(birth: dt.date, day: dt.date) -> int:
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


@dataclass
class Deidentifier:
    """Pseudonyms, masking and date shifts under one key. `counts` tallies every transformation by kind."""

    key: bytes
    options: DeidOptions = field(default_factory=DeidOptions)
    counts: Counter[str] = field(default_factory=Counter)

    def _digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self.key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()

    def person_pseudonym(self, person_id: str) -> str:
        return "p-" + self._digest("person_id", person_id).hex()[:20]

    def visit_pseudonym(self, visit_id: str) -> str:
        return "v-" + self._digest("visit_id", visit_id).hex()[:20]

    def date_offset_days(self, person_key: str) -> int:
        """The person's shift: never 0, within ±max_shift_days, the same for every date of that person."""
        span = self.options.max_shift_days
        draw = int.from_bytes(self._digest("date_shift", person_key)[:8], "big") % (2 * span)
        return -(draw + 1) if draw < span else draw - span + 1

    # -- text ---------------------------------------------------------------------------------------------------------

    def scrub_text(self, text: str, known_names: Iterable[str] = (), date_offset: int | None = None) -> str:
        spans = find_pii(text)
        names = sorted({n for n in known_names if len(n) >= 2}, key=len, reverse=True)
        if names:
            taken = [False] * len(text)
            for span in spans:
                for i in range(span.start, span.end):
                    taken[i] = True
            extra: list[PiiSpan] = []
            for name in names:
                start = text.find(name)
                while start >= 0:
                    end = start + len(name)
                    if not any(taken[start:end]):
                        extra.append(PiiSpan("name", start, end))
                        for i in range(start, end):
                            taken[i] = True
                    start = text.find(name, end)
            spans = sorted([*spans, *extra], key=lambda s: s.start)
        out: list[str] = []
        position = 0
        for span in spans:
            out.append(self._shift_text_dates(text[position : span.start], date_offset))
            out.append(PLACEHOLDERS[span.kind])
            self.counts[span.kind] += 1
            position = span.end
        out.append(self._shift_text_dates(text[position:], date_offset))
        return "".join(out)

    def _shift_text_dates(self, text: str, offset: int | None) -> str:
        if offset is None or not text:
            return text

        def shift(match: re.Match[str]) -> str:
            month = match.group("m") or match.group("m2")
            day = match.group("d") or match.group("d2")
            try:
                moved = dt.date(int(match.group("y")), int(month), int(day)) + dt.timedelta(days=offset)
            except ValueError:
                return match.group(0)  # not a real date (2023-13-45): not a date to shift
            self.counts["text_date_shifted"] += 1
            m_text = f"{moved.month:02d}" if len(month) == 2 else str(moved.month)
            d_text = f"{moved.day:02d}" if len(day) == 2 else str(moved.day)
            sep = match.group("sep")
            if sep:
                return f"{moved.year}{sep}{m_text}{sep}{d_text}"
            return f"{moved.year}年{m_text}月{d_text}" + ("日" if match.group(0).endswith("日") else "")

        return _DATE_TEXT.sub(shift, text)

    # -- records ------------------------------------------------------------------------------------------------------

    def _collect_names(
        self, value: Any, names: set[str], label_kind: str | None = None, top_level: bool = False
    ) -> None:
        """Names stated anywhere in a row (after a cue, in a name field), to mask their other mentions too."""
        if isinstance(value, dict):
            row_kind = None if top_level else _label_kind(value)
            for key, inner in value.items():
                kind = _key_kind(str(key), top_level)
                if key in _VALUE_KEYS and row_kind is not None:
                    kind = row_kind
                self._collect_names(inner, names, kind)
        elif isinstance(value, list):
            for inner in value:
                self._collect_names(inner, names, label_kind)
        elif isinstance(value, str):
            if label_kind == "name" and value.strip():
                names.add(value.strip())
            if _NAME_CUE_HINT.search(value):
                names.update(value[s.start : s.end] for s in find_pii(value) if s.kind == "name")

    def _mask_field(self, kind: str, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return value
        self.counts[kind] += 1
        return PLACEHOLDERS[kind]

    def _scrub_value(self, value: Any, names: set[str], offset: int | None) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value, names, offset)
        if isinstance(value, list):
            return [self._scrub_value(v, names, offset) for v in value]
        if isinstance(value, dict):
            return self._scrub_dict(value, names, offset)
        if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) >= 10:
            # A phone or ID number stored as a JSON number (13812345678) is still an identifier.
            masked = self.scrub_text(str(value), names, None)
            return masked if masked != str(value) else value
        return value

    def _scrub_dict(
        self, data: dict[str, Any], names: set[str], offset: int | None, top_level: bool = False
    ) -> dict[str, Any]:
        label_kind = None if top_level else _label_kind(data)
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "person_id" and isinstance(value, str):
                out[key] = self.person_pseudonym(value)
                self.counts["person_id"] += 1
            elif key == "visit_id" and isinstance(value, str):
                out[key] = self.visit_pseudonym(value)
                self.counts["visit_id"] += 1
            elif key == "exam_date" and offset is not None and _parse_date(value) is not None:
                shifted = _parse_date(value)
                assert shifted is not None
                out[key] = (shifted + dt.timedelta(days=offset)).isoformat()
                self.counts["date_shifted"] += 1
            elif key in _VALUE_KEYS and label_kind is not None:
                # The label says what this is (item 姓名, text 联系地址): the whole value goes, whatever it holds.
                out[key] = self._mask_field(label_kind, value)
            elif (kind := _key_kind(str(key), top_level)) is not None:
                out[key] = self._mask_field(kind, value)
            else:
                out[key] = self._scrub_value(value, names, offset)
        return out

    def deidentify_record(self, row: dict[str, Any]) -> dict[str, Any]:
        """One de-identified copy of a canonical record (or any JSON object shaped like one)."""
        person_key = row.get("person_id") or row.get("visit_id") or json.dumps(row, sort_keys=True)[:200]
        offset = self.date_offset_days(str(person_key)) if self.options.shift_dates else None
        working = dict(row)
        birth = _parse_date(working.get("birth_date"))
        if "birth_date" in working and working["birth_date"] is not None:
            exam = _parse_date(working.get("exam_date"))
            if birth is not None and working.get("age") is None and exam is not None:
                working["age"] = _age_at(birth, exam)
                self.counts["birth_date_to_age"] += 1
            elif working.get("age") is not None:
                self.counts["birth_date_removed_age_kept"] += 1
            else:
                self.counts["birth_date_removed_no_exam_date"] += 1
            if birth is not None and isinstance(working.get("prior_visits"), list):
                visits = []
                for visit in working["prior_visits"]:
                    visit_date = _parse_date(visit.get("exam_date")) if isinstance(visit, dict) else None
                    if isinstance(visit, dict) and visit.get("age") is None and visit_date is not None:
                        visit = {**visit, "age": _age_at(birth, visit_date)}
                        self.counts["birth_date_to_age"] += 1
                    visits.append(visit)
                working["prior_visits"] = visits
            # Keep the key order of the schema: age where birth_date was is not needed, just drop the date.
            del working["birth_date"]
        names: set[str] = set()
        self._collect_names(working, names, top_level=True)
        return self._scrub_dict(working, names, offset, top_level=True)


# ---- files ---------------------------------------------------------------------------------------


@dataclass
class DeidRun:
    manifest: dict[str, Any]
    manifest_path: Path
    key_created: bool
    warnings: list[str]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path_for(output_path: Path) -> Path:
    return output_path.with_name(output_path.name + ".manifest.json")


def _versions() -> tuple[str, str | None, str | None]:
    from zhujian import __version__
    from zhujian.kb.loader import KBError, default_kb

    try:
        return __version__, default_kb().version, None
    except KBError as exc:
        return __version__, None, f"knowledge base failed to load ({len(exc.problems)} problem(s))"


def deidentify_file(
    input_path: Path,
    output_path: Path,
    key_path: Path,
    options: DeidOptions | None = None,
    output_format: str = "jsonl",
) -> DeidRun:
    """De-identify a JSON-lines file of records into `output_path` (JSON lines, or a JSON array for 'json') and write
    the manifest next to it. Lines that are not JSON objects are left out and listed (by line number and reason,
    never content) in the manifest."""
    options = options or DeidOptions()
    if output_format not in ("jsonl", "json"):
        raise DeidError(f"--format must be jsonl or json, not {output_format!r}")
    resolved = {p.resolve() for p in (input_path, key_path)}
    if output_path.resolve() in resolved or manifest_path_for(output_path).resolve() in resolved:
        raise DeidError(f"output {output_path} would overwrite the input or the key file")
    if not input_path.is_file():
        raise DeidError(f"input {input_path}: no such file")
    loaded = load_or_create_key(key_path)
    deidentifier = Deidentifier(loaded.key, options)
    from pydantic import ValidationError

    from zhujian.domain.record import Record

    rows_in = 0
    mapping: list[dict[str, int]] = []
    errors: list[dict[str, Any]] = []
    not_canonical: list[int] = []
    tmp_path = output_path.with_name(output_path.name + ".partial")
    with input_path.open(encoding="utf-8-sig") as source, tmp_path.open("w", encoding="utf-8") as sink:
        if output_format == "json":
            sink.write("[\n")
        for line_no, line in enumerate(source, start=1):
            if not line.strip():
                continue
            rows_in += 1
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append({"source_row": line_no, "reason": f"not valid JSON (column {exc.colno}: {exc.msg})"})
                continue
            if not isinstance(row, dict):
                errors.append({"source_row": line_no, "reason": f"expected a JSON object, got {type(row).__name__}"})
                continue
            try:
                Record.model_validate(row)
            except ValidationError:
                not_canonical.append(line_no)
            result = deidentifier.deidentify_record(row)
            text = json.dumps(result, ensure_ascii=False)
            if output_format == "json":
                sink.write(("  " if not mapping else ",\n  ") + text)
            else:
                sink.write(text + "\n")
            mapping.append({"output_row": len(mapping) + 1, "source_row": line_no})
        if output_format == "json":
            sink.write("\n]\n")
    tmp_path.replace(output_path)

    engine_version, kb_version, kb_error = _versions()
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "source": {"file": input_path.name, "sha256": _sha256_file(input_path), "rows": rows_in},
        "output": {
            "file": output_path.name,
            "sha256": _sha256_file(output_path),
            "rows": len(mapping),
            "format": output_format,
        },
        "engine_version": engine_version,
        "kb_version": kb_version,
        "key_id": key_id(loaded.key),
        "options": {"shift_dates": options.shift_dates, "max_shift_days": options.max_shift_days},
        "transformations": dict(sorted(deidentifier.counts.items())),
        "placeholders": PLACEHOLDERS,
        "rows": mapping,
        "errors": errors,
        "rows_not_canonical": not_canonical,
    }
    if kb_error:
        manifest["kb_error"] = kb_error
    manifest_path = manifest_path_for(output_path)
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return DeidRun(manifest, manifest_path, loaded.created, loaded.warnings)
