"""CSV and XLSX exports of the list pages, streamed in constant memory.

A list view builds its queryset exactly as for the page (same selector, same filters, so the
same tenancy), then hands it with a column spec to :func:`export_response` when the query string
asks ``?export=csv`` or ``?export=xlsx``. Every row is exported, not only the current page.

- CSV: UTF-8 with a BOM and « ; » between columns, as French Excel expects; rows are produced
  while the response is sent, over ``queryset.iterator(chunk_size=2000)``. Text that a
  spreadsheet would read as a formula (= + - @, tab, carriage return) is prefixed with « ' ».
- XLSX: openpyxl in write-only mode into a temporary file, sent back with ``FileResponse``;
  money is a number in euros with a « € » format, dates are dates.

Each export is an audit event (who exported which list, with which filters).
"""

from __future__ import annotations

import csv
import datetime
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal

from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.utils import timezone
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from orgs.audit import Actor, actor_from_request, audit_record

FORMATS = ("csv", "xlsx")
CHUNK_SIZE = 2000
# Query-string keys that select the page or the format, not the rows.
NOT_FILTERS = ("page", "export")

Kind = Literal["text", "int", "money", "date", "datetime"]

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel shows these with the reader's own separators: « 1 234,50 € », « 27/11/2026 ».
MONEY_FORMAT = '#,##0.00\\ "€"'
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
# OWASP's list: a cell starting with one of these is a formula to Excel or LibreOffice.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Rows per sheet, header included: Excel opens no more.
XLSX_MAX_ROWS = 1_048_576


@dataclass(frozen=True)
class Column:
    """One exported column: its French header, how to read the value from a row, its type.

    ``value`` is a dotted attribute path (``"programme.name"``) or a function of the row.
    ``choices`` (a model field's ``choices``) turns a stored value into its label.
    ``money`` values are integer cents; ``date``/``datetime`` values are Python dates.
    """

    header: Any
    value: str | Callable[[Any], Any]
    kind: Kind = "text"
    choices: Sequence[tuple[Any, Any]] | None = None

    def read(self, row: Any) -> Any:
        return self.reader()(row)

    def reader(self) -> Callable[[Any], Any]:
        """A function of the row, built once per export: labels are translated here, once."""
        if callable(self.value):
            get = self.value
        elif "." not in self.value:
            get = attrgetter(self.value)
        else:
            parts = self.value.split(".")

            def get(row: Any) -> Any:
                for part in parts:
                    row = getattr(row, part, None)
                    if row is None:
                        return None
                return row

        if self.choices is None:
            return get
        labels = {value: str(label) for value, label in self.choices}
        return lambda row: labels.get(value := get(row), value)


def field_choices(model: type[Model], name: str) -> Sequence[tuple[Any, Any]]:
    """A model field's choices, for ``Column(choices=…)``."""
    return model._meta.get_field(name).choices or ()


def requested_format(request: HttpRequest) -> str | None:
    """``csv`` or ``xlsx`` when the query string asks for an export; otherwise the page."""
    fmt = request.GET.get("export", "")
    return fmt if fmt in FORMATS else None


