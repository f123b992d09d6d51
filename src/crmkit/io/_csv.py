"""The CSV importer and exporter behind :mod:`crmkit.io`.

Import runs in passes over the parsed rows, so that every lookup against the store is a
bulk query: (1) read the header and decide what each column feeds, (2) parse every cell
by the kind of its field, (3) give each row its id, (4) resolve references given by
another field (one ``in`` query per referenced type, chunked), (5) build the records,
(6) find duplicate and already-stored ids (one query), (7) write the good records in one
``add_many``/``put_many`` inside a transaction.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import attrs

from crmkit._schema import plural, record_type_named, schema_of
from crmkit._time import zone_named
from crmkit.errors import BatchError, CrmError, ValidationError
from crmkit.io import _values as v
from crmkit.records import (
    Account,
    Contact,
    Lead,
    Opportunity,
    Rep,
    Team,
    Territory,
    TerritoryModel,
)
from crmkit.registry import record_types

if TYPE_CHECKING:
    from crmkit.dedupe import DuplicatePair, DuplicatePolicy

Source = str | os.PathLike[str] | IO[str]

_CHUNK = 500
_NOT_IMPORTED = frozenset({"version", "custom"})
_MAX_LISTED = 20

#: which record type a reference field points to (``parent_id`` points to its own type)
REF_TARGETS: dict[str, type[Any] | None] = {
    "parent_id": None,
    "account_id": Account,
    "converted_account_id": Account,
    "owner_id": Rep,
    "actor_id": Rep,
    "manager_id": Rep,
    "changed_by": Rep,
    "from_owner_id": Rep,
    "to_owner_id": Rep,
    "contact_id": Contact,
    "converted_contact_id": Contact,
    "lead_id": Lead,
    "opportunity_id": Opportunity,
    "converted_opportunity_id": Opportunity,
    "team_id": Team,
    "team_ids": Team,
    "territory_id": Territory,
    "model_id": TerritoryModel,
}


@attrs.frozen
class RowError:
    """One problem with one cell (or row) of the file.

    ``row`` counts records the way a spreadsheet does: the header is row 1, so the first
    data row is row 2. ``column`` is the header of the cell (``None`` for the whole row).
    """

    row: int
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        if self.value is not None:
            where += f" = {self.value!r}"
        return f"{where}: {self.reason}"


@attrs.frozen
class DuplicateRow:
    """A row whose record an ``alert`` duplicate rule found duplicates of (stored, or an
    earlier row of the file); it was imported all the same."""

    row: int
    record_id: str
    matches: tuple[DuplicatePair, ...]

    def __str__(self) -> str:
        from crmkit.dedupe import DuplicateCheck

        check = DuplicateCheck(record_id=self.record_id, action="alert", matches=self.matches)
        return f"row {self.row}: {self.record_id!r} {check.describe()}"


@attrs.frozen
class ImportReport:
    """What :func:`import_csv` did: rows read, written and skipped, every error, the
    columns it ignored, the ids it wrote, and the rows an ``alert`` duplicate rule
    reported. ``rows_read == written + skipped``."""

    record_type: str
    rows_read: int
    written: int
    skipped: int
    errors: tuple[RowError, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    dry_run: bool = False
    duplicates: tuple[DuplicateRow, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no row had an error."""
        return not self.errors

    @property
    def bad_rows(self) -> tuple[int, ...]:
        """The row numbers that had at least one error, in order."""
        return tuple(sorted({e.row for e in self.errors}))

    def raise_for_errors(self) -> None:
        """Raise :class:`ImportFailed` if any row had an error."""
        if self.errors:
            raise ImportFailed(self)

    def __str__(self) -> str:
        verb = "would be written (dry run)" if self.dry_run else "written"
        lines = [
            f"{self.record_type} import: {self.rows_read} row(s) read, "
            f"{self.written} {verb}, {self.skipped} skipped"
        ]
        if self.ignored_columns:
            lines.append("ignored columns: " + ", ".join(self.ignored_columns))
        if self.duplicates:
            lines.append(f"{len(self.duplicates)} row(s) with duplicates (imported):")
            lines.extend(f"  {d}" for d in self.duplicates[:_MAX_LISTED])
            if len(self.duplicates) > _MAX_LISTED:
                lines.append(f"  ... and {len(self.duplicates) - _MAX_LISTED} more")
        if self.errors:
            lines.append(f"{len(self.errors)} error(s) in {len(self.bad_rows)} row(s):")
            lines.extend(f"  {e}" for e in self.errors[:_MAX_LISTED])
            if len(self.errors) > _MAX_LISTED:
                lines.append(f"  ... and {len(self.errors) - _MAX_LISTED} more")
        return "\n".join(lines)


