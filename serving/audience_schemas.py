"""The audience API's request and response schemas (see :mod:`serving.routes.audiences`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from serving.audience_filters import MAX_EXPRESSION_CHARS
from serving.schemas import ApiModel, FieldError

FILTER_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
"""A saved filter's name: letters, digits, ``_ . -``."""
CHANNEL = r"^[a-z][a-z0-9_]{0,49}$"
"""A channel's name as consent columns give it (``email`` of ``consent_email``)."""
MAX_JSON_ROWS = 10_000
"""Most rows one ``POST /audiences/{id}/rows`` may carry."""
MAX_OPT_OUT_IDS = 100_000
"""Most customer ids one ``POST /audiences/{id}/opt-outs`` may carry."""

CustomerIdText = Annotated[str, Field(min_length=1, max_length=200)]
Value = Annotated[str, Field(max_length=10_000)] | bool | int | float | None


class RowsIn(ApiModel):
    """Customers to add, or to update by id: each row an object of the audience's columns (the
    id column is required; a column left out is a missing value, a consent left out is no
    consent)."""

    rows: Annotated[
        list[Annotated[dict[Annotated[str, Field(max_length=100)], Value], Field(max_length=1000)]],
        Field(min_length=1, max_length=MAX_JSON_ROWS),
    ]


class OptOutsIn(ApiModel):
    """Customers who opted out of a channel (ids not in the audience yet are kept too)."""

    channel: Annotated[str, Field(pattern=CHANNEL)]
    customer_ids: Annotated[list[CustomerIdText], Field(min_length=1, max_length=MAX_OPT_OUT_IDS)]


class FilterIn(ApiModel):
    """A saved filter (a segment): a name and an expression over the audience's columns, e.g.
    ``recency <= 6 and channel == "Web"``; saving a name again replaces its expression."""

    name: Annotated[str, Field(pattern=FILTER_NAME)]
    expression: Annotated[str, Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)]


class SchemaOut(BaseModel):
    """An audience's schema: the id column, feature columns and their types, and per channel
    the consent and reachability columns (a channel without a consent column may not be used;
    one without a reachability column is reachable)."""

    id_column: str
    columns: dict[str, Literal["numeric", "categorical"]]
    consent: dict[str, str]
    reachable: dict[str, str]


class ColumnReport(BaseModel):
    """What was read in one column: its type and role, missing values, and the range of a
    numeric column, distinct values of a categorical one, true values of a boolean one."""

    type: Literal["id", "numeric", "categorical", "boolean"]
    role: Literal["id", "feature", "consent", "reachable"]
    missing: int
    min: float | None = None
    max: float | None = None
    distinct: int | None = None
    true: int | None = None


class AudienceOut(BaseModel):
    """An audience: its size, schema, channels allowed and the last import's column report."""

    id: int
    name: str
    rows: int
    schema_: SchemaOut = Field(alias="schema")
    channels: list[str]
    types: dict[str, ColumnReport]
    created_at: datetime
    updated_at: datetime


class RowError(BaseModel):
    """One finding of an import: the data row (from 1; a CSV's header is not counted), the
    column and why."""

    row: int | None
    column: str | None
    message: str


class ImportReport(BaseModel):
    """An import's report: what was stored, the schema as read (``inferred`` lists the columns
    whose role or type was inferred) and the per-column report."""

    audience: AudienceOut
    created: bool
    """The audience is new (else an existing one was updated)."""
    rows_in_file: int
    inserted: int
    updated: int
    schema_: SchemaOut = Field(alias="schema")
    inferred: list[str]
    types: dict[str, ColumnReport]
    errors: list[RowError]
    error_count: int


class ImportRejectedOut(BaseModel):
    """A 422: the invalid fields (``detail``); for rows that fail their checks also ``errors``
    (the first 100, by row) and ``error_count``, with the schema as read. Nothing was stored."""

    detail: list[FieldError]
    errors: list[RowError] = []
    error_count: int = 0
    schema_: SchemaOut | None = Field(default=None, alias="schema")
    types: dict[str, ColumnReport] | None = None


class OptOutsAdded(BaseModel):
    """Opt-outs recorded: newly listed, and the channel's list size now."""

    channel: str
    added: int
    total: int


class OptOut(BaseModel):
    channel: str
    customer_id: str
    created_at: datetime


class OptOutsOut(BaseModel):
    """Opt-out lists: each channel's size, and one page of entries."""

    counts: dict[str, int]
    opt_outs: list[OptOut]


class FilterOut(BaseModel):
    """A saved filter and how many customers it keeps now (``error`` when the audience's
    columns no longer fit it)."""

    name: str
    expression: str
    matches: int | None
    error: str | None = None


class SegmentLabel(BaseModel):
    label: str
    customers: int


class SegmentsOut(BaseModel):
    """A categorical column's values as segment labels, largest first (at most 1,000)."""

    column: str
    labels: list[SegmentLabel]
    distinct: int


class Member(BaseModel):
    """One customer: the owner's id, its feature values (``null`` when missing) and per channel
    whether it may be contacted (consent, reachable and not opted out)."""

    customer_id: str
    values: dict[str, str | float | None]
    contactable: dict[str, bool]


class MembersOut(BaseModel):
    """A page of an audience's customers in import order: ``total`` customers, ``matched`` by the
    filter."""

    total: int
    matched: int
    members: list[Member]
