"""Audiences: an owner's own customers, imported from CSV or Parquet, with opt-outs per channel,
saved filters (segments) and a preview of who a filter keeps.

Upload a file as the raw request body (no multipart)::

    curl -X POST "$API/audiences?name=spring&id_column=customer_id" \\
         -H "Authorization: Bearer $KEY" -H "Content-Type: text/csv" --data-binary @customers.csv

``Content-Type: application/vnd.apache.parquet`` (or ``application/octet-stream`` with
``format=parquet``) uploads Parquet. A declared schema goes as JSON in the ``schema`` query
parameter or the ``X-Audience-Schema`` header; without one it is inferred and returned in the
report. Uploading again under the same name updates the customers by id and adds the new ones
(opt-outs and saved filters are kept). Any row error rejects the whole file (422 listing the rows).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from serving.audience_schemas import (
    CHANNEL,
    FILTER_NAME,
    AudienceOut,
    FilterIn,
    FilterOut,
    ImportRejectedOut,
    ImportReport,
    MembersOut,
    OptOutsAdded,
    OptOutsIn,
    OptOutsOut,
    RowsIn,
    SegmentsOut,
)
from serving.audience_service import parse_schema_text
from serving.audiences import ImportRejectedError, TooLargeError
from serving.errors import InvalidError
from serving.routes.deps import Limit, Offset, OwnerId, ServiceDep, SettingsDep
from serving.schemas import INT32_MAX, ErrorOut

router = APIRouter(tags=["audiences"])

AudiencePath = Annotated[int, PathParam(ge=1, le=INT32_MAX, description="The audience's id.")]

_TEXT = {
    401: "no valid API key",
    404: "no such audience of this owner",
    409: "another request is importing an audience of that name at the same moment",
    413: "the upload is larger than the server accepts",
    422: "an invalid field (``detail[].loc`` names it); for row errors also ``errors`` and ``error_count``",
    429: "rate limit reached (see ``Retry-After``)",
    503: "busy with other expensive requests (see ``Retry-After``)",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ImportRejectedOut if c == 422 else ErrorOut, "description": _TEXT[c]} for c in codes}


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file: CSV (UTF-8, a header row) or Parquet.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_IMPORT_RESPONSES = {
    200: {"model": ImportReport, "description": "an existing audience updated"},
    **_errors(401, 409, 413, 422, 429, 503),
}
_CSV_TYPES = ("text/csv", "text/plain", "application/csv")
_PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")


def _rejected(err: ImportRejectedError) -> JSONResponse:
    """The 422 of an import with row errors: ``detail`` (one entry per shown error, ``loc``
    ``["body", row, column]``), ``errors``, ``error_count``, ``schema`` and ``types``."""
    report = err.report
    detail = [
        {
            "loc": ["body", *([e["row"]] if e["row"] else []), *([e["column"]] if e["column"] else [])],
            "msg": e["message"],
            "type": "value_error",
        }
        for e in report["errors"]
    ]
    return JSONResponse(
        {
            "detail": detail or [{"loc": ["body"], "msg": err.message, "type": "value_error"}],
            "errors": report["errors"],
            "error_count": report["error_count"],
            "schema": report.get("schema"),
            "types": report.get("types"),
        },
        422,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"the upload is larger than {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"the upload is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _format(content_type: str, fmt: str | None, data: bytes) -> str:
    if fmt:
        return fmt
    media = content_type.split(";")[0].strip().lower()
    if media in _PARQUET_TYPES:
        return "parquet"
    if media in _CSV_TYPES:
        return "csv"
    if media in ("application/octet-stream", ""):
        return "parquet" if data[:4] == b"PAR1" else "csv"
    raise InvalidError(
        f"Content-Type {media!r}: send text/csv or application/vnd.apache.parquet (or give format)",
        ["query", "format"],
    )


@router.post(
    "/audiences",
    response_model=ImportReport,
    status_code=201,
    responses=_IMPORT_RESPONSES,
    openapi_extra=_UPLOAD_BODY,
)
async def import_audience(
    request: Request,
    response: Response,
    oid: OwnerId,
    svc: ServiceDep,
    settings: SettingsDep,
    name: Annotated[str, Query(min_length=1, max_length=200, description="The audience's name.")],
    format: Annotated[
        Literal["csv", "parquet"] | None, Query(description="Overrides the Content-Type.")
    ] = None,
    id_column: Annotated[
        str | None,
        Query(
            min_length=1, max_length=100, description="The column of customer ids (default: id, customer_id)."
        ),
    ] = None,
    schema: Annotated[
        str | None, Query(max_length=100_000, description="A declared schema, as JSON.")
    ] = None,
    x_audience_schema: Annotated[str | None, Header(max_length=100_000)] = None,
) -> Any:
    """Import customers from the body (CSV or Parquet): 201 with the report for a new audience,
    200 when the name exists (customers updated by id, new ones added).

    Each row: the customer id (text, unique, not empty), feature columns (``numeric`` or
    ``categorical``), ``consent_<channel>`` / ``<channel>_consent`` and ``reachable_<channel>`` /
    ``<channel>_reachable`` columns (1/0, true/false, yes/no). A channel with no consent column
    may not be used; one with no reachability column is reachable. The report returns the schema
    as read (declared or inferred) and each column's type, missing values and range."""
    data = await _read_body(request, settings.audience_max_upload_bytes)
    declared = parse_schema_text(schema if schema is not None else x_audience_schema)
    fmt = _format(request.headers.get("content-type", ""), format, data)
    try:
        report = await run_in_threadpool(svc.import_audience, oid, data, fmt, name, id_column, declared)
    except ImportRejectedError as err:
        return _rejected(err)
    response.status_code = 201 if report["created"] else 200
    return report


