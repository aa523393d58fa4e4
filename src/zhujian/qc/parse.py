"""Split a physician's free-text 主检 conclusions into one entry per conclusion.

Physicians number their conclusions in many styles: `1.` `1、` `1)` `（1）` `①` `一、`, one per line or several on a
line ("1.脂肪肝 2.肾囊肿"), sometimes with the advice on the following unnumbered line. Without numbers, each line
(or each `；`-separated part of a single line) is one conclusion. A heading such as "主检结论：" is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_CHINESE_NUMBERS = "一二三四五六七八九十"

# A list marker: the number and its punctuation. "1.5cm" is not one (a digit follows the dot).
_MARKER = re.compile(
    r"(?P<paren>[（(]\s*(?P<pn>\d{1,2})\s*[)）])"
    r"|(?P<arabic>(?<![\d.．])(?P<an>\d{1,2})\s*(?:[.．、:：](?![\d])|[)）]))"
    rf"|(?P<circled>[{_CIRCLED}])"
    rf"|(?P<chinese>(?<![{_CHINESE_NUMBERS}])(?P<cn>[{_CHINESE_NUMBERS}]{{1,2}})、)"
)
_HEADING = re.compile(
    r"^\s*[【\[]?\s*(?:主检|总检|体检|健康体检|检查)?\s*(?:结论|诊断|结果|意见|小结|总结|异常结果)(?:及|与|和)?"
    r"(?:建议|指导|意见)?\s*[】\]]?\s*[:：]?\s*$"
)
_ADVICE_LINE = re.compile(r"^\s*[【\[]?\s*(?:建议|指导意见|健康建议|医生建议|处理意见)")
_BOUNDARY = "\n\t 　；;。，,"


@dataclass(frozen=True, slots=True)
class ConclusionLine:
    """One physician conclusion: its position (1-based) in the list and its text without the list marker."""

    number: int
    text: str


def _marker_value(match: re.Match[str]) -> int:
    if match.group("pn"):
        return int(match.group("pn"))
    if match.group("an"):
        return int(match.group("an"))
    if match.group("circled"):
        return _CIRCLED.index(match.group("circled")) + 1
    word = match.group("cn")
    if word == "十":
        return 10
    if len(word) == 2:
        tens = 1 if word[0] == "十" else _CHINESE_NUMBERS.index(word[0]) + 1
        ones = 0 if word[1] == "十" else _CHINESE_NUMBERS.index(word[1]) + 1
        return tens * 10 + ones if word[0] == "十" or word[1] != "十" else tens * 10
    return _CHINESE_NUMBERS.index(word) + 1


def _markers(text: str) -> list[re.Match[str]]:
    """List markers accepted as such: at the start of a line or after a break, or the next number in sequence."""
    accepted: list[re.Match[str]] = []
    expected = 1
    for match in _MARKER.finditer(text):
        start = match.start()
        at_break = start == 0 or text[start - 1] in _BOUNDARY
        value = _marker_value(match)
        # A physician may skip a number; a break before the marker is enough then.
        if at_break and (not accepted or value in (expected, expected + 1)):
            accepted.append(match)
            expected = value + 1
        elif accepted and value == expected:
            # "脂肪肝2.肾囊肿": a marker glued to the previous conclusion counts only as the next number.
            accepted.append(match)
            expected = value + 1
    return accepted


def _clean(text: str) -> str:
    return text.strip().strip("；;。，, \t　").strip()


def split_conclusions(text: str) -> list[ConclusionLine]:
    """The physician's conclusions in order. Text before the first marker that is not a heading is kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line for line in lines if line.strip() and not _HEADING.match(line)]
    body = "\n".join(lines)
    markers = _markers(body)
    out: list[ConclusionLine] = []
    if markers:
        head = _clean(body[: markers[0].start()])
        if head:
            out.append(ConclusionLine(0, head))
        for index, match in enumerate(markers):
            end = markers[index + 1].start() if index + 1 < len(markers) else len(body)
            part = _clean(body[match.end() : end].replace("\n", " "))
            if part:
                out.append(ConclusionLine(_marker_value(match), part))
        return _renumber(out)
    parts: list[str] = []
    for line in lines:
        if _ADVICE_LINE.match(line) and parts:
            parts[-1] = parts[-1] + "，" + line.strip()
            continue
        parts.append(line)
    if len(parts) == 1:
        parts = re.split(r"[；;]", parts[0])
    return _renumber([ConclusionLine(0, _clean(p)) for p in parts if _clean(p)])


def _renumber(lines: list[ConclusionLine]) -> list[ConclusionLine]:
    return [ConclusionLine(i, line.text) for i, line in enumerate(lines, start=1)]
