"""Reading an owner's customer file (CSV, Parquet or JSON rows), its schema and its row-by-row check.

Every value is read as text first (so ids such as ``00123`` keep their zeros), then the schema
decides: the id column (the owner's customer id: text, unique, not empty), feature columns
(``numeric`` or ``categorical``), per-channel consent and reachability columns (booleans:
``1``/``0``/``true``/``false``/``yes``/``no``, any case).

A schema is declared (``{"id_column": ..., "columns": {...}, "consent": {...}, "reachable": {...}}``)
or inferred: a column is ``numeric`` when every non-empty value parses as a finite number, else
``categorical``; a column named ``consent_<channel>`` or ``<channel>_consent`` is that channel's
consent, ``reachable_<channel>`` or ``<channel>_reachable`` its reachability. The checks run on whole
columns (pyarrow compute, numpy); their findings become a report of ``{row, column, message}``.

The rows are stored as one compact JSON object per customer (:func:`encode_rows`), built with
vectorized string operations, and read back with pyarrow's JSON reader.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from serving.errors import InvalidError

MAX_ID_CHARS = 200
"""Longest customer id."""
MAX_NAME_CHARS = 100
"""Longest column name."""
MAX_SHOWN_ERRORS = 100
"""Errors listed in a report (the total is counted apart)."""
TRUE_WORDS = ("1", "true", "yes", "y", "t")
FALSE_WORDS = ("0", "false", "no", "n", "f", "")
"""Boolean spellings (any case); an empty consent is no consent, an empty reachability reachable."""
ID_CANDIDATES = ("id", "customer_id", "customer", "customerid", "client_id", "user_id")
"""Column names taken as the id column when none is named (in this order, any case)."""
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""A usable column name: a filter expression can name it."""
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
_CONSENT = (re.compile(r"^consent_(\w+)$", re.I), re.compile(r"^(\w+)_consent$", re.I))
_REACHABLE = (re.compile(r"^reachable_(\w+)$", re.I), re.compile(r"^(\w+)_reachable$", re.I))
_TYPES = ("numeric", "categorical")


@dataclass
class Schema:
    """An audience's schema.

    Attributes:
        id_column: the column with the owner's customer ids.
        columns: feature column -> ``numeric`` or ``categorical``.
        consent: channel -> its consent column.
        reachable: channel -> its reachability column (a channel without one is reachable).
    """

    id_column: str
    columns: dict[str, str] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)
    reachable: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "columns": dict(self.columns),
            "consent": dict(self.consent),
            "reachable": dict(self.reachable),
        }

    @property
    def flags(self) -> list[str]:
        """The boolean columns (consent, then reachability), without repeats."""
        return list(dict.fromkeys([*self.consent.values(), *self.reachable.values()]))

    def stored_columns(self) -> list[str]:
        """Every column kept in a member's values (features, then flags)."""
        return [*self.columns, *self.flags]


def parse_schema(data: Any) -> Schema:
    """A declared schema from its JSON form (a dict).

    Raises:
        InvalidError: not the documented shape, naming the offending key (field ``schema``).
    """
    if not isinstance(data, dict):
        raise InvalidError("schema must be a JSON object", ["schema"])
    unknown = set(data) - {"id_column", "columns", "consent", "reachable"}
    if unknown:
        raise InvalidError(f"schema: unknown key {sorted(unknown)[0]!r}", ["schema"])
    idc = data.get("id_column")
    if idc is not None and (not isinstance(idc, str) or not idc):
        raise InvalidError("schema.id_column must be a column name", ["schema", "id_column"])
    out = Schema(id_column=idc or "")
    for key in ("columns", "consent", "reachable"):
        part = data.get(key, {})
        if not isinstance(part, dict) or not all(isinstance(v, str) for v in part.values()):
            raise InvalidError(f"schema.{key} must map names to strings", ["schema", key])
        if len(part) > 1000:
            raise InvalidError(f"schema.{key} has more than 1000 entries", ["schema", key])
        for name, value in part.items():
            if key == "columns" and value not in _TYPES:
                msg = f"schema.columns.{name}: type must be 'numeric' or 'categorical', not {value!r}"
                raise InvalidError(msg, ["schema", "columns", name])
            if key != "columns" and not CHANNEL_NAME.match(name):
                msg = f"schema.{key}: channel {name!r} must be lower-case letters, digits and _"
                raise InvalidError(msg, ["schema", key, name])
        setattr(out, key, dict(part))
    return out


