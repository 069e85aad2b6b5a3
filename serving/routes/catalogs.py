"""Catalogues: the owner's channels, contents and offers, saved by name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

from serving.routes.deps import OWNER_ERRORS, OwnerId, ServiceDep, errors
from serving.schemas import INT32_MAX, CatalogCreate, CatalogPublic

router = APIRouter()
CatalogPath = Annotated[int, PathParam(ge=1, le=INT32_MAX, description="The catalogue's id.")]


@router.post(
    "/catalogs",
    status_code=201,
    response_model=CatalogPublic,
    tags=["catalogs"],
    responses=errors(*OWNER_ERRORS, 409),
)
def create(body: CatalogCreate, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    """Save a catalogue; campaigns on an audience reference it with ``catalog_id``."""
    return svc.create_catalog(oid, body)


@router.get(
    "/catalogs", response_model=list[CatalogPublic], tags=["catalogs"], responses=errors(*OWNER_ERRORS)
)
def list_(oid: OwnerId, svc: ServiceDep) -> list[dict[str, Any]]:
    return svc.list_catalogs(oid)


@router.get(
    "/catalogs/{cid}",
    response_model=CatalogPublic,
    tags=["catalogs"],
    responses=errors(*OWNER_ERRORS, 404),
)
def get(cid: CatalogPath, oid: OwnerId, svc: ServiceDep) -> dict[str, Any]:
    return svc.get_catalog(oid, cid)