@router.get("/audiences", response_model=list[AudienceOut], responses=_errors(401, 422, 429))
def list_audiences(oid: OwnerId, svc: ServiceDep) -> list[dict[str, Any]]:
    """The owner's audiences."""
    return svc.list_audiences(oid)


@router.get("/audiences/{aid}", response_model=AudienceOut, responses=_errors(401, 404, 422, 429))
def get_audience(aid: AudiencePath, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    """An audience: row count, schema, channels allowed and the last import's column report."""
    return svc.get_audience(oid, aid)


@router.post("/audiences/{aid}/rows", response_model=ImportReport, responses=_errors(401, 404, 422, 429, 503))
def add_rows(aid: AudiencePath, body: RowsIn, oid: OwnerId, svc: ServiceDep) -> Any:
    """Add customers, or update them by id, from JSON rows of the audience's columns; checked
    like a file (any error: 422 with the rows, nothing stored)."""
    try:
        return svc.add_audience_rows(oid, aid, body.rows)
    except ImportRejectedError as err:
        return _rejected(err)


@router.post("/audiences/{aid}/opt-outs", response_model=OptOutsAdded, responses=_errors(401, 404, 422, 429))
def add_opt_outs(aid: AudiencePath, body: OptOutsIn, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    """Customers who opted out of a channel: never contacted on it again (kept across
    re-imports, honoured by every campaign on this audience)."""
    return svc.add_audience_opt_outs(oid, aid, body.channel, body.customer_ids)


@router.get("/audiences/{aid}/opt-outs", response_model=OptOutsOut, responses=_errors(401, 404, 422, 429))
def opt_outs(
    aid: AudiencePath,
    oid: OwnerId,
    svc: ServiceDep,
    channel: Annotated[str | None, Query(pattern=CHANNEL)] = None,
    offset: Offset = 0,
    limit: Limit = 1000,
) -> dict[str, Any]:
    """The opt-out lists: each channel's size and a page of entries (by channel, then id)."""
    return svc.audience_opt_outs(oid, aid, channel, offset, limit)


@router.post("/audiences/{aid}/filters", response_model=FilterOut, responses=_errors(401, 404, 422, 429, 503))
def save_filter(aid: AudiencePath, body: FilterIn, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    """Save a filter (a segment) by name, e.g. ``recency <= 6 and channel == "Web"``,
    ``zip_code in ["Urban", "Rural"]``, ``not newbie``, ``history > 100 or mens == 1``.

    ``and``, ``or``, ``not``, parentheses, ``== != < <= > >=``, ``in`` / ``not in`` a list;
    numeric columns compare with numbers, categorical ones with strings; a missing value matches
    no comparison. A campaign names the filter (or gives an expression) to target its customers."""
    return svc.save_audience_filter(oid, aid, body.name, body.expression)


@router.get(
    "/audiences/{aid}/filters", response_model=list[FilterOut], responses=_errors(401, 404, 422, 429, 503)
)
def filters(aid: AudiencePath, oid: OwnerId, svc: ServiceDep) -> list[dict[str, Any]]:
    """The saved filters and how many customers each keeps now."""
    return svc.audience_filters(oid, aid)


@router.delete("/audiences/{aid}/filters/{name}", status_code=204, responses=_errors(401, 404, 422, 429))
def delete_filter(
    aid: AudiencePath,
    name: Annotated[str, PathParam(pattern=FILTER_NAME)],
    oid: OwnerId,
    svc: ServiceDep,
) -> Response:
    """Delete a saved filter."""
    svc.delete_audience_filter(oid, aid, name)
    return Response(status_code=204)


@router.get(
    "/audiences/{aid}/segments/{column}",
    response_model=SegmentsOut,
    responses=_errors(401, 404, 422, 429, 503),
)
def segments(
    aid: AudiencePath,
    column: Annotated[str, PathParam(max_length=100)],
    oid: OwnerId,
    svc: ServiceDep,
) -> dict[str, Any]:
    """A categorical column as segment labels: each value and its number of customers."""
    return svc.audience_segments(oid, aid, column)


@router.get("/audiences/{aid}/members", response_model=MembersOut, responses=_errors(401, 404, 422, 429, 503))
def members(
    aid: AudiencePath,
    oid: OwnerId,
    svc: ServiceDep,
    filter: Annotated[
        str | None, Query(max_length=4000, description="A saved filter's name or an expression.")
    ] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """A page of the customers a filter keeps (all without one), in import order, with whether
    each may be contacted per channel."""
    return svc.audience_members(oid, aid, filter, offset, limit)