class ImportFailed(ValidationError):
    """A CSV import had bad rows; ``report`` lists every error.

    :func:`~crmkit.io.import_csv` raises it having written nothing;
    :meth:`ImportReport.raise_for_errors` raises it after a ``skip_bad_rows`` import.
    """

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        lines = [f"  {e}" for e in report.errors[:_MAX_LISTED]]
        if len(report.errors) > _MAX_LISTED:
            lines.append(f"  ... and {len(report.errors) - _MAX_LISTED} more")
        counts = f"{len(report.errors)} error(s) in {len(report.bad_rows)} row(s) of the CSV"
        if report.written:
            outcome = f"those rows were skipped, {report.written} written"
        else:
            outcome = "nothing written (pass skip_bad_rows=True to write the good rows)"
        reason = f"{counts}, {outcome}:\n" + "\n".join(lines)
        super().__init__(report.record_type, None, None, reason)


# -- what each column feeds --------------------------------------------------------------


@attrs.frozen
class _Target:
    """A field a column feeds: a record field, or a custom field ``custom.<key>``."""

    name: str  # field name, or the custom key
    custom: bool
    parse: v.Parser

    @property
    def label(self) -> str:
        return f"custom.{self.name}" if self.custom else self.name


@attrs.frozen
class _Ref:
    """A reference field given by another field of the target type."""

    field: str
    target: type[Any]
    by: str  # field name or custom.<key>
    parse: v.Parser
    many: bool


def _resolve_type(record_type: type[Any] | str) -> type[Any]:
    if isinstance(record_type, str):
        try:
            return record_type_named(record_type)
        except CrmError as err:
            raise ValidationError("import", "record_type", record_type, str(err)) from None
    if record_type not in record_types():
        raise ValidationError(
            "import",
            "record_type",
            record_type,
            "is not a crmkit record type; pass a class such as crmkit.Account or 'accounts'",
        )
    return record_type


def _importable(record_type: type[Any]) -> dict[str, Any]:
    return {
        info.name: info for info in schema_of(record_type).fields if info.name not in _NOT_IMPORTED
    }


_NULLABLE: dict[type[Any], frozenset[str]] = {}


def _nullable(record_type: type[Any]) -> frozenset[str]:
    """Fields where a blank cell means ``None``: those whose validator accepts it, and the
    required ones (so that the validator reports them)."""
    cached = _NULLABLE.get(record_type)
    if cached is not None:
        return cached

    class Probe:
        id = None

    Probe.__name__ = record_type.__name__
    names = set()
    for a in attrs.fields(record_type):
        if a.default is attrs.NOTHING:
            names.add(a.name)
            continue
        value = a.converter(None) if callable(a.converter) else None
        try:
            if a.validator is not None:
                a.validator(Probe(), a, value)
        except ValidationError:
            continue
        names.add(a.name)
    result = frozenset(names)
    _NULLABLE[record_type] = result
    return result


def _custom_key(record_type: type[Any], label: str) -> tuple[str, str]:
    """``custom.tier`` -> ``("tier", "str")``; ``custom.nps:int`` -> ``("nps", "int")``."""
    rest = label.removeprefix("custom.")
    key, _, type_name = rest.partition(":")
    if not key.isidentifier():
        raise ValidationError(
            record_type.__name__,
            "custom",
            label,
            "custom field names are written 'custom.<identifier>', e.g. 'custom.tier'",
        )
    if type_name and type_name not in v.CUSTOM_TYPES:
        raise ValidationError(
            record_type.__name__,
            "custom",
            label,
            f"unknown custom type {type_name!r}; use one of {', '.join(v.CUSTOM_TYPES)}",
        )
    return key, type_name


def _custom_type_name(record_type: type[Any], key: str, given: Any) -> str:
    for name, tp in v.CUSTOM_TYPES.items():
        if given is tp or given == name:
            return name
    raise ValidationError(
        record_type.__name__,
        f"custom.{key}",
        given,
        "custom_types values must be str, int, float, bool or 'json'",
    )


@attrs.frozen
class _Options:
    record_type: type[Any]
    zone: ZoneInfo
    fmts: tuple[str | None, str | None]
    custom_types: Mapping[str, str]


def _target_for(options: _Options, label: str) -> _Target:
    record_type = options.record_type
    if label.startswith("custom."):
        key, type_name = _custom_key(record_type, label)
        type_name = type_name or options.custom_types.get(key, "str")
        return _Target(name=key, custom=True, parse=v.custom_parser(type_name))
    fields = _importable(record_type)
    info = fields.get(label)
    if info is None:
        why = (
            "is set by the store, not imported"
            if label == "version"
            else f"is not a field of {record_type.__name__}; fields: {', '.join(fields)}; "
            "custom fields are written 'custom.<key>'"
        )
        raise ValidationError(record_type.__name__, label, label, why)
    parse = v.field_parser(info.kind, info.enum, options.zone, options.fmts)
    return _Target(name=label, custom=False, parse=parse)


