"""API keys and owners: a key is shown once when created; only its hash is stored."""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from sqlalchemy import insert, select, update

from serving.errors import InvalidError, NotFoundError
from serving.models import ApiKey, Owner, utcnow
from serving.store import Store

logger = logging.getLogger(__name__)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeysMixin(Store):
    """Creating, checking, listing and revoking API keys."""

    def create_key(self, owner: str) -> str:
        """A new API key for ``owner`` (created when new); only its hash is stored."""
        owner = owner.strip()
        if not owner or len(owner) > 200:
            raise InvalidError("owner name must be 1 to 200 characters", ["owner"])
        key = "co_" + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            oid = conn.execute(select(Owner.id).where(Owner.name == owner)).scalar()
            if oid is None:
                oid = conn.execute(
                    insert(Owner).values(name=owner, created_at=utcnow()).returning(Owner.id)
                ).scalar_one()
            conn.execute(
                insert(ApiKey).values(
                    owner_id=oid, key_hash=hash_key(key), prefix=key[:10], created_at=utcnow()
                )
            )
        logger.info("key created owner_id=%s prefix=%s", oid, key[:10])
        return key

    def authenticate(self, key: str) -> int | None:
        """The owner id of an API key that is not revoked, or ``None``.

        One indexed lookup per request and no cache, so a key revoked by any process (``campaign-opt
        keys revoke``) stops working on every server at once."""
        with self.engine.connect() as conn:
            owner = conn.execute(
                select(ApiKey.owner_id).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            ).scalar()
        return None if owner is None else int(owner)

    def list_keys(self) -> list[dict[str, Any]]:
        """Every key: its id, owner, prefix (the key's first characters), creation and revocation."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ApiKey.id, Owner.name, ApiKey.prefix, ApiKey.created_at, ApiKey.revoked_at)
                .join(Owner, Owner.id == ApiKey.owner_id)
                .order_by(ApiKey.id)
            ).all()
        return [
            {"id": i, "owner": o, "prefix": p, "created_at": c, "revoked_at": rv} for i, o, p, c, rv in rows
        ]

    def revoke_key(self, key_id: int) -> None:
        """Revoke a key by its id (``list_keys``); it stops working at once on every server.

        Raises:
            NotFoundError: no such key, or it is already revoked.
        """
        with self.engine.begin() as conn:
            res = conn.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        if res.rowcount != 1:
            raise NotFoundError(f"no active key with id {key_id}")
        logger.info("key revoked key_id=%s", key_id)
