"""The audience part of :class:`serving.service.Service`: owners' audiences, owner-scoped."""

from __future__ import annotations

import json
import math
from typing import Any

from serving.audience_lists import (
    add_opt_outs,
    delete_filter,
    list_filters,
    list_opt_outs,
    save_filter,
    segments,
)
from serving.audience_store import append_rows, import_bytes, list_audiences
from serving.audiences import audience_summary, load_audience
from serving.errors import InvalidError
from serving.store import Store


class AudiencesMixin(Store):
    """Import, read, filter and opt out the customers of an owner's audiences."""

    def import_audience(
        self,
        owner_id: int,
        data: bytes,
        fmt: str,
        name: str,
        id_column: str | None = None,
        schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Import a CSV or Parquet file as the owner's audience ``name`` (the same name again
        updates rows by id and adds new ones); one transaction, one of the server's expensive
        slots (503 when busy).

        Raises:
            serving.audiences.ImportRejectedError: row errors (nothing stored).
            InvalidError: an unreadable file, a schema that does not fit.
        """
        with self._heavy_work():
            return import_bytes(
                self.engine,
                owner_id,
                data,
                fmt,
                name,
                id_column,
                schema,
                max_rows=self.settings.audience_max_rows,
            )

    def add_audience_rows(
        self, owner_id: int, audience_id: int, rows: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Add or update (by id) customers of an audience from JSON rows (checked like a file)."""
        with self._heavy_work():
            return append_rows(self.engine, owner_id, audience_id, rows)

    def list_audiences(self, owner_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return list_audiences(conn, owner_id)

    def get_audience(self, owner_id: int, audience_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return audience_summary(conn, owner_id, audience_id)

    def add_audience_opt_outs(
        self, owner_id: int, audience_id: int, channel: str, customer_ids: list[str]
    ) -> dict[str, Any]:
        return add_opt_outs(self.engine, owner_id, audience_id, channel, customer_ids)

    def audience_opt_outs(
        self, owner_id: int, audience_id: int, channel: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return list_opt_outs(conn, owner_id, audience_id, channel, offset, limit)

    def save_audience_filter(
        self, owner_id: int, audience_id: int, name: str, expression: str
    ) -> dict[str, Any]:
        with self._heavy_work():
            return save_filter(
                self.engine, owner_id, audience_id, name, expression, self.settings.audience_max_filters
            )

    def audience_filters(self, owner_id: int, audience_id: int) -> list[dict[str, Any]]:
        with self._heavy_work(), self.engine.connect() as conn:
            return list_filters(conn, owner_id, audience_id)

    def delete_audience_filter(self, owner_id: int, audience_id: int, name: str) -> None:
        delete_filter(self.engine, owner_id, audience_id, name)

    def audience_segments(self, owner_id: int, audience_id: int, column: str) -> dict[str, Any]:
        with self._heavy_work(), self.engine.connect() as conn:
            return segments(conn, owner_id, audience_id, column)

    def audience_members(
        self, owner_id: int, audience_id: int, filter: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """One page of the customers a filter keeps (all without one), in import order."""
        with self._heavy_work(), self.engine.connect() as conn:
            total = int(audience_summary(conn, owner_id, audience_id)["rows"])
            try:
                data = load_audience(conn, owner_id, audience_id, filter)
            except InvalidError as err:
                raise InvalidError(err.message, ["query", "filter"]) from None
        page = slice(offset, offset + limit)
        members = []
        for i in range(*page.indices(len(data.ids))):
            values: dict[str, str | float | None] = {}
            for c, kind in data.column_types.items():
                v = data.columns[c][i]
                if kind == "numeric":
                    values[c] = float(v) if math.isfinite(float(v)) else None
                else:
                    values[c] = str(v) or None
            contactable = {ch: bool(ok[i]) for ch, ok in data.consent.items()}
            members.append({"customer_id": str(data.ids[i]), "values": values, "contactable": contactable})
        return {"total": total, "matched": len(data.ids), "members": members}


def parse_schema_text(text: str | None) -> dict[str, Any] | None:
    """A declared schema given as JSON text (query parameter or header), or ``None``.

    Raises:
        InvalidError: not JSON, or not an object (field ``schema``).
    """
    if text is None or not text.strip():
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidError("schema is not valid JSON", ["query", "schema"]) from None
    if not isinstance(data, dict):
        raise InvalidError("schema must be a JSON object", ["query", "schema"])
    return data