_NO_REF: Any = object()


def _ref_target(record_type: type[Any], field: str) -> Any:
    """The type ``field`` refers to (``None``: its own type; ``_NO_REF``: not a reference):
    a field made with ``crmkit.fields.reference(Target)`` names it, else
    :data:`REF_TARGETS` by the field's name."""
    declared = attrs.fields_dict(record_type).get(field)
    target = None if declared is None else declared.metadata.get("references")
    if target is not None:
        return None if target == record_type.__name__ else record_type_named(target)
    return REF_TARGETS.get(field, _NO_REF)


def _ref_for(options: _Options, field: str, by: str) -> _Ref:
    record_type = options.record_type
    fields = _importable(record_type)
    if field not in fields or _ref_target(record_type, field) is _NO_REF:
        refs = ", ".join(f for f in fields if _ref_target(record_type, f) is not _NO_REF)
        raise ValidationError(
            record_type.__name__,
            field,
            by,
            f"refs keys must be reference fields of {record_type.__name__}: {refs or 'none'}",
        )
    target = _ref_target(record_type, field) or record_type
    many = fields[field].kind == "tags"
    if by.startswith("custom."):
        key, _ = _custom_key(target, by)
        return _Ref(field, target, f"custom.{key}", v.parse_text, many)
    info = _importable(target).get(by) if by != "id" else schema_of(target).field("id")
    if info is None or info.kind not in ("text", "int"):
        usable = [name for name, i in _importable(target).items() if i.kind in ("text", "int")]
        raise ValidationError(
            record_type.__name__,
            field,
            by,
            f"refs look {target.__name__} records up by a text or whole-number field: "
            f"{', '.join(usable)} or custom.<key>",
        )
    parse = v.field_parser(info.kind, None, options.zone, options.fmts)
    return _Ref(field, target, by, parse, many)


# -- reading -------------------------------------------------------------------------------


@contextmanager
def _open_source(source: Source, encoding: str) -> Iterator[IO[str]]:
    if isinstance(source, (str, os.PathLike)):
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            encoding = "utf-8-sig"  # a byte-order mark at the start is not part of the header
        try:
            handle = open(source, encoding=encoding, newline="")  # noqa: SIM115
        except OSError as err:
            raise ValidationError(
                "import", "source", os.fspath(source), f"cannot be opened: {err.strerror}"
            ) from err
        with handle:
            yield handle
    elif hasattr(source, "read"):
        yield source
    else:
        raise ValidationError(
            "import",
            "source",
            source,
            "must be a path or a text file object opened with newline=''",
        )


@attrs.define
class _Row:
    number: int
    cells: dict[str, str]  # target label -> stripped cell text (mapped columns only)
    kwargs: dict[str, Any] = attrs.Factory(dict)
    custom: dict[str, Any] = attrs.Factory(dict)
    lookups: dict[str, Any] = attrs.Factory(dict)  # ref field -> parsed lookup value(s)
    id: str | None = None
    record: Any = None
    depends_on: set[int] = attrs.Factory(set)
    bad_cells: bool = False


