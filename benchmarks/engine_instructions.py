"""Instructions per record of the engine, counted by valgrind's callgrind: a measure that does not move with the
load of a shared machine (the same build and inputs give the same count), for comparing two builds or commits.

The child process loads the KB, composes N every-text-new records exactly as `engine_speed.py --new-texts` does,
builds one report first (compiling the lexicon and rules) and forgets the text results; then only the N calls of
`build_report` are counted (they run inside `itertools.starmap`, and callgrind collects only inside `starmap_next`).

    python benchmarks/engine_instructions.py [--records 50] [--pythonpath DIR]

`--pythonpath DIR` puts DIR first on the child's path, e.g. an unpacked compiled wheel or a mypyc scratch build.
Instructions are not time: a compiled build saves more time than instructions (fewer unpredictable branches and
memory accesses per instruction), so time comparisons stay with `engine_speed.py`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from itertools import starmap
from pathlib import Path


def _child(n: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from engine_speed import _new_text_records, engine_build

    from zhujian.domain.record import Record
    from zhujian.examples import load_example
    from zhujian.kb.loader import load_kb
    from zhujian.pipeline.extract import clear_extraction_cache
    from zhujian.pipeline.run import build_report

    kb = load_kb()
    raws = _new_text_records(n)
    build_report(kb, Record.model_validate(load_example("male_56_metabolic")))
    clear_extraction_cache()
    gc.collect()
    gc.freeze()
    records = [Record.model_validate(json.loads(raw)) for raw in raws]
    print(engine_build(), file=sys.stderr)
    deque(starmap(build_report, ((kb, record) for record in records)), maxlen=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--pythonpath", type=Path, help="put this folder first on the child's import path")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.records)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if args.pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.pythonpath), env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=starmap_next",
                f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
                sys.executable,
                __file__,
                "--child",
                "--records",
                str(args.records),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    build = re.search(r"^engine: .*$", done.stderr, re.MULTILINE)
    if done.returncode != 0 or found is None:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    total = int(found.group(1))
    print(f"{build.group(0) if build else 'engine: ?'}; {args.records} every-text-new records")
    print(f"instructions per record (build_report only): {total / args.records / 1e6:.2f} M")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
