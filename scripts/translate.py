"""Fill untranslated zh-CN messages from a JSON file {msgid: msgstr}, then print what is left.

    python scripts/translate.py translations.json && scripts/i18n.sh
"""
import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "platform/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def main(path):
    table = json.loads(Path(path).read_text("utf-8"))
    with PO.open("rb") as fh:
        catalog = read_po(fh)
    for message in catalog:
        if message.id and not message.string and message.id in table:
            message.string = table[message.id]
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=76)
    left = [m.id for m in catalog if m.id and not m.string]
    print(json.dumps(left, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