def check_schema(schema: Schema, names: list[str]) -> None:
    """Check that a schema fits the file's columns.

    Raises:
        InvalidError: a column it names is not in the file, or is used twice.
    """
    have = set(names)
    if schema.id_column not in have:
        raise InvalidError(f"id column {schema.id_column!r} is not in the file", ["id_column"])
    for key, part in (
        ("columns", schema.columns),
        ("consent", schema.consent),
        ("reachable", schema.reachable),
    ):
        for name, col in part.items():
            col = name if key == "columns" else col
            if col not in have:
                raise InvalidError(f"schema.{key}: column {col!r} is not in the file", ["schema", key, name])
    features = set(schema.columns)
    if schema.id_column in features or features & set(schema.flags):
        clash = sorted((features & set(schema.flags)) | ({schema.id_column} & features))[0]
        raise InvalidError(f"schema: column {clash!r} has two roles", ["schema", "columns", clash])
    if schema.id_column in schema.flags:
        raise InvalidError(f"schema: the id column {schema.id_column!r} has two roles", ["schema"])


def read_table(data: bytes, fmt: str, max_rows: int) -> pa.Table:
    """The file's columns, every value as text (``""`` for missing), whitespace trimmed.

    Args:
        data: the file's bytes.
        fmt: ``csv`` or ``parquet``.
        max_rows: most rows accepted.

    Raises:
        InvalidError: not readable as that format, a column name that is not usable, more rows
            than ``max_rows`` (field ``body``).
    """
    if not data:
        raise InvalidError("the file is empty", ["body"])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError, ValueError) as err:
            raise InvalidError(f"not a readable Parquet file ({_short(err)})", ["body"]) from None
    else:
        table = _read_csv(data)
    if table.num_rows == 0:
        raise InvalidError("the file has a header but no rows", ["body"])
    if table.num_rows > max_rows:
        raise InvalidError(
            f"the file has {table.num_rows:,} rows, more than the {max_rows:,} allowed", ["body"]
        )
    return _as_text(table)


