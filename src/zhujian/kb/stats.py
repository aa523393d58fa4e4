"""Counts that show how much the knowledge base covers."""

from __future__ import annotations

from collections import Counter
from typing import Any

from zhujian.kb.loader import KnowledgeBase


def kb_statistics(kb: KnowledgeBase) -> dict[str, Any]:
    levels = Counter(c.level or "ordinary" for c in kb.conclusions.values())
    systems = Counter(c.system for c in kb.conclusions.values())
    sections = Counter(i.section for i in kb.items.values())
    unverified = sum(1 for i in kb.items.values() if "UNVERIFIED" in i.source.upper())
    return {
        "version": kb.version,
        "files": len(kb.files),
        "items": len(kb.items),
        "items_by_section": dict(sections.most_common()),
        "item_aliases": len(kb.alias_index),
        "items_with_unverified_source": unverified,
        "sites": len(kb.sites),
        "findings": len(kb.findings),
        "conclusions": len(kb.conclusions),
        "conclusions_by_level": dict(levels),
        "conclusions_by_system": dict(systems.most_common()),
        "rules": len(kb.rules),
        "switches": sorted(kb.switches),
        "critical_values": len(kb.critical_values),
        "negation_cues": len(kb.context.context.negation),
    }
