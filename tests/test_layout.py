"""The engine lives in platform/ but is imported as formflow; platform must stay the stdlib's."""
import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_platform_folder_is_not_a_package():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_import_platform_gives_the_standard_library_from_the_repo_root():
    out = subprocess.run([sys.executable, "-c", "import platform, uuid, sqlalchemy; "
                          "print(platform.__file__); print(platform.system())"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\n")
    assert "site-packages" not in out[0] and str(ROOT / "platform") not in out[0]
    assert out[0].endswith("platform.py")
    assert out[1]


def test_formflow_maps_onto_platform():
    mod = importlib.import_module("formflow.forms.definitions")
    assert Path(mod.__file__).resolve().is_relative_to(ROOT / "platform")


def test_engine_knows_nothing_about_cars():
    words = ("car", "vehicle", "lead", "defeat", "战败", "线索", "dealer", "汽车")
    offenders = []
    for path in (ROOT / "platform").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text("utf-8").lower()
        for word in words:
            import re
            if re.search(rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word), text):
                offenders.append((path.name, word))
    assert offenders == []
