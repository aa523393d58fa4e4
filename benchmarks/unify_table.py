"""Conclusions per report before and after the 一元化 merge rules (rules/unify.yaml), which merges fired, and
whether every conclusion of "before" is still reachable "after" (as a conclusion or among a conclusion's merged names).

    python benchmarks/unify_table.py [--composed 500]

Records: the golden cases, the bundled examples, and records composed from real Meinian texts and values
(benchmarks/engine_outputs.py). "Before" is the same knowledge base with the two unify files removed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase, load_kb
from zhujian.pipeline.run import build_report

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("male_56_metabolic", "female_67_critical")
sys.path.insert(0, str(ROOT / "benchmarks"))


def _records(composed: int) -> list[tuple[str, dict[str, Any]]]:
    cases = sorted((ROOT / "tests/cases").iterdir())
    out = [(case.name, json.loads((case / "input.json").read_text("utf-8"))) for case in cases]
    out += [(p.stem, json.loads(p.read_text("utf-8"))) for p in sorted((ROOT / "src/zhujian/examples").glob("*.json"))]
    if composed:
        try:
            from engine_outputs import composed_records

            out += list(composed_records(composed, 7))
        except (ImportError, FileNotFoundError) as exc:  # the real texts are optional
            print(f"(composed records skipped: {exc})")
    return out


def _kb_without_unify() -> KnowledgeBase:
    source = Path(str(resources.files("zhujian.kb").joinpath("data")))
    folder = Path(tempfile.mkdtemp()) / "kb"
    shutil.copytree(source, folder)
    (folder / "rules" / "unify.yaml").unlink()
    (folder / "conclusions" / "unify.yaml").unlink()
    return load_kb(folder)


def _key(evidence: dict[str, Any]) -> str:
    return json.dumps(evidence, sort_keys=True, ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--composed", type=int, default=500)
    args = parser.parse_args()
    before_kb, after_kb = _kb_without_unify(), load_kb()
    counts: dict[str, list[int]] = {"golden/examples": [], "composed": []}
    after_counts: dict[str, list[int]] = {"golden/examples": [], "composed": []}
    fired: Counter[str] = Counter()
    unreachable = evidence_lost = 0
    shown: dict[str, tuple[int, int]] = {}
    for name, data in _records(args.composed):
        group = "composed" if name.startswith("composed") else "golden/examples"
        record = Record.model_validate(data)
        before = build_report(before_kb, record).to_dict()["conclusions"]
        after = build_report(after_kb, record).to_dict()["conclusions"]
        counts[group].append(len(before))
        after_counts[group].append(len(after))
        for conclusion in after:
            fired.update(r for r in conclusion["rules"] if r.startswith("unify_"))
        if name in SHOWN:
            shown[name] = (len(before), len(after))
        # A conclusion of "before" is reachable "after" as a conclusion, or by its name among a conclusion's merged
        # names (merged names carry no qualifier: "肥胖（中心型）" is listed as 肥胖).
        reachable = {c["id"] for c in after} | {m for c in after for m in c["merged"]}
        unreachable += sum(
            1
            for c in before
            if not {c["id"], c["name"], before_kb.conclusions[c["id"]].name} & reachable
        )
        # Every piece of evidence of "before" is still shown "after" (under its own or the merged conclusion).
        shown_evidence = {_key(e) for c in after for e in c["evidence"]}
        evidence_lost += sum(1 for c in before for e in c["evidence"] if _key(e) not in shown_evidence)
    print("| records | n | conclusions per report before (mean / max) | after (mean / max) |")
    print("|---|---:|---:|---:|")
    for group in counts:
        if counts[group]:
            b, a = counts[group], after_counts[group]
            print(f"| {group} | {len(b)} | {statistics.mean(b):.1f} / {max(b)} | {statistics.mean(a):.1f} / {max(a)} |")
    print("\n| merge rule | reports where it fired |\n|---|---:|")
    for rule, n in fired.most_common():
        print(f"| {rule} | {n} |")
    print(f"\nconclusions of 'before' not reachable 'after': {unreachable}")
    print(f"evidence entries of 'before' not shown 'after': {evidence_lost}")
    for name, (b_count, a_count) in shown.items():
        print(f"{name}: {b_count} → {a_count} conclusions")


if __name__ == "__main__":
    main()
