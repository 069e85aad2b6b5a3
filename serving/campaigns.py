"""Campaigns: creating one from an owner's request, reading it back (JSON shaped as the API's
schemas), reports, forecasts, and the owner's changes (lifecycle, modify) under the lease."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import func, insert, select, update

from agent import Campaign, CampaignError, CampaignSpec
from agent import CampaignUpdate as AgentUpdate
from agent.audience import AudienceError, AudienceWorld
from agent.catalogue import Catalogue as AgentCatalogue
from serving.alert_hooks import resolve_alert_webhook
from serving.catalogs import CatalogsMixin
from serving.channels import ChannelsMixin
from serving.decide import external_contacts
from serving.errors import ConflictError, InvalidError, NotFoundError, RateLimitedError
from serving.models import (
    AlertRow,
    AuditRow,
    CampaignRow,
    CampaignState,
    DecisionRow,
    IterationRow,
    Owner,
    utcnow,
)
from serving.schemas import CampaignCreate, CampaignUpdate
from serving.settlement import release_decide_holds
from serving.store import aware, dump_snapshot, load_snapshot, session, snapshot_blob
from simulators.money import dollars

logger = logging.getLogger(__name__)
T = TypeVar("T")


def goal_public(goal: Any) -> dict[str, Any]:
    """The stored goal as shown: a target that is not a finite number is shown as ``None``."""
    goal = goal if isinstance(goal, dict) else {}
    target = goal.get("target")
    finite = isinstance(target, int | float) and np.isfinite(target)
    return {"metric": str(goal.get("metric", "conversions")), "target": float(target) if finite else None}


class CampaignsMixin(CatalogsMixin, ChannelsMixin):
    """Campaigns as the owners see and change them."""

    def _audience_world(self, owner_id: int, body: CampaignCreate) -> AudienceWorld | None:
        """The owner's audience and catalogue as the campaign's world (``None``: a scenario)."""
        if body.audience is None:
            return None
        from serving.audiences import load_audience

        target = body.audience
        with self.engine.connect() as conn:
            try:
                data = load_audience(conn, owner_id, target.id, target.filter)
            except NotFoundError:
                raise InvalidError(f"no audience {target.id} of this owner", ["audience", "id"]) from None
            except InvalidError as err:  # a bad filter: named where the request gave it
                raise InvalidError(err.message, ["audience", "filter"]) from None
            catalogue = (
                AgentCatalogue.model_validate(body.catalog.model_dump())
                if body.catalog is not None
                else self._stored_catalog(conn, owner_id, int(body.catalog_id or 0))
            )
        try:
            return AudienceWorld.build(
                data.ids,
                data.columns,
                data.column_types,
                data.consent,
                catalogue,
                segment_by=target.segment_by,
                name=data.name,
            )
        except (AudienceError, ValueError) as err:
            raise InvalidError(str(err), ["audience"]) from None

    def _build(self, body: CampaignCreate, campaign_id: int, world: AudienceWorld | None = None) -> Campaign:
        """The agent campaign for a request; :class:`InvalidError` names the field on any mistake."""
        from policies import UnknownPolicyError
        from simulators import ScenarioError, Simulator, builtin_scenarios, load_scenario

        if body.scenario not in builtin_scenarios():
            raise InvalidError(
                f"unknown scenario {body.scenario!r}; built-in: {builtin_scenarios()}", ["scenario"]
            )
        try:
            sc = load_scenario(body.scenario)
        except ScenarioError as err:  # pragma: no cover - built-ins are validated in tests
            raise InvalidError(str(err), ["scenario"]) from None
        base = CampaignSpec.from_scenario(sc).model_dump()
        fields = body.model_dump(
            exclude_unset=True,
            exclude={
                "name", "scenario", "policy", "seed", "n_customers", "channel",
                "audience", "catalog", "catalog_id", "alert_webhook",
            },
        )  # fmt: skip
        if "suppression" in fields:
            fields["suppression"] = frozenset(fields["suppression"])
        if "alert_fractions" in fields:
            fields["alert_fractions"] = tuple(fields["alert_fractions"])
        try:
            spec = CampaignSpec.model_validate({**base, **fields})
        except ValueError as err:
            raise InvalidError(str(err), ["body"]) from None
        sim: Simulator | AudienceWorld
        if world is not None:
            sim = world
        else:
            sim = Simulator(sc, n_customers=body.n_customers) if body.n_customers else Simulator(sc)
        try:
            policy = self._policy(body.policy, sim, body.seed)
        except UnknownPolicyError as err:
            raise InvalidError(str(err), ["policy"]) from None
        except AudienceError as err:  # a yardstick reading the world's truth as it is built
            raise InvalidError(
                f"policy {body.policy!r} cannot decide for this audience: {err}", ["policy"]
            ) from None
        channel = self._channel(body.channel, sim, campaign_id)
        try:
            camp = Campaign(
                spec,
                sim,
                policy,
                seed=body.seed,
                scenario_name=sc.name if world is None else f"audience:{world.name}",
                channel=channel,
                campaign_id=f"campaign-{campaign_id}",
            )
        except CampaignError as err:
            raise InvalidError(str(err), ["body"]) from None
        if world is not None:
            # A policy trained elsewhere (saved:, models:/) may expect other features or arms: it
            # decides one wave on a copy now, so a mismatch is a 422 here, not a paused campaign later.
            try:
                camp.dry_run()
            except (ValueError, AudienceError) as err:
                raise InvalidError(
                    f"policy {body.policy!r} cannot decide for this audience: {err}", ["policy"]
                ) from None
        return camp

    def create_campaign(self, owner_id: int, body: CampaignCreate) -> dict[str, Any]:
        """Create a campaign (``ready``); refused beyond the owner's quota of active campaigns."""
        request = body.model_dump(mode="json")
        if body.alert_webhook is not None:  # checked now, like the channel's, and again before each delivery
            resolve_alert_webhook(self, body.alert_webhook.url, body.alert_webhook.secret_ref)
        world = self._audience_world(owner_id, body)
        with self._heavy_work(), self.engine.begin() as conn:
            # The owner's row first: creates of one owner, on any process, count one at a time.
            conn.execute(update(Owner).where(Owner.id == owner_id).values(name=Owner.name))
            active = conn.execute(
                select(func.count()).where(
                    CampaignRow.owner_id == owner_id, CampaignRow.status.in_(("ready", "running", "paused"))
                )
            ).scalar_one()
            if active >= self.settings.max_active_campaigns:
                raise RateLimitedError(
                    f"quota: at most {self.settings.max_active_campaigns} campaigns ready, running or paused "
                    "per owner; cancel or finish one first",
                    retry_after=60,
                )
            cid = conn.execute(
                insert(CampaignRow)
                .values(
                    owner_id=owner_id,
                    name=body.name,
                    request_json=json.dumps(request),
                    spec_json="{}",
                    status="ready",
                    budget_micros=0,
                    audience_id=body.audience.id if body.audience is not None else None,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                .returning(CampaignRow.id)
            ).scalar_one()
            camp = self._build(body, cid, world)  # an InvalidError rolls the insert back
            conn.execute(
                update(CampaignRow)
                .where(CampaignRow.id == cid)
                .values(
                    spec_json=camp.spec.model_dump_json(),
                    budget_micros=camp.ledger.budget_micros,
                )
            )
            conn.execute(
                insert(CampaignState).values(
                    campaign_id=cid,
                    snapshot=dump_snapshot(camp),
                    report_json=json.dumps(camp.report().to_dict()),
                )
            )
            self._audit(conn, cid, "create", f"created by owner {owner_id}", {"name": body.name})
        return self.get(owner_id, cid)

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _money(r: CampaignRow) -> dict[str, float]:
        spent = r.spent_micros + r.decide_spent_micros
        held = r.reserved_micros + r.decide_held_micros
        return {
            "budget": dollars(r.budget_micros),
            "spent": dollars(spent),
            "reserved": dollars(held),
            "available": dollars(r.budget_micros - spent - held),
        }

    def _public(self, r: CampaignRow) -> dict[str, Any]:
        req = json.loads(r.request_json)
        spec = json.loads(r.spec_json)
        spec.pop("suppression", None)
        return {
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "stop_reason": r.stop_reason,
            "scenario": req["scenario"] if r.audience_id is None else f"audience:{r.audience_id}",
            "policy": req["policy"],
            "goal": goal_public(spec.get("goal")),
            "money": self._money(r),
            "iterations": r.iterations_done,
            "goal_progress": r.goal_progress,
            "conversions": r.conversions,
            "created_at": aware(r.created_at),
            "updated_at": aware(r.updated_at),
            "spec": spec,
            "channel": req["channel"]["type"],
            "audience_id": r.audience_id,
            "next_wave_at": None if r.next_due_at is None else datetime.fromtimestamp(r.next_due_at, UTC),
        }

    def get(self, owner_id: int, cid: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self._public(self._orm(conn, owner_id, cid))

    def list_campaigns(self, owner_id: int, status: str | None = None) -> list[dict[str, Any]]:
        q = select(CampaignRow).where(CampaignRow.owner_id == owner_id).order_by(CampaignRow.id)
        if status is not None:
            q = q.where(CampaignRow.status == status)
        with self.engine.connect() as conn:
            return [self._public(r) for r in session(conn).scalars(q)]

    def report(self, owner_id: int, cid: int) -> dict[str, Any]:
        """The agent's report plus the database ledger (real-time decisions included)."""
        with self.engine.connect() as conn:
            r = self._orm(conn, owner_id, cid)
            n_decide = conn.execute(
                select(func.count()).where(DecisionRow.campaign_id == cid, DecisionRow.source == "decide")
            ).scalar_one()
            rep: dict[str, Any] = json.loads(
                conn.execute(
                    select(CampaignState.report_json).where(CampaignState.campaign_id == cid)
                ).scalar_one()
            )
        rep["campaign_id"] = cid
        rep["money"] = self._money(r)
        rep["realtime"] = {
            "decisions": n_decide,
            "spent": dollars(r.decide_spent_micros),
            "held": dollars(r.decide_held_micros),
        }
        return rep

    def iterations(self, owner_id: int, cid: int, offset: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            rows = conn.execute(
                select(IterationRow.record_json)
                .where(IterationRow.campaign_id == cid)
                .order_by(IterationRow.iteration)
                .offset(offset)
                .limit(limit)
            ).scalars()
            return [json.loads(x) for x in rows]

    def plot(self, owner_id: int, cid: int) -> Path:
        """The report plot as a PNG file (rendered once per campaign version, on one of the
        server's few slots for expensive work)."""
        from agent.plots import plot_report

        with self.engine.connect() as conn:
            r = self._orm(conn, owner_id, cid)
            path = self.settings.data_dir / "plots" / f"campaign-{cid}-v{r.version}.png"
            if path.is_file():
                return path
            blob = snapshot_blob(conn, cid)
        with self._heavy_work():
            plot_report(load_snapshot(blob).report(), path)
        return path

    def forecast(self, owner_id: int, cid: int, runs: int) -> dict[str, Any]:
        """Before launch, a simulated campaign's forecast (``kind: simulated``: whole campaigns
        simulated, on one of the server's few slots for expensive work); once it runs, or for a
        campaign on an owner's audience (no simulator), the forecast at its own recent pace
        (``kind: pace``, see :func:`agent.forecast.pace_forecast`)."""
        with self.engine.connect() as conn:
            r = self._orm(conn, owner_id, cid)
            if r.status != "ready" or r.audience_id is not None:
                camp = self._load_row(snapshot_blob(conn, cid), r)
                return {"kind": "pace", **asdict(camp.pace())}
            spec = json.loads(r.spec_json)
            work = runs * int(spec["max_iterations"]) * int(spec["customers_per_iteration"])
            if work > self.settings.forecast_max_decisions:
                most = max(self.settings.forecast_max_decisions * runs // work, 0)
                raise InvalidError(
                    f"{runs} runs of this campaign would decide for {work:,} candidates; a forecast may "
                    f"decide for {self.settings.forecast_max_decisions:,} (at most {most} runs here)",
                    ["query", "runs"],
                )
            blob = snapshot_blob(conn, cid)
        with self._heavy_work():
            try:
                return {"kind": "simulated", **asdict(load_snapshot(blob).forecast(runs=runs))}
            except CampaignError as err:
                raise ConflictError(str(err)) from None

    def _mutate(self, owner_id: int, cid: int, fn: Callable[[Campaign], T]) -> T:
        """Apply ``fn`` to the campaign under the lease and write it back (all or nothing)."""
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)  # 404 before waiting for a lease
        with self._leased(cid, wait=self.settings.lease_seconds + 5) as holder:
            with self.engine.connect() as conn:
                r = self._orm(conn, owner_id, cid)
                blob = snapshot_blob(conn, cid)
            camp = self._load_row(blob, r)
            n_audit = len(camp.audit_log)
            try:
                out = fn(camp)
            except CampaignError as err:
                raise ConflictError(str(err)) from None
            with self.engine.begin() as conn:
                self._commit_snapshot(
                    conn, r, camp, holder, ref="owner", extra={"budget_micros": camp.ledger.budget_micros}
                )
                for a in camp.audit_log[n_audit:]:
                    self._audit(conn, cid, a.action, a.reason, a.changes)
                if camp.status in ("completed", "cancelled"):
                    release_decide_holds(conn, cid, None)
        logger.info(
            "campaign changed by its owner campaign_id=%s status=%s version=%s",
            cid,
            camp.status,
            r.version + 1,
        )
        return out

    def transition(self, owner_id: int, cid: int, action: str, reason: str) -> dict[str, Any]:
        """start, pause, resume or cancel; a wrong transition is a :class:`ConflictError`."""
        ops: dict[str, Callable[[Campaign], None]] = {
            "start": lambda c: c.start(reason, now=self.clock.now()),
            "pause": lambda c: c.pause(reason),
            "resume": lambda c: c.resume(reason),
            "cancel": lambda c: c.cancel(reason),
        }
        self._mutate(owner_id, cid, ops[action])
        return self.get(owner_id, cid)

    def modify(self, owner_id: int, cid: int, body: CampaignUpdate) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True, exclude={"reason"})
        if not changes:
            raise InvalidError("nothing to change: give at least one field", ["body"])

        def apply(camp: Campaign) -> None:
            if camp.status in ("completed", "cancelled"):
                raise ConflictError(f"cannot modify a campaign that is {camp.status}")
            decide = self._decide_money(cid)
            camp.ledger.set_external(dollars(decide))
            with self.engine.connect() as conn:
                camp.set_external_contacts(external_contacts(conn, cid, camp, None))
            try:
                camp.modify(AgentUpdate.model_validate(changes), body.reason)
            except CampaignError as err:
                raise InvalidError(str(err), ["body"]) from None
            finally:
                camp.set_external_contacts(None)  # read afresh each time: not part of the snapshot

        self._mutate(owner_id, cid, apply)
        return self.get(owner_id, cid)

    def _decide_money(self, cid: int) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CampaignRow.decide_spent_micros, CampaignRow.decide_held_micros).where(
                    CampaignRow.id == cid
                )
            ).one()
        return int(row[0] + row[1])

    def audit_log(self, owner_id: int, cid: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            rows = session(conn).scalars(
                select(AuditRow).where(AuditRow.campaign_id == cid).order_by(AuditRow.id)
            )
            return [
                {
                    "action": a.action,
                    "reason": a.reason,
                    "changes": json.loads(a.changes_json),
                    "at": aware(a.at),
                }
                for a in rows
            ]

    def alerts(self, owner_id: int, cid: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            self._orm(conn, owner_id, cid)
            rows = session(conn).scalars(
                select(AlertRow).where(AlertRow.campaign_id == cid).order_by(AlertRow.id)
            )
            return [
                {
                    "kind": a.kind,
                    "iteration": a.iteration,
                    "value": a.value,
                    "message": a.message,
                    "at": aware(a.at),
                }
                for a in rows
            ]

    def status_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                s: int(n)
                for s, n in conn.execute(
                    select(CampaignRow.status, func.count()).group_by(CampaignRow.status)
                )
            }
