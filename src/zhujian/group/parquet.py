"""Reading the batch's Parquet output for group reports: the full report of each row (column `report_json`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_parquet_reports(path: Path, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
    import importlib

    # Imported by name: pyarrow has no type information.
    pq: Any = importlib.import_module("pyarrow.parquet")
    parquet = pq.ParquetFile(path)
    if "report_json" not in parquet.schema_arrow.names:
        raise ValueError(
            f"{path}: Parquet file without a report_json column (write it with zhujian batch --out X.parquet)"
        )
    for batch in parquet.iter_batches(batch_size=batch_size, columns=["report_json"]):
        for text in batch.column(0).to_pylist():
            if text is not None:
                yield json.loads(text)
