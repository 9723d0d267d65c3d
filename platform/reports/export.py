"""Formatting report cells for people, and exporting exactly that to CSV and XLSX.

Exports carry no formulas (OWASP, CSV injection): any text, whether a field's value, an
option's label, a person's name or a title, that starts with a character a spreadsheet reads
as the start of a formula gets a leading apostrophe, and XLSX cells are written as strings.
Real numbers (a measure of -3) are not text and stay numbers.
"""
import csv
import io
import unicodedata

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

EMPTY_LABEL = "（空）"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape(text):
    """Text a spreadsheet shows as text: a leading apostrophe before a formula's first character
    (also behind leading spaces, and in its full-width form, ＝ ＋ － ＠, which Chinese input
    methods type and some spreadsheets read as the ASCII one)."""
    first = unicodedata.normalize("NFKC", text.lstrip(" \u3000")[:1])
    return "'" + text if text.startswith(FORMULA_START) or (first and first in FORMULA_START) else text


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell_text(value, column):
    """How a cell is shown on screen; exports write the same."""
    if column.kind == "dimension":
        if value is None:
            return EMPTY_LABEL
        return column.labels.get(value, str(value)) if column.labels else str(value)
    if value is None:
        return "—"
    if column.format == "percent":
        return f"{value * 100:.2f}%"
    if column.format == "days":
        return f"{value:.1f}"
    if column.format == "money":
        return f"¥{value:,.2f}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def table(result):
    """[[header...], [cell text...] ...] as shown on screen."""
    head = [c.label or c.key for c in result.columns]
    return [head] + [[cell_text(v, c) for v, c in zip(row, result.columns)] for row in result.rows]


def _export_table(result):
    """The on-screen table with every text escaped; a number's text (-3, -12.50%) is left as it is."""
    head = [escape(c.label or c.key) for c in result.columns]
    return [head] + [[text if _is_number(v) else escape(text)
                      for v, c, text in zip(row, result.columns, shown)]
                     for row, shown in zip(result.rows, table(result)[1:])]


def to_csv(result):
    out = io.StringIO()
    out.write("\ufeff")  # so Excel opens Chinese text as UTF-8
    csv.writer(out).writerows(_export_table(result))
    return out.getvalue().encode("utf-8")


def to_xlsx(result, title="report"):
    """Numbers stay numbers, with the number format that shows them as on screen; every other
    cell is a string (data type "s"), never a formula."""
    wb = Workbook()
    ws = wb.active
    ws.title = title[:31] or "report"
    texts = _export_table(result)
    _append_texts(ws, texts[0])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    formats = {"percent": "0.00%", "days": "0.0", "money": "¥#,##0.00"}
    for row, shown in zip(result.rows, texts[1:]):
        ws.append([None] * len(row))
        for v, c, text, cell in zip(row, result.columns, shown, ws[ws.max_row]):
            if _is_number(v) and (c.kind == "measure" or not c.labels):
                cell.value = v
                if c.kind == "measure":
                    whole = isinstance(v, int) or v.is_integer()
                    cell.number_format = formats.get(c.format, "#,##0" if whole else "#,##0.00")
            elif not (c.kind == "measure" and v is None):  # an empty measure stays an empty cell
                _set_text(cell, text)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _append_texts(ws, texts):
    ws.append([None] * len(texts))
    for cell, text in zip(ws[ws.max_row], texts):
        _set_text(cell, text)


def _set_text(cell, text):
    # control characters XML cannot hold would make openpyxl refuse the whole export
    cell.value = ILLEGAL_CHARACTERS_RE.sub("", text)
    cell.data_type = "s"
