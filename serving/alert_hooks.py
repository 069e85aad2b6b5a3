"""Signed alert webhooks: a campaign's alerts POSTed to the owner's endpoint, each delivered once.

A campaign may configure ``alert_webhook: {"url": ..., "secret_ref": ...}``. Its URL passes the
same allow-list check as a webhook channel's and its secret is resolved by reference the same way
(:func:`resolve_alert_webhook` calls :class:`serving.channels.ChannelsMixin`'s own methods).
:func:`deliver_alerts` then POSTs every alert not yet delivered:

- the body is JSON (:func:`alert_payload`), signed like the webhook channel's batches:
  ``X-Signature: sha256=<hex>``, HMAC-SHA256 of the raw body under the secret;
- ``Idempotency-Key: alert-<campaign id>-<alert id>``: a receiver that keeps the keys it has seen
  processes each alert once, whatever is repeated;
- each attempt is claimed first, with one conditional UPDATE that increments
  ``delivery_attempts`` only if no one else has counted that attempt and the alert is still
  undelivered; after a 2xx answer one conditional UPDATE (``WHERE id = ? AND delivered_at IS
  NULL``) marks it delivered. Two deliverers (threads, processes, servers) therefore never
  count one attempt twice and never mark an alert twice; within one process a second concurrent
  call for the same campaign returns at once instead of racing the first. Across processes a
  receiver may see an alert twice in a narrow race (one deliverer's POST in flight while another
  claims the next attempt): the idempotency key is what makes that harmless. A deliverer that
  dies between its claim and its POST costs the alert one attempt (and, on the last one, the
  audit line);
- one attempt per alert per call: the caller's cadence (e.g. every runner pass) is the retry
  backoff. A 4xx or 5xx answer or a connection failure counts as an attempt; after a connection
  failure or timeout the rest of the call is skipped (the receiver is down; the other alerts keep
  their attempts). After ``max_attempts`` the alert is given up: it stays listed by ``GET
  /campaigns/{id}/alerts``, and the campaign's audit log and the server log say so.

Receiver failures never raise; they are logged as ``key=value`` lines (never the receiver's
answer body, which is the receiver's business). Alerts stay listed by ``GET /campaigns/{id}/alerts``
whether delivered or not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from serving.errors import InvalidError
from serving.models import AlertRow, AuditRow, utcnow
from serving.store import aware

if TYPE_CHECKING:
    from serving.channels import ChannelsMixin

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
"""Per request (connect: 2 s): a slow receiver must not hold up the runner."""

_busy: set[tuple[int, int]] = set()
"""(engine id, campaign id) pairs a call in this process is delivering right now."""
_busy_lock = threading.Lock()


def resolve_alert_webhook(service: ChannelsMixin, url: str, secret_ref: str) -> str:
    """The signing secret of a campaign's alert webhook, after checking its URL, both exactly as
    for a webhook channel (:meth:`serving.channels.ChannelsMixin.check_webhook_url` and the
    ``CAMPAIGN_OPT_WEBHOOK_SECRET_<REF>`` reference). Call it at creation and again before each
    delivery (a host may resolve elsewhere by now).

    Raises:
        InvalidError: the URL is not allowed or no such secret is configured (the field named is
            under ``alert_webhook``).
    """
    try:
        service.check_webhook_url(url)
        return service._webhook_secret(secret_ref)
    except InvalidError as err:
        field: list[str | int] = ["alert_webhook", *(err.field or [])[1:]]
        raise InvalidError(err.message, field) from None


def idempotency_key(campaign_id: int, alert_id: int) -> str:
    """``alert-<campaign id>-<alert id>``: the same for every attempt at one alert."""
    return f"alert-{campaign_id}-{alert_id}"


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the raw body, as :meth:`agent.channels.WebhookChannel.sign`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alert_payload(campaign_id: int, alert: AlertRow) -> dict[str, Any]:
    """The JSON body POSTed for one alert (JSON-ready: a value that is not finite is ``None``).

    Example body::

        {"type": "campaign.alert", "idempotency_key": "alert-7-42", "campaign_id": 7,
         "alert_id": 42, "kind": "budget", "iteration": 3, "value": 0.5,
         "message": "50% of the budget is spent", "at": "2026-12-03T15:20:00+00:00"}
    """
    value = float(alert.value)
    return {
        "type": "campaign.alert",
        "idempotency_key": idempotency_key(campaign_id, alert.id),
        "campaign_id": campaign_id,
        "alert_id": alert.id,
        "kind": alert.kind,
        "iteration": alert.iteration,
        "value": value if math.isfinite(value) else None,
        "message": alert.message,
        "at": aware(alert.at).isoformat(),
    }


def deliver_alerts(
    engine: Engine,
    campaign_id: int,
    url: str,
    secret: str,
    *,
    transport: Any | None = None,
    max_attempts: int = 5,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """POST the campaign's undelivered alerts to ``url``, signed; one attempt each (see the module).

    Args:
        engine: the service's database.
        campaign_id: whose alerts.
        url: the receiver, already checked (:func:`resolve_alert_webhook`).
        secret: the HMAC-SHA256 signing secret.
        transport: an ``httpx`` transport (tests); ``None``: the network.
        max_attempts: attempts per alert before it is given up (at least 1).
        now: the clock for ``delivered_at``.

    Returns:
        How many alerts this call delivered (0 when another call in this process is delivering
        this campaign's alerts right now).

    Raises:
        ValueError: an empty secret or ``max_attempts`` below 1 (configuration, not the receiver).
    """
    if not secret:
        raise ValueError("alert webhook secret must not be empty: receivers verify the signature with it")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    key = (id(engine), campaign_id)
    with _busy_lock:
        if key in _busy:
            return 0
        _busy.add(key)
    try:
        return _deliver(engine, campaign_id, url, secret, transport, max_attempts, now)
    finally:
        with _busy_lock:
            _busy.discard(key)


def _deliver(
    engine: Engine,
    campaign_id: int,
    url: str,
    secret: str,
    transport: Any | None,
    max_attempts: int,
    now: Callable[[], datetime],
) -> int:
    import httpx

    with Session(engine, expire_on_commit=False) as s:
        pending = list(
            s.scalars(
                select(AlertRow)
                .where(
                    AlertRow.campaign_id == campaign_id,
                    AlertRow.delivered_at.is_(None),
                    AlertRow.delivery_attempts < max_attempts,
                )
                .order_by(AlertRow.id)
            )
        )
    if not pending:
        return 0
    delivered = 0
    timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=min(2.0, TIMEOUT_SECONDS))
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        for alert in pending:
            attempt = alert.delivery_attempts + 1
            if not _claim(engine, alert.id, alert.delivery_attempts, max_attempts):
                continue  # another deliverer counted this attempt, or delivered it
            body = json.dumps(alert_payload(campaign_id, alert), separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Signature": sign(secret, body),
                "Idempotency-Key": idempotency_key(campaign_id, alert.id),
            }
            try:
                status = client.post(url, content=body, headers=headers).status_code
            except (httpx.HTTPError, httpx.InvalidURL) as err:
                _failed(engine, campaign_id, alert, attempt, max_attempts, f"error={type(err).__name__}", now)
                break  # the receiver is down: the other alerts keep their attempts
            if 200 <= status < 300:
                delivered += _mark_delivered(engine, alert.id, now())
                logger.info(
                    "alert delivered campaign_id=%s alert_id=%s kind=%s attempt=%s status=%s",
                    campaign_id,
                    alert.id,
                    alert.kind,
                    attempt,
                    status,
                )
            else:
                _failed(engine, campaign_id, alert, attempt, max_attempts, f"status={status}", now)
    return delivered


def _claim(engine: Engine, alert_id: int, seen: int, max_attempts: int) -> bool:
    """Count one attempt at an alert, unless someone else already counted it or delivered it."""
    with engine.begin() as conn:
        res = conn.execute(
            update(AlertRow)
            .where(
                AlertRow.id == alert_id,
                AlertRow.delivered_at.is_(None),
                AlertRow.delivery_attempts == seen,
                AlertRow.delivery_attempts < max_attempts,
            )
            .values(delivery_attempts=AlertRow.delivery_attempts + 1)
        )
        return res.rowcount == 1


def _mark_delivered(engine: Engine, alert_id: int, at: datetime) -> int:
    """1 if this call marked the alert delivered, 0 if it already was."""
    with engine.begin() as conn:
        res = conn.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id, AlertRow.delivered_at.is_(None))
            .values(delivered_at=at)
        )
        return int(res.rowcount)


def _failed(
    engine: Engine,
    campaign_id: int,
    alert: AlertRow,
    attempt: int,
    max_attempts: int,
    outcome: str,
    now: Callable[[], datetime],
) -> None:
    """Log a failed attempt; on the last one, give the alert up (log and audit log)."""
    logger.warning(
        "alert delivery failed campaign_id=%s alert_id=%s kind=%s attempt=%s max_attempts=%s %s",
        campaign_id,
        alert.id,
        alert.kind,
        attempt,
        max_attempts,
        outcome,
    )
    if attempt < max_attempts:
        return
    logger.warning(
        "alert delivery given up campaign_id=%s alert_id=%s kind=%s attempts=%s",
        campaign_id,
        alert.id,
        alert.kind,
        attempt,
    )
    with engine.begin() as conn:
        conn.execute(
            insert(AuditRow).values(
                campaign_id=campaign_id,
                action="alert_undelivered",
                reason=(
                    f"alert {alert.id} ({alert.kind}, iteration {alert.iteration}) was not delivered "
                    f"to the alert webhook after {attempt} attempts; it stays listed under alerts"
                ),
                changes_json=json.dumps({"alert_id": alert.id, "attempts": attempt}),
                at=now(),
            )
        )
