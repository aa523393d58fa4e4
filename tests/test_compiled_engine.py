"""The compiled engine (`ZHUJIAN_COMPILE=1 pip install .`, modules compiled with mypyc) gives the same reports as the
plain-Python engine: a wheel is built the way a center builds it, and the output-equality harness
(benchmarks/engine_outputs.py) runs over the golden cases, the bundled examples and, when ../shared/data is there,
composed records with real texts, Tianchi rows and real texts on their own, once with each engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "benchmarks" / "engine_outputs.py"
# A bounded run of the harness (the full one is in docs/measurements.md): every golden case and example, and a sample
# of each real-data part.
HARNESS_ARGS = ["--records", "150", "--texts", "1500", "--tianchi", "300"]

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler to build the compiled engine"
)


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compiled wheel of this checkout, unpacked: a folder to put first on PYTHONPATH."""
    work = tmp_path_factory.mktemp("compiled")
    source = work / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info")
    shutil.copytree(ROOT / "build_backend", source / "build_backend", ignore=ignore)
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    wheels = work / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        env={**os.environ, "ZHUJIAN_COMPILE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (wheel,) = wheels.glob("zhujian-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _harness(pythonpath: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HARNESS), *args, *HARNESS_ARGS],
        env={**os.environ, "PYTHONPATH": str(pythonpath)},
        capture_output=True,
        text=True,
        timeout=900,
    )


def _listed_modules() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        listed: list[str] = tomllib.load(handle)["tool"]["zhujian"]["compiled"]["modules"]
    return listed


def test_build_info_names_the_modules_the_build_compiles() -> None:
    from zhujian.pipeline.build_info import ENGINE_MODULES

    as_modules = sorted(str(Path(p).relative_to("src").with_suffix("")).replace("/", ".") for p in _listed_modules())
    assert sorted(ENGINE_MODULES) == as_modules


def test_the_wheel_holds_every_listed_module_compiled(compiled_site: Path) -> None:
    for path in _listed_modules():
        module_dir = compiled_site / Path(path).relative_to("src").parent
        stem = Path(path).stem
        assert list(module_dir.glob(f"{stem}.*.so")) or list(module_dir.glob(f"{stem}.*.pyd")), path


def test_compiled_engine_gives_the_same_reports_as_plain_python(compiled_site: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "plain.json"
    plain = _harness(ROOT / "src", "--out", str(baseline))
    assert plain.returncode == 0, plain.stderr[-4000:]
    assert "engine: plain Python" in plain.stderr

    compiled = _harness(compiled_site, "--compare", str(baseline))
    n = len(_listed_modules())
    assert f"engine: compiled with mypyc ({n} of {n} modules)" in compiled.stderr, compiled.stderr[-4000:]
    assert compiled.returncode == 0, compiled.stdout[-4000:] + compiled.stderr[-4000:]
    summary = compiled.stdout.strip().splitlines()[-1]
    assert summary.endswith("identical, 0 different, 0 missing, 0 added"), summary
    assert int(summary.split()[0]) > 0