def neutralise(text: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe: shown, not run."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _local(value: datetime.datetime) -> datetime.datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def csv_text(value: Any, kind: Kind) -> str:
    """One value as French Excel reads it: « 12,50 » for money, « 27/11/2026 » for dates."""
    if value is None or value == "":
        return ""
    if kind == "money":
        return f"{Decimal(value).scaleb(-2):.2f}".replace(".", ",")
    if kind == "int":
        return str(int(value))
    if kind == "datetime" and isinstance(value, datetime.datetime):
        return f"{_local(value):%d/%m/%Y %H:%M}"
    if kind == "date" and isinstance(value, datetime.datetime):
        return f"{_local(value):%d/%m/%Y}"
    if kind in ("date", "datetime") and isinstance(value, datetime.date):
        return f"{value:%d/%m/%Y}"
    return neutralise(str(value))


def _rows(rows: Iterable[Any]) -> Iterator[Any]:
    # A queryset is read by chunks through a server-side cursor (PostgreSQL), never whole.
    if isinstance(rows, QuerySet):
        return rows.iterator(chunk_size=CHUNK_SIZE)
    return iter(rows)


class _Echo:
    """A file-like object whose ``write`` hands the line back, for ``csv.writer`` streaming."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Any], columns: Sequence[Column]) -> Iterator[str]:
    """The BOM, the header line, then one line per row, produced as they are read.

    Headers and labels are translated now, in the request's language, not when the response
    is being sent.
    """
    writer = csv.writer(_Echo(), delimiter=";")
    header = writer.writerow([str(column.header) for column in columns])
    readers = [(column.reader(), column.kind) for column in columns]

    def lines() -> Iterator[str]:
        yield "\ufeff" + header
        batch: list[str] = []
        for row in _rows(rows):
            batch.append(writer.writerow([csv_text(read(row), kind) for read, kind in readers]))
            # A few hundred lines per chunk: fewer, larger writes to the socket.
            if len(batch) == 500:
                yield "".join(batch)
                batch = []
        if batch:
            yield "".join(batch)

    return lines()


def _xlsx_value(value: Any, kind: Kind) -> Any:
    if value is None:
        return None
    if kind == "money":
        return Decimal(value).scaleb(-2)
    if kind == "int":
        return int(value)
    if kind == "datetime" and isinstance(value, datetime.datetime):
        # Excel has no time zones: the wall-clock time in Paris, as the pages show it.
        return _local(value).replace(tzinfo=None)
    if kind == "date" and isinstance(value, datetime.datetime):
        return _local(value).date()
    if kind in ("date", "datetime"):
        return value
    # Control characters are not allowed in the XML of a sheet: openpyxl would refuse the cell.
    return neutralise(ILLEGAL_CHARACTERS_RE.sub("", str(value)))


def xlsx_write(handle: Any, rows: Iterable[Any], columns: Sequence[Column], title: str) -> None:
    """Write the workbook to ``handle`` (a binary file) row by row, in write-only mode.

    A sheet holds at most ``XLSX_MAX_ROWS`` rows (Excel's limit); further rows go on to
    « <title> (2) », « <title> (3) »…, each with the header again.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    formats = {"money": MONEY_FORMAT, "date": DATE_FORMAT, "datetime": DATETIME_FORMAT}
    readers = [(c.reader(), c.kind, formats.get(c.kind)) for c in columns]
    title = str(title)

    def new_sheet(number: int):
        suffix = f" ({number})" if number > 1 else ""
        sheet = workbook.create_sheet(title=title[: 31 - len(suffix)] + suffix)
        header = []
        for column in columns:
            cell = WriteOnlyCell(sheet, value=str(column.header))
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        return sheet

    sheets = 1
    sheet = new_sheet(sheets)
    written = 1
    for row in _rows(rows):
        if written == XLSX_MAX_ROWS:
            sheets += 1
            sheet = new_sheet(sheets)
            written = 1
        values = []
        for read, kind, number_format_ in readers:
            value = _xlsx_value(read(row), kind)
            if number_format_ and value is not None:
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = number_format_
                value = cell
            values.append(value)
        sheet.append(values)
        written += 1
    workbook.save(handle)


def export_filters(request: HttpRequest) -> dict[str, str]:
    """The query string without the page and format: what the audit log keeps of the filters."""
    return {key: value for key, value in request.GET.items() if key not in NOT_FILTERS and value}


def export_record(*, actor: Actor, list_name: str, fmt: str, filters: dict[str, str]) -> None:
    """Append the audit event saying who exported which list, in which format, filtered how."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="exports.list.exported",
            data={"list": list_name, "format": fmt, "filters": filters},
        )


def export_response(
    request: HttpRequest,
    *,
    rows: Iterable[Any],
    columns: Sequence[Column],
    filename: str,
    fmt: str,
    title: Any = "",
) -> StreamingHttpResponse | FileResponse:
    """The rows as a CSV or XLSX download named ``<filename>-<today>.<fmt>``, audited.

    ``rows`` is the page's queryset (or its rows), unsliced: every page is exported.
    """
    if fmt not in FORMATS:
        raise ValueError(fmt)
    export_record(
        actor=actor_from_request(request),
        list_name=filename,
        fmt=fmt,
        filters=export_filters(request),
    )
    name = f"{filename}-{timezone.localdate():%Y-%m-%d}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(rows, columns), content_type=CSV_CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    # Deleted by the OS once FileResponse closes it; only this process ever sees the file.
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    try:
        xlsx_write(handle, rows, columns, title or filename)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return FileResponse(handle, as_attachment=True, filename=name, content_type=XLSX_CONTENT_TYPE)