def import_csv(
    store: Any,
    record_type: type[Any] | str,
    source: Source,
    *,
    mapping: Mapping[str, str | None] | None = None,
    refs: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    skip_bad_rows: bool = False,
    delimiter: str = ",",
    encoding: str = "utf-8",
    id_column: str | None = None,
    tz: str = "UTC",
    date_format: str | None = None,
    datetime_format: str | None = None,
    custom_types: Mapping[str, Any] | None = None,
    upsert: bool = False,
    dry_run: bool = False,
    duplicates: DuplicatePolicy | None = None,
) -> ImportReport:
    """Read records of ``record_type`` from a CSV into ``store``.

    ``record_type`` is a record class or its plural name (``"accounts"``); ``source`` a
    path or a text file object (open it with ``newline=""``).

    - ``mapping`` maps a column header to a field (``"custom.<key>"`` for a custom field,
      ``None`` to ignore the column). Columns named like a field (case-insensitive) or
      ``custom.<key>`` feed it without a mapping; other columns are ignored and listed in
      the report.
    - ``refs`` gives reference fields by another field of the record they point to, e.g.
      ``{"parent_id": "name"}``: looked up in the store and, for references to the type
      being imported, in the file itself. Missing or ambiguous names are row errors.
    - ``defaults`` fills blank cells and missing columns (values are used as given).
    - ``id_column`` is a shortcut for ``mapping={column: "id"}``. Without an id column,
      ids are ``<type>-<16 hex digits>`` from a SHA-1 of the row's mapped cells, so a
      second import of the same file finds the same ids and reports them.
    - ``tz`` is the zone of datetimes written without an offset; ``date_format`` and
      ``datetime_format`` are :meth:`~datetime.datetime.strptime` formats used instead
      of ISO 8601.
    - ``custom_types`` maps a custom key to ``int``, ``float``, ``bool``, ``str`` or
      ``"json"``; custom values are text unless said otherwise.
    - ``upsert=True`` replaces stored records with the same id instead of reporting them.
    - ``dry_run=True`` checks everything and writes nothing.
    - ``duplicates`` is a duplicate rule (:class:`~crmkit.dedupe.DuplicatePolicy`): each
      record is compared with the stored ones and the file's earlier rows. ``block`` makes
      a row with duplicates a bad row (its error names the fields that agreed and the
      duplicate's id); ``alert`` imports it and lists it in ``report.duplicates``;
      ``allow``, or no policy (the default), checks nothing.

    With any bad row and ``skip_bad_rows=False`` nothing is written and
    :class:`ImportFailed` (a :class:`~crmkit.errors.ValidationError`) is raised; its
    ``report`` lists every error. With ``skip_bad_rows=True`` the good rows are written
    in one transaction and the report lists the bad ones.

    Examples
    --------
    >>> import io
    >>> from crmkit.store import MemoryStore
    >>> store = MemoryStore()
    >>> import_csv(store, "reps", io.StringIO("id,name\\nr-1,Ada\\n")).ids
    ('r-1',)
    >>> import_csv(store, "reps", io.StringIO("id,name\\nr-1,Ada\\n"))
    Traceback (most recent call last):
    ...
    crmkit.io._csv.ImportFailed: Rep: 1 error(s) in 1 row(s) of the CSV, nothing written ...
      row 2, column 'id' = 'r-1': Rep 'r-1' is already in the store; ...
    """
    rtype = _resolve_type(record_type)
    name = rtype.__name__
    zone = zone_named(tz)
    if zone is None:
        raise ValidationError(
            name, "tz", tz, "is not a known IANA time zone such as 'Europe/Paris'"
        )
    for option, fmt in (("date_format", date_format), ("datetime_format", datetime_format)):
        if fmt is not None and not isinstance(fmt, str):
            raise ValidationError(
                name, option, fmt, "must be a strptime format such as '%d/%m/%Y'"
            )
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise ValidationError(
            name, "encoding", encoding, "is not a text encoding Python knows, such as 'utf-8'"
        ) from None
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValidationError(name, "delimiter", delimiter, "must be a single character")
    options = _Options(
        record_type=rtype,
        zone=zone,
        fmts=(date_format, datetime_format),
        custom_types={k: _custom_type_name(rtype, k, t) for k, t in (custom_types or {}).items()},
    )
    explicit: dict[str, str | None] = dict(mapping or {})
    if id_column is not None:
        explicit[id_column] = "id"
    targets_by_label = {
        label: _target_for(options, label) for label in explicit.values() if label is not None
    }
    ref_specs = {field: _ref_for(options, field, by) for field, by in (refs or {}).items()}
    default_values: dict[str, Any] = {}
    for label, value in (defaults or {}).items():
        default_values[_target_for(options, label).label] = value

    with _open_source(source, encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            first = next(reader, None)
            if first is None:
                _fail_header(
                    name,
                    [
                        RowError(
                            1,
                            None,
                            None,
                            "the file is empty; row 1 must be a header naming the columns",
                        )
                    ],
                )
            header = [h.strip() for h in first]
            if header:
                header[0] = header[0].removeprefix("\ufeff").strip()
            columns, ignored = _plan_columns(options, header, explicit, targets_by_label)
            _check_plan(options, header, explicit, columns, default_values)
            rows, errors = _read_rows(reader, header, columns)
        except csv.Error as err:
            _fail_header(name, [RowError(reader.line_num, None, None, f"is not valid CSV: {err}")])
        except UnicodeDecodeError as err:
            _fail_header(
                name,
                [
                    RowError(
                        reader.line_num + 1,
                        None,
                        None,
                        f"is not valid {encoding} text "
                        f"({err.reason}); pass the file's encoding, e.g. encoding='cp1252'",
                    )
                ],
            )

    nullable = _nullable(rtype)
    for row in rows:
        errors.extend(_parse_row(row, columns, ref_specs, default_values, nullable))
    _assign_ids(rtype, rows)
    errors.extend(_resolve_refs(store, rtype, rows, ref_specs, columns))
    errors.extend(_build(rtype, rows, columns))
    errors.extend(_check_ids(store, rtype, rows, columns, upsert))
    found: list[DuplicateRow] = []
    if duplicates is not None:
        blocked, found = _check_duplicates(store, rtype, rows, errors, columns, duplicates)
        errors.extend(blocked)
    errors.extend(_cascade(rows, errors, ref_specs, columns))
    errors.sort(key=lambda e: e.row)

    bad = {e.row for e in errors}
    good = [r.record for r in rows if r.number not in bad]
    if errors and not skip_bad_rows:
        raise ImportFailed(
            ImportReport(
                record_type=name,
                rows_read=len(rows),
                written=0,
                skipped=len(rows),
                errors=tuple(errors),
                ignored_columns=tuple(ignored),
                dry_run=dry_run,
            )
        )
    ids = tuple(r.id for r in good)
    if good and not dry_run:
        repo = store.repository(rtype)
        numbers = [r.number for r in rows if r.number not in bad]
        try:
            with store.transaction():
                stored = repo.put_many(good) if upsert else repo.add_many(good)
        except BatchError as err:  # a concurrent writer added one of our ids meanwhile
            late = tuple(
                RowError(numbers[index], None, getattr(good[index], "id", None), str(cause))
                for index, cause in err.errors
            )
            raise ImportFailed(
                ImportReport(
                    record_type=name,
                    rows_read=len(rows),
                    written=0,
                    skipped=len(rows),
                    errors=late,
                    ignored_columns=tuple(ignored),
                )
            ) from err
        ids = tuple(r.id for r in stored)
    return ImportReport(
        record_type=name,
        rows_read=len(rows),
        written=len(good),
        skipped=len(rows) - len(good),
        errors=tuple(errors),
        ignored_columns=tuple(ignored),
        ids=ids,
        dry_run=dry_run,
        duplicates=tuple(d for d in found if d.row not in bad),
    )


def _fail_header(name: str, errors: list[RowError]) -> NoReturn:
    raise ImportFailed(
        ImportReport(record_type=name, rows_read=0, written=0, skipped=0, errors=tuple(errors))
    )


def _plan_columns(
    options: _Options,
    header: list[str],
    explicit: Mapping[str, str | None],
    targets_by_label: Mapping[str, _Target],
) -> tuple[dict[int, tuple[str, _Target]], list[str]]:
    """Column index -> (header, target) for the columns that feed a field; ignored headers."""
    fields = _importable(options.record_type)
    lower = {f.lower(): f for f in fields}
    chosen = {t.label for t in targets_by_label.values()}  # explicit mapping wins
    columns: dict[int, tuple[str, _Target]] = {}
    ignored: list[str] = []
    for index, col in enumerate(header):
        target: _Target | None = None
        if col in explicit:
            label = explicit[col]
            target = None if label is None else targets_by_label[label]
        elif col in fields or col.lower() in lower:
            target = _target_for(options, col if col in fields else lower[col.lower()])
        elif (
            col.startswith("custom.")
            and col.partition(":")[0].removeprefix("custom.").isidentifier()
        ):
            target = _target_for(options, col)
        if target is None or (col not in explicit and target.label in chosen):
            ignored.append(col)
        else:
            columns[index] = (col, target)
    return columns, ignored


def _check_plan(
    options: _Options,
    header: list[str],
    explicit: Mapping[str, str | None],
    columns: Mapping[int, tuple[str, _Target]],
    defaults: Mapping[str, Any],
) -> None:
    name = options.record_type.__name__
    problems: list[RowError] = []
    counts = Counter(header)
    for col in explicit:
        if col not in counts:
            problems.append(
                RowError(
                    1,
                    col,
                    None,
                    f"the mapping names this column but the header has only: {', '.join(header)}",
                )
            )
        elif counts[col] > 1:
            problems.append(RowError(1, col, None, "appears more than once in the header"))
    fed: dict[str, list[str]] = defaultdict(list)
    for col, target in columns.values():
        fed[target.label].append(col)
    for label, cols in fed.items():
        if len(cols) > 1:
            problems.append(
                RowError(
                    1,
                    cols[1],
                    None,
                    f"feeds {label!r} like column {cols[0]!r}; map one "
                    "of them elsewhere or to None",
                )
            )
    for info in schema_of(options.record_type).fields:
        if info.required and info.name not in ("id", *fed, *defaults):
            problems.append(
                RowError(
                    1,
                    None,
                    None,
                    f"no column feeds the required field "
                    f"{info.name!r}; map one with mapping={{'<column>': "
                    f"{info.name!r}}} or give defaults={{{info.name!r}: ...}}",
                )
            )
    if problems:
        _fail_header(name, problems)


def _read_rows(
    reader: Iterable[list[str]], header: list[str], columns: Mapping[int, tuple[str, _Target]]
) -> tuple[list[_Row], list[RowError]]:
    rows: list[_Row] = []
    errors: list[RowError] = []
    width = len(header)
    number = 1
    for cells in reader:
        number += 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            errors.append(
                RowError(number, None, None, f"has {len(cells)} cells but the header has {width}")
            )
        mapped = {
            target.label: cells[index].strip()
            for index, (_, target) in columns.items()
            if index < len(cells)
        }
        rows.append(_Row(number=number, cells=mapped))
    return rows, errors


def _parse_row(
    row: _Row,
    columns: Mapping[int, tuple[str, _Target]],
    refs: Mapping[str, _Ref],
    defaults: Mapping[str, Any],
    blank_is_none: frozenset[str],
) -> list[RowError]:
    errors: list[RowError] = []
    for col, target in columns.values():
        text = row.cells.get(target.label, "")
        if not text:
            if target.label in defaults:
                continue  # filled below
            if not target.custom and target.name in blank_is_none:
                row.kwargs[target.name] = None
            continue
        ref = None if target.custom else refs.get(target.name)
        try:
            if ref is not None:
                if ref.many:
                    row.lookups[ref.field] = [ref.parse(t) for t in v.parse_tags(text)]
                else:
                    row.lookups[ref.field] = ref.parse(text)
            elif target.custom:
                row.custom[target.name] = target.parse(text)
            else:
                row.kwargs[target.name] = target.parse(text)
        except v.CellError as err:
            errors.append(RowError(row.number, col, text, err.reason))
            row.bad_cells = True
    for label, value in defaults.items():
        if row.cells.get(label):
            continue
        if label.startswith("custom."):
            row.custom[label.removeprefix("custom.")] = value
        else:
            row.kwargs[label] = value
    return errors


def _assign_ids(record_type: type[Any], rows: list[_Row]) -> None:
    """Ids from the ``id`` column, or ``<type>-<16 hex digits of sha1>`` of the row's
    mapped cells (and how often that same content came before in the file)."""
    seen: Counter[str] = Counter()
    prefix = record_type.__name__.lower()
    for row in rows:
        given = row.cells.get("id")
        if "id" in row.kwargs or given:
            row.id = row.kwargs.get("id")
            continue
        content = json.dumps(
            [record_type.__name__, sorted((k, t) for k, t in row.cells.items() if t)],
            ensure_ascii=False,
        )
        occurrence = seen[content]
        seen[content] += 1
        digest = hashlib.sha1(f"{content}#{occurrence}".encode(), usedforsecurity=False)
        row.id = f"{prefix}-{digest.hexdigest()[:16]}"
        row.kwargs["id"] = row.id


def _column_of(columns: Mapping[int, tuple[str, _Target]], label: str) -> str | None:
    for col, target in columns.values():
        if target.label == label:
            return col
    return None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lookup_key(record: Any, by: str) -> Any:
    if by.startswith("custom."):
        value = record.custom.get(by.removeprefix("custom."))
        return None if value is None else str(value)
    return getattr(record, by)


def _resolve_refs(
    store: Any,
    record_type: type[Any],
    rows: list[_Row],
    refs: Mapping[str, _Ref],
    columns: Mapping[int, tuple[str, _Target]],
) -> list[RowError]:
    errors: list[RowError] = []
    file_ids = {r.id for r in rows if r.id is not None}
    for ref in refs.values():
        col = _column_of(columns, ref.field)
        if col is None:
            continue
        wanted: set[Any] = set()
        for row in rows:
            value = row.lookups.get(ref.field)
            if value is not None:
                wanted.update(value if ref.many else [value])
        if not wanted:
            continue
        found: dict[Any, dict[str, int | None]] = defaultdict(dict)  # value -> id -> file row
        repo = store.repository(ref.target)
        values = sorted(wanted, key=str)
        for chunk in _chunks(values):
            for record in repo.query({"field": ref.by, "op": "in", "value": list(chunk)}):
                if ref.target is record_type and record.id in file_ids:
                    continue  # the file replaces (or duplicates) it; its row is what counts
                found[_lookup_key(record, ref.by)][record.id] = None
        if ref.target is record_type:
            for row in rows:
                key = _row_lookup_value(row, ref.by)
                if key is not None and row.id is not None and key in wanted:
                    found[key].setdefault(row.id, row.number)
        what = f"{ref.target.__name__} with {ref.by}"
        for row in rows:
            value = row.lookups.get(ref.field)
            if value is None:
                continue
            resolved: list[str] = []
            for item in value if ref.many else [value]:
                candidates = found.get(item, {})
                if len(candidates) == 1:
                    ((target_id, number),) = candidates.items()
                    resolved.append(target_id)
                    if number is not None and number != row.number:
                        row.depends_on.add(number)
                elif not candidates:
                    errors.append(
                        RowError(
                            row.number,
                            col,
                            str(item),
                            f"no {what} {item!r} in the store or in this file",
                        )
                    )
                else:
                    listed = ", ".join(
                        f"{i!r}" + (f" (row {n})" if n is not None else "")
                        for i, n in sorted(candidates.items())[:5]
                    )
                    errors.append(
                        RowError(
                            row.number,
                            col,
                            str(item),
                            f"is ambiguous: {len(candidates)} "
                            f"{plural(ref.target)} have {ref.by} {item!r}: {listed}",
                        )
                    )
            row.kwargs[ref.field] = resolved if ref.many else (resolved[0] if resolved else None)
    return errors


def _row_lookup_value(row: _Row, by: str) -> Any:
    if by.startswith("custom."):
        value = row.custom.get(by.removeprefix("custom."))
        return None if value is None else str(value)
    if by == "id":
        return row.id
    return row.kwargs.get(by)


def _build(
    record_type: type[Any], rows: list[_Row], columns: Mapping[int, tuple[str, _Target]]
) -> list[RowError]:
    errors: list[RowError] = []
    by_label = {target.label: col for col, target in columns.values()}
    for row in rows:
        if row.bad_cells:
            continue  # already reported; a record needs every cell
        try:
            row.record = record_type(**row.kwargs, custom=row.custom)
        except TypeError as err:  # pragma: no cover - every field is given or defaulted
            errors.append(RowError(row.number, None, None, str(err)))
        except ValidationError as err:
            label = err.field
            if label == "custom" and isinstance(err.value, str) and err.value in row.custom:
                label = f"custom.{err.value}"
            col = by_label.get(label) if label is not None else None
            value = row.cells.get(label) if label is not None else None
            errors.append(RowError(row.number, col, value or None, _reason(err)))
    return errors


def _reason(err: ValidationError) -> str:
    if err.field is None:
        return str(err)
    return f"{err.field} {err.reason}"


def _check_ids(
    store: Any,
    record_type: type[Any],
    rows: list[_Row],
    columns: Mapping[int, tuple[str, _Target]],
    upsert: bool,
) -> list[RowError]:
    errors: list[RowError] = []
    first: dict[str, int] = {}
    col = _column_of(columns, "id")
    for row in rows:
        if row.id is None:
            continue
        if row.id in first:
            errors.append(
                RowError(
                    row.number,
                    col,
                    row.id,
                    f"id is already used by row {first[row.id]} of this file",
                )
            )
        else:
            first[row.id] = row.number
    if upsert or not first:
        return errors
    repo = store.repository(record_type)
    ids = sorted(first)
    stored: set[str] = set()
    for chunk in _chunks(ids):
        column = repo.columns(["id"], {"field": "id", "op": "in", "value": list(chunk)})["id"]
        stored.update(str(i) for i in column.tolist())
    for record_id in sorted(stored, key=first.__getitem__):
        errors.append(
            RowError(
                first[record_id],
                col,
                record_id,
                f"{record_type.__name__} {record_id!r} "
                "is already in the store; pass upsert=True to replace it",
            )
        )
    return errors


def _check_duplicates(
    store: Any,
    record_type: type[Any],
    rows: list[_Row],
    errors: list[RowError],
    columns: Mapping[int, tuple[str, _Target]],
    policy: DuplicatePolicy,
) -> tuple[list[RowError], list[DuplicateRow]]:
    """The good rows under a duplicate rule, in file order (each against the store and
    the rows before it): the rows it blocks as errors, and the rows it alerts on."""
    from crmkit.dedupe import DuplicateAction, DuplicatePolicy

    if not isinstance(policy, DuplicatePolicy):
        raise ValidationError(
            record_type.__name__, "duplicates", policy, "must be a crmkit.dedupe.DuplicatePolicy"
        )
    if policy.action is DuplicateAction.ALLOW:
        return [], []
    bad = {e.row for e in errors}
    good = [row for row in rows if row.number not in bad and row.record is not None]
    index = policy.index(store.repository(record_type), record_type.__name__)
    blocked: list[RowError] = []
    found: list[DuplicateRow] = []
    for row, verdict in zip(good, policy.check_many(index, [r.record for r in good]), strict=True):
        if not verdict.matches:
            continue
        if verdict.allowed:
            found.append(DuplicateRow(row.number, verdict.record_id, verdict.matches))
            continue
        agreed = [f.field for f in verdict.matches[0].fields if f.passed]
        col = _column_of(columns, agreed[0]) if len(agreed) == 1 else None
        value = row.cells.get(agreed[0]) if col is not None else None
        blocked.append(
            RowError(
                row.number,
                col,
                value,
                f"{record_type.__name__} {verdict.record_id!r} {verdict.describe()}; "
                "the duplicate rule blocks it",
            )
        )
    return blocked, found


def _cascade(
    rows: list[_Row],
    errors: list[RowError],
    refs: Mapping[str, _Ref],
    columns: Mapping[int, tuple[str, _Target]],
) -> list[RowError]:
    """Rows that refer to a bad row of the same file are bad too (to a fixpoint)."""
    bad = {e.row for e in errors}
    extra: list[RowError] = []
    changed = True
    while changed:
        changed = False
        for row in rows:
            if row.number in bad or not row.depends_on & bad:
                continue
            bad.add(row.number)
            changed = True
            others = ", ".join(str(n) for n in sorted(row.depends_on & bad))
            fields = [f for f in refs if row.lookups.get(f) is not None]
            col = _column_of(columns, fields[0]) if len(fields) == 1 else None
            extra.append(
                RowError(
                    row.number, col, None, f"refers to row {others} of this file, which has errors"
                )
            )
    return extra


# -- export -------------------------------------------------------------------------------


def export_csv(
    store_or_records: Any,
    record_type: type[Any] | str,
    dest: Source,
    *,
    fields: Sequence[str] | None = None,
    criteria: Any = None,
    mapping: Mapping[str, str] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> int:
    """Write records to a CSV that :func:`import_csv` reads back to equal records.

    ``store_or_records`` is a store (records in id order) or an iterable of records.
    ``fields`` picks and orders the columns (default: every field in schema order except
    ``version``, then one ``custom.<key>`` column per custom key in sorted order);
    ``criteria`` filters; ``mapping`` renames columns (field -> header). A custom column
    whose values are all numbers or all flags gets a type suffix (``custom.nps:int``) so
    the import gives the same types back. Returns the number of rows written.

    Examples
    --------
    >>> import io
    >>> from crmkit import Account
    >>> out = io.StringIO()
    >>> export_csv([Account(id="a", name="A", custom={"nps": 9})], "accounts", out,
    ...            fields=["id", "custom.nps"])
    1
    >>> out.getvalue()
    'id,custom.nps:int\\r\\na,9\\r\\n'
    """
    from crmkit.store._base import bound

    rtype = _resolve_type(record_type)
    name = rtype.__name__
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValidationError(name, "delimiter", delimiter, "must be a single character")
    if hasattr(store_or_records, "repository"):
        records = store_or_records.repository(rtype).query(criteria)
    else:
        records = list(store_or_records)
        for record in records:
            if not isinstance(record, rtype):
                raise ValidationError(
                    name,
                    None,
                    record,
                    f"export_csv was given a {type(record).__name__}, not a {name}",
                )
        if criteria is not None:
            records = bound(criteria, rtype).filter(records)
    kinds = {info.name: info.kind for info in schema_of(rtype).fields}
    keys = sorted({k for r in records for k in r.custom})
    if fields is None:
        chosen = [f for f in kinds if f not in _NOT_IMPORTED] + [f"custom.{k}" for k in keys]
    else:
        chosen = list(fields)
        for label in chosen:
            if label.startswith("custom."):
                _custom_key(rtype, label)
            elif label not in kinds or label == "custom":
                raise ValidationError(
                    name,
                    label,
                    label,
                    f"is not a field of {name}; fields: {', '.join(kinds)} or custom.<key>",
                )
    renames = dict(mapping or {})
    for label in renames:
        if label not in chosen:
            raise ValidationError(
                name,
                label,
                renames[label],
                "the export mapping renames a field that is not exported",
            )
    getters: list[Callable[[Any], str]] = []
    header: list[str] = []
    for label in chosen:
        if label.startswith("custom."):
            key = label.removeprefix("custom.").partition(":")[0]
            type_name = v.custom_type_of([r.custom.get(key) for r in records])
            header.append(
                renames.get(
                    label, f"custom.{key}" + ("" if type_name == "str" else f":{type_name}")
                )
            )
            getters.append(_custom_getter(key, type_name))
        else:
            header.append(renames.get(label, label))
            getters.append(_field_getter(rtype, label, kinds[label]))
    table = [[get(r) for get in getters] for r in records]  # fail before touching dest
    with _open_dest(dest, encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)  # RFC 4180: CRLF, "\r" gets quoted
        writer.writerow(header)
        writer.writerows(table)
    return len(records)


def _custom_getter(key: str, type_name: str) -> Callable[[Any], str]:
    return lambda r: v.format_custom(type_name, r.custom.get(key))


def _field_getter(record_type: type[Any], name: str, kind: str) -> Callable[[Any], str]:
    def get(record: Any) -> str:
        value = getattr(record, name)
        if kind == "tags" and any(v.TAG_SEPARATOR in item for item in value):
            raise ValidationError(
                record_type.__name__,
                name,
                value,
                f"a tag containing {v.TAG_SEPARATOR!r} cannot be written to CSV",
                record_id=record.id,
            )
        return v.format_value(kind, value)

    return get


@contextmanager
def _open_dest(dest: Source, encoding: str) -> Iterator[IO[str]]:
    if isinstance(dest, (str, os.PathLike)):
        try:
            handle = open(dest, "w", encoding=encoding, newline="")  # noqa: SIM115
        except OSError as err:
            raise ValidationError(
                "export", "dest", os.fspath(dest), f"cannot be written: {err.strerror}"
            ) from err
        with handle:
            yield handle
    elif hasattr(dest, "write"):
        yield dest
    else:
        raise ValidationError("export", "dest", dest, "must be a path or a text file object")
