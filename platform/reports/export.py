"""Formatting report cells for people, and exporting exactly that to CSV and XLSX."""
import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font

EMPTY_LABEL = "（空）"


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


def to_csv(result):
    out = io.StringIO()
    out.write("\ufeff")  # so Excel opens Chinese text as UTF-8
    csv.writer(out).writerows(table(result))
    return out.getvalue().encode("utf-8")


def to_xlsx(result, title="report"):
    """Numbers stay numbers, with the number format that shows them as on screen."""
    wb = Workbook()
    ws = wb.active
    ws.title = title[:31] or "report"
    ws.append([c.label or c.key for c in result.columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    formats = {"percent": "0.00%", "days": "0.0", "money": "¥#,##0.00"}
    for row in result.rows:
        values = []
        for v, c in zip(row, result.columns):
            values.append(cell_text(v, c) if c.kind == "dimension" else v)
        ws.append(values)
        for v, c, cell in zip(row, result.columns, ws[ws.max_row]):
            if c.kind == "measure" and v is not None:
                whole = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
                cell.number_format = formats.get(c.format, "#,##0" if whole else "#,##0.00")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
