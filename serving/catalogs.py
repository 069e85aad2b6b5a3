"""Owners' arm catalogues, saved by name for campaigns to reference (``catalog_id``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from agent.catalogue import Catalogue
from serving.errors import ConflictError, InvalidError, NotFoundError
from serving.models import CatalogRow, utcnow
from serving.schemas import CatalogCreate
from serving.store import Store, aware, session


def _public(r: CatalogRow) -> dict[str, Any]:
    body = json.loads(r.body_json)
    return {
        "id": r.id,
        "name": r.name,
        "catalog": body,
        "arms": list(Catalogue.model_validate(body).arm_table().names),
        "created_at": aware(r.created_at),
    }


class CatalogsMixin(Store):
    """Create, list and read an owner's catalogues."""

    def create_catalog(self, owner_id: int, body: CatalogCreate) -> dict[str, Any]:
        """Save a catalogue (validated by the schema); a name is unique per owner (409)."""
        doc = Catalogue.model_validate(body.catalog.model_dump()).model_dump(mode="json")
        try:
            with self.engine.begin() as conn:
                cid = conn.execute(
                    insert(CatalogRow)
                    .values(owner_id=owner_id, name=body.name, body_json=json.dumps(doc), created_at=utcnow())
                    .returning(CatalogRow.id)
                ).scalar_one()
        except IntegrityError:
            raise ConflictError(f"a catalogue named {body.name!r} exists; choose another name") from None
        return self.get_catalog(owner_id, cid)

    def _catalog_row(self, conn: Connection, owner_id: int, cid: int) -> CatalogRow:
        row = (
            session(conn)
            .scalars(select(CatalogRow).where(CatalogRow.id == cid, CatalogRow.owner_id == owner_id))
            .first()
        )
        if row is None:
            raise NotFoundError(f"no catalogue {cid}")
        return row

    def get_catalog(self, owner_id: int, cid: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return _public(self._catalog_row(conn, owner_id, cid))

    def list_catalogs(self, owner_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = session(conn).scalars(
                select(CatalogRow).where(CatalogRow.owner_id == owner_id).order_by(CatalogRow.id)
            )
            return [_public(r) for r in rows]

    def _stored_catalog(self, conn: Connection, owner_id: int, cid: int) -> Catalogue:
        """A saved catalogue for a new campaign (a 422 on ``catalog_id`` when it is not the owner's)."""
        row = (
            session(conn)
            .scalars(select(CatalogRow).where(CatalogRow.id == cid, CatalogRow.owner_id == owner_id))
            .first()
        )
        if row is None:
            raise InvalidError(f"no catalogue {cid} of this owner", ["catalog_id"])
        return Catalogue.model_validate(json.loads(row.body_json))
