import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_aecore_and_using_it_never_imports_streamlit():
    code = (
        "import importlib, pkgutil, sys, aecore\n"
        "for module in pkgutil.walk_packages(aecore.__path__, 'aecore.'):\n"
        "    importlib.import_module(module.name)\n"
        "assert 'streamlit' not in sys.modules, 'aecore imported streamlit'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_no_pickle_joblib_or_dill_in_the_project():
    modules = ("pickle", "joblib", "dill")
    banned = [f"{verb} {name}" for verb in ("import", "from") for name in modules]
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part in {".venv", "venv", "artifacts"} for part in path.parts):
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path}: {b}" for b in banned if b in text]
    assert not offenders
