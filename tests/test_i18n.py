"""Every message the code shows has a Chinese translation, and the compiled catalog is current."""
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "platform" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def extracted():
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    out = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(ROOT / "platform"), method_map,
                                                                     keywords={"_": None, "gettext": None,
                                                                               "ngettext": (1, 2), "_l": None}):
        out.add(message if isinstance(message, str) else message[0])
    return out


def test_every_message_is_translated():
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(extracted() - translated)
    assert missing == [], "run scripts/i18n.sh and translate: " + repr(missing)


def test_compiled_catalog_matches_the_po_file():
    with PO.open("rb") as fh:
        po = {m.id: m.string for m in read_po(fh) if m.id}
    with MO.open("rb") as fh:
        mo = {m.id: m.string for m in read_mo(fh) if m.id}
    assert po == mo, "run scripts/i18n.sh to recompile"