def _short(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def _read_csv(data: bytes) -> pa.Table:
    import pyarrow.csv as pcsv

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first = data[: data.find(b"\n") if b"\n" in data else len(data)]
    try:
        header = next(csv.reader([first.decode("utf-8").rstrip("\r")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        raise InvalidError("the CSV header is not readable UTF-8 text", ["body"]) from None
    check_names(header)
    try:
        return pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(block_size=1 << 24),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowException, ValueError, OSError) as err:
        raise InvalidError(f"not a readable CSV file ({_short(err)})", ["body"]) from None


def check_names(names: list[str]) -> None:
    """Check column names: present, unique, usable in filters.

    Raises:
        InvalidError: naming the column (field ``body``).
    """
    if not names or names == [""]:
        raise InvalidError("the file has no columns", ["body"])
    if len(names) > 1000:
        raise InvalidError(f"the file has {len(names)} columns, more than 1000", ["body"])
    seen: set[str] = set()
    for name in names:
        if not COLUMN_NAME.match(name) or len(name) > MAX_NAME_CHARS:
            raise InvalidError(
                f"column name {name[:MAX_NAME_CHARS]!r}: use letters, digits and _ "
                f"(not starting with a digit), "
                f"at most {MAX_NAME_CHARS} characters",
                ["body"],
            )
        if name.lower() in seen:
            raise InvalidError(f"column {name!r} appears twice", ["body"])
        seen.add(name.lower())


def _as_text(table: pa.Table) -> pa.Table:
    check_names(table.column_names)
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        if not pa.types.is_string(arr.type):
            if not (
                pa.types.is_integer(arr.type)
                or pa.types.is_floating(arr.type)
                or pa.types.is_boolean(arr.type)
                or pa.types.is_decimal(arr.type)
                or pa.types.is_temporal(arr.type)
            ):
                raise InvalidError(f"column {name!r} has type {arr.type}, not a plain value", ["body"])
            if pa.types.is_floating(arr.type):  # NaN is a missing value
                arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
            arr = pc.cast(arr, pa.string())
        arr = pc.utf8_trim_whitespace(pc.fill_null(arr, ""))
        cols.append(arr)
    return pa.table(cols, names=table.column_names)


def rows_table(rows: list[Any], names: list[str]) -> pa.Table:
    """JSON rows (``[{"id": ..., "recency": 3, ...}, ...]``) as a text table of ``names``.

    Raises:
        InvalidError: a row that is not an object, an unknown key, a nested value (field
            ``rows``, row index).
    """
    known = set(names)
    cols: dict[str, list[str]] = {n: [] for n in names}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidError("each row must be a JSON object", ["rows", i])
        extra = set(row) - known
        if extra:
            name = sorted(extra)[0]
            raise InvalidError(f"unknown column {name!r} (not in the audience's schema)", ["rows", i, name])
        for n in names:
            v = row.get(n)
            if v is None:
                text = ""
            elif isinstance(v, bool):
                text = "true" if v else "false"
            elif isinstance(v, int | float):
                text = repr(v) if isinstance(v, int) else _float_text(v, i, n)
            elif isinstance(v, str):
                text = v.strip()
            else:
                raise InvalidError(
                    f"row {i}, column {n!r}: a number, string, boolean or null", ["rows", i, n]
                )
            cols[n].append(text)
    return pa.table({n: pa.array(v, pa.string()) for n, v in cols.items()})


def _float_text(v: float, i: int, n: str) -> str:
    if v != v or v in (float("inf"), float("-inf")):
        raise InvalidError(f"row {i}, column {n!r}: not a finite number", ["rows", i, n])
    return repr(v)


def infer_schema(names: list[str], table: pa.Table, declared: Schema | None, id_column: str | None) -> Schema:
    """The schema of a file: ``declared`` completed, or inferred from names and values.

    Columns a declared schema leaves out are inferred too, so ``{"columns": {"zip": "categorical"}}``
    only pins that one column's type.

    Raises:
        InvalidError: no id column can be found or the named one is missing.
    """
    schema = Schema(id_column="") if declared is None else Schema(**declared.to_json())
    idc = id_column or schema.id_column
    if not idc:
        lower = {n.lower(): n for n in names}
        idc = next((lower[c] for c in ID_CANDIDATES if c in lower), "")
        if not idc:
            raise InvalidError(
                "no id column: name it (id_column) or call a column one of " + ", ".join(ID_CANDIDATES),
                ["id_column"],
            )
    schema.id_column = idc
    taken = {idc, *schema.columns, *schema.flags}
    for name in names:
        if name in taken:
            continue
        for role, patterns in (("consent", _CONSENT), ("reachable", _REACHABLE)):
            m = next((p.match(name) for p in patterns if p.match(name)), None)
            channel = m.group(1).lower() if m else ""
            part = schema.consent if role == "consent" else schema.reachable
            if m and CHANNEL_NAME.match(channel) and channel not in part:
                part[channel] = name
                taken.add(name)
                break
        else:
            col = table.column(name)
            present = pc.not_equal(col, "")
            numeric = pc.match_substring_regex(col, NUMBER)
            ok = pc.all(pc.or_(pc.invert(present), numeric)).as_py() is not False
            if ok:
                values = pc.cast(pc.if_else(numeric, col, pa.scalar(None, pa.string())), pa.float64())
                ok = pc.all(pc.is_finite(values)).as_py() is not False
            schema.columns[name] = "numeric" if ok else "categorical"
    check_schema(schema, names)
    return schema


class Report:
    """The row-by-row findings of one check: ``(row, column, message)`` for the first
    :data:`MAX_SHOWN_ERRORS`, and the total.

    Rows are numbered from 1 (the first data row; a CSV's header is not counted).
    """

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.total = 0

    def add_mask(self, bad: NDArray[np.bool_], column: str | None, message: str) -> None:
        """Record every row where ``bad`` (shape ``(n,)``) is true."""
        where = np.flatnonzero(bad)
        self.total += int(where.size)
        room = MAX_SHOWN_ERRORS - len(self.errors)
        for i in where[: max(room, 0)]:
            self.errors.append({"row": int(i) + 1, "column": column, "message": message})

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.total += 1
        if len(self.errors) < MAX_SHOWN_ERRORS:
            self.errors.append({"row": row, "column": column, "message": message})

    def sorted(self) -> list[dict[str, Any]]:
        return sorted(self.errors, key=lambda e: (e["row"] or 0, e["column"] or ""))


@dataclass
class Checked:
    """A file that passed the checks.

    Attributes:
        ids: shape ``(n,)`` customer ids, file order.
        values: shape ``(n,)`` JSON text of each row's values (:func:`encode_rows`).
        types: the per-column report (type, role, missing values, range or distinct values).
    """

    ids: pa.Array
    values: pa.Array
    types: dict[str, dict[str, Any]]


def _np_mask(arr: pa.Array | pa.ChunkedArray) -> NDArray[np.bool_]:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def validate(table: pa.Table, schema: Schema, report: Report) -> Checked:
    """Check every row against ``schema`` (findings into ``report``) and encode the values.

    Args:
        table: the text table (:func:`read_table` or :func:`rows_table`), ``n`` rows.
        schema: the schema (checked against the file's columns).
        report: where the findings go.

    Returns:
        The ids, the encoded values and the per-column type report (meaningful only when the
        report has no errors).
    """
    n = table.num_rows
    ids = table.column(schema.id_column).combine_chunks()
    idc = schema.id_column
    report.add_mask(_np_mask(pc.equal(ids, "")), idc, "the customer id is empty")
    report.add_mask(
        _np_mask(pc.match_substring_regex(ids, r"[\x00-\x1f\x7f]")), idc, "control characters are not allowed"
    )
    report.add_mask(
        _np_mask(pc.greater(pc.utf8_length(ids), MAX_ID_CHARS)), idc, f"longer than {MAX_ID_CHARS} characters"
    )
    if n and pc.count_distinct(ids).as_py() != n:
        order = np.asarray(pc.sort_indices(ids))
        sorted_ids = np.asarray(ids.take(pa.array(order)).to_numpy(zero_copy_only=False))
        dup = np.zeros(n, dtype=bool)
        dup[order[1:]] = sorted_ids[1:] == sorted_ids[:-1]
        report.add_mask(dup, idc, "duplicate customer id (it appears on an earlier row)")
    pieces: list[pa.Array] = []
    types: dict[str, dict[str, Any]] = {idc: {"type": "id", "role": "id", "missing": 0}}
    for name in schema.stored_columns():
        col = table.column(name).combine_chunks()
        bad_text = pc.match_substring_regex(col, r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
        report.add_mask(_np_mask(bad_text), name, "control characters are not allowed")
        empty = pc.equal(col, "")
        missing = int(pc.sum(empty).as_py() or 0)
        key = json.dumps(name) + ":"
        if name in schema.columns and schema.columns[name] == "numeric":
            numeric = pc.match_substring_regex(col, NUMBER)
            values = pc.cast(pc.if_else(numeric, col, pa.scalar(None, pa.string())), pa.float64())
            finite = pc.fill_null(pc.is_finite(values), False)
            bad = pc.and_(pc.invert(empty), pc.invert(finite))
            report.add_mask(_np_mask(bad), name, "not a finite number")
            text = pc.if_else(finite, pc.cast(values, pa.string()), pa.scalar(None, pa.string()))
            kept = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
            lo, hi = pc.min(kept).as_py(), pc.max(kept).as_py()
            info: dict[str, Any] = {"type": "numeric", "role": "feature", "missing": missing}
            info.update(min=lo, max=hi)
        elif name in schema.columns:
            text = pc.if_else(empty, pa.scalar(None, pa.string()), _json_string(col))
            info = {"type": "categorical", "role": "feature", "missing": missing}
            info["distinct"] = int(
                pc.count_distinct(pc.if_else(empty, pa.scalar(None, pa.string()), col)).as_py()
            )
        else:
            lower = pc.utf8_lower(col)
            yes, no = pc.is_in(lower, pa.array(TRUE_WORDS)), pc.is_in(lower, pa.array(FALSE_WORDS))
            report.add_mask(
                _np_mask(pc.invert(pc.or_(yes, no))), name, "not a boolean (1/0, true/false, yes/no)"
            )
            reach_only = name not in schema.consent.values()
            # An empty reachability is reachable (like a missing column); an empty consent is no consent.
            truth = pc.or_(yes, pc.and_(empty, pa.scalar(reach_only)))
            text = pc.if_else(truth, pa.scalar("true"), pa.scalar("false"))
            role = "consent" if not reach_only else "reachable"
            info = {
                "type": "boolean",
                "role": role,
                "missing": missing,
                "true": int(pc.sum(truth).as_py() or 0),
            }
        types[name] = info
        # '"name":value,' or '' for a missing value (no null_handling="skip": pyarrow 25 returns
        # an empty array for it when every value of a column is null).
        piece = pc.binary_join_element_wise(pa.scalar(key), text, pa.scalar(","), "")
        pieces.append(pc.fill_null(piece, ""))
    if pieces:
        # A value never ends with a comma (numbers, true/false, quoted strings): only the last
        # separator is trimmed.
        body = pc.utf8_rtrim(pc.binary_join_element_wise(*pieces, ""), characters=",")
        values = pc.binary_join_element_wise(pa.scalar("{"), body, pa.scalar("}"), "")
    else:
        values = pa.array(["{}"] * n, pa.string())
    if len(values) != n:
        raise AssertionError(f"encoded {len(values)} rows of {n}")
    return Checked(ids=ids, values=values, types=types)


def _json_string(col: pa.Array) -> pa.Array:
    """Each value as a JSON string literal (control characters other than tab, CR, LF are
    refused before)."""
    out = pc.replace_substring(col, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    for raw, esc in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        out = pc.replace_substring(out, raw, esc)
    return pc.binary_join_element_wise(pa.scalar('"'), out, pa.scalar('"'), "")


def decode_values(lines: pa.Array, schema: Schema) -> pa.Table:
    """The stored JSON values back as a typed table (float64, string, bool), ``n`` rows.

    Args:
        lines: shape ``(n,)`` JSON objects as text.
        schema: the audience's schema (the columns to read and their types).
    """
    import pyarrow.json as pjson

    fields = [
        pa.field(c, pa.float64() if t == "numeric" else pa.string()) for c, t in schema.columns.items()
    ] + [pa.field(c, pa.bool_()) for c in schema.flags]
    arrow_schema = pa.schema(fields)
    n = len(lines)
    if n == 0 or not fields:
        return pa.table({f.name: pa.array([], f.type) for f in fields}) if n == 0 else pa.table({})
    joined = pc.binary_join_element_wise(lines, pa.scalar("\n"), "")
    buf = joined.buffers()[2]
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1, offset=joined.offset * 4)
    data = buf.to_pybytes()[offsets[0] : offsets[-1]]
    table = pjson.read_json(
        io.BytesIO(data),
        read_options=pjson.ReadOptions(block_size=1 << 24),
        parse_options=pjson.ParseOptions(explicit_schema=arrow_schema, unexpected_field_behavior="ignore"),
    )
    return table.select([f.name for f in fields])
