"""The live runner: runs the iterations of running campaigns, one at a time per campaign, each
computed from the stored snapshot under the row's lease and committed in one transaction (see
:mod:`serving.store` for the leases and why a crash never commits an iteration twice).

Each committed iteration, each pause after an error and each commit lost to a concurrent change
is logged (``key=value`` fields: ``campaign_id``, ``iteration``, ``spend``...).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from agent import Campaign
from agent.audience import AudienceWorld
from agent.channels import Channel, ChannelError, Outbox, SendBatch, SimulatedChannel
from serving.alert_hooks import deliver_alerts, resolve_alert_webhook
from serving.audiences import opted_out
from serving.channels import ChannelsMixin, generic_channel_errors
from serving.decide import external_contacts
from serving.errors import ConflictError, InvalidError
from serving.events import apply_events, pending_events, write_verdicts
from serving.models import (
    AlertRow,
    CampaignRow,
    CampaignState,
    DecisionRow,
    DeliveredBatch,
    IterationRow,
    utcnow,
)
from serving.settlement import DECIDE_ID_BASE, release_decide_holds
from serving.store import dump_snapshot, session, snapshot_blob, still_held
from simulators.money import dollars, first_open_iteration, to_micros

logger = logging.getLogger(__name__)


def delivered_keys(conn: Connection, cid: int) -> set[str]:
    """Keys of the campaign's batches its channel took."""
    return set(
        conn.execute(select(DeliveredBatch.batch_key).where(DeliveredBatch.campaign_id == cid)).scalars()
    )


def record_delivered(conn: Connection, cid: int, key: str) -> None:
    """Record a delivered batch (a second record of the same key changes nothing)."""
    from sqlalchemy.dialects import postgresql, sqlite

    ins = (
        postgresql.insert(DeliveredBatch)
        if conn.dialect.name == "postgresql"
        else sqlite.insert(DeliveredBatch)
    )
    conn.execute(
        ins.values(campaign_id=cid, batch_key=key, delivered_at=utcnow()).on_conflict_do_nothing(
            index_elements=["campaign_id", "batch_key"]
        )
    )


class RunnerMixin(ChannelsMixin):
    """The runner's work on the database: which campaigns are due, and one iteration of one."""

    def due_campaigns(self) -> list[int]:
        """Running campaigns no live worker holds and whose next wave is due on the schedule's
        clock (or that have no schedule), oldest first."""
        now = time.time()
        clock_now = self.clock.now()
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(CampaignRow.id)
                    .where(
                        CampaignRow.status == "running",
                        or_(CampaignRow.next_due_at.is_(None), CampaignRow.next_due_at <= clock_now),
                        or_(
                            CampaignRow.lease_owner.is_(None),
                            CampaignRow.lease_expires < now,
                            CampaignRow.lease_owner == self.worker_id,
                        ),
                    )
                    .order_by(CampaignRow.updated_at)
                ).scalars()
            )

    def run_iteration(self, cid: int) -> bool:
        """One iteration (or the stop) of a running campaign, committed atomically.

        Returns:
            ``True`` when an iteration or the stop was committed, ``False`` when another worker
            holds the campaign or the commit lost a race (nothing is changed then).
        """
        me = self.worker_id
        if not self._claim(cid, me, statuses=("running",)):
            logger.debug("campaign held elsewhere campaign_id=%s worker=%s", cid, me)
            return False
        iteration = -1  # not read yet
        try:
            # The wave's time: events stored before it are applied now, and windows that closed by
            # it close (see agent.schedule); later events are judged by their own arrival time.
            now = self.clock.now()
            with self.engine.connect() as conn:
                r = session(conn).scalars(select(CampaignRow).where(CampaignRow.id == cid)).one()
                iteration = r.iterations_done
                pending = pending_events(conn, cid)
                blob = snapshot_blob(conn, cid)
            try:
                camp = self._load_row(blob, r)
            except Exception as err:  # not a valid snapshot (e.g. an old pickle): pause, never loop
                self._pause_on_error(r, me, f"the stored snapshot cannot be read ({type(err).__name__})")
                return False
            if camp.status != "running" or not camp.due(now):  # the snapshot's own state wins
                return False
            try:
                self._attach_secret(camp, r)
            except InvalidError as err:
                self._pause_on_error(r, me, f"webhook channel: {err.message}")
                return False
            real = camp.channel
            outbox: Outbox | None = None
            if not isinstance(real, SimulatedChannel):
                # Batches of earlier iterations not delivered yet (a failed delivery or a crash
                # after the commit) go first; the new wave's batches wait in the outbox until
                # the iteration is committed.
                with self.engine.connect() as conn:
                    done = delivered_keys(conn, cid)
                camp._undelivered = [b for b in camp._undelivered if b.key not in done]
                failed = self._flush(cid, real, camp) if camp._undelivered else None
                if failed is not None:
                    self._channel_paused(cid, me, camp, failed)
                    return False
                outbox = Outbox(real)
                camp.channel = outbox
            verdicts = apply_events(camp, pending)
            camp.ledger.set_external(dollars(r.decide_spent_micros + r.decide_held_micros))
            with self.engine.connect() as conn:
                camp.set_external_contacts(external_contacts(conn, cid, camp, None))
                world = camp.sim
                if isinstance(world, AudienceWorld) and r.audience_id is not None:
                    # Opt-outs are honoured as they are now, not as they were at creation.
                    world.set_opt_outs(
                        opted_out(conn, r.audience_id, world.customer_ids, world.arms.channel_names)
                    )
            n_log, n_alerts, n_audit = len(camp.log), len(camp.alerts), len(camp.audit_log)
            try:
                rec = camp.tick(now)
            except Exception as err:  # a failing policy or channel must not loop the worker forever
                self._pause_on_error(r, me, f"{type(err).__name__}: {err}")
                return False
            if outbox is not None:
                camp.channel = real
                camp._undelivered.extend(outbox.queued)  # committed with the iteration: the outbox
            generic_channel_errors(camp, n_audit, n_alerts)
            committed = camp.channel_committed()  # real-time contacts included, for the check below
            camp.set_external_contacts(None)  # read afresh each time: not part of the snapshot
            log = camp.log
            new = slice(n_log, len(log))
            with self.engine.begin() as conn:
                self._commit_snapshot(conn, r, camp, me, ref="iteration")
                if len(log) > n_log:
                    names = np.asarray(camp.sim.arms.names, dtype=object)[log.arm[new]]
                    owner_ids = getattr(camp.sim, "customer_ids", None)
                    refs = (
                        [None] * (len(log) - n_log)
                        if owner_ids is None
                        else owner_ids[log.customer[new]].tolist()
                    )
                    conn.execute(
                        insert(DecisionRow),
                        [
                            {
                                "campaign_id": cid,
                                "decision_id": d,
                                "source": "runner",
                                "iteration": i,
                                "customer": c,
                                "customer_ref": ref,
                                "arm": a,
                                "pscore": p,
                                "reserved_micros": m,
                                "held_micros": 0,
                                "open": False,
                            }
                            for d, i, c, ref, a, p, m in zip(
                                log.decision_id[new].tolist(),
                                log.iteration[new].tolist(),
                                log.customer[new].tolist(),
                                refs,
                                names.tolist(),
                                log.pscore[new].tolist(),
                                to_micros(log.reserved[new], round_up=True).tolist(),
                                strict=True,
                            )
                        ],
                    )
                if rec is not None:
                    conn.execute(
                        insert(IterationRow).values(
                            campaign_id=cid,
                            iteration=rec.iteration,
                            record_json=json.dumps(asdict(rec)),
                            created_at=utcnow(),
                        )
                    )
                write_verdicts(conn, cid, verdicts)
                self._write_records(conn, cid, camp, n_alerts, n_audit)
                self._check_realtime_meanwhile(conn, r, camp, n_log, committed)
                # Real-time holds expire with the attribution window, like the runner's own.
                release_decide_holds(
                    conn, cid, None if camp.status != "running" else first_open_iteration(camp.t, camp.window)
                )
            failed = self._flush(cid, real, camp) if outbox is not None and camp._undelivered else None
            if failed is not None:
                self._channel_paused(cid, me, camp, failed)  # committed and kept: resume delivers it
        except ConflictError as err:
            logger.info(
                "iteration not committed campaign_id=%s iteration=%s worker=%s reason=%r",
                cid,
                iteration,
                me,
                err.message,
            )
            return False
        finally:
            # Released after every iteration, so owners' changes and other workers interleave.
            self._release_lease(cid, me)
        self._count("iterations_total")
        self._push_alerts(r)
        logger.info(
            "iteration committed campaign_id=%s iteration=%s spend=%.6f spend_total=%.6f reserved=%.6f "
            "decisions=%s status=%s",
            cid,
            camp.iterations,
            rec.spend if rec is not None else 0.0,
            camp.ledger.spent,
            camp.ledger.reserved,
            len(log) - n_log,
            camp.status,
        )
        return True

    def _flush(self, cid: int, channel: Channel, camp: Campaign) -> tuple[SendBatch, ChannelError] | None:
        """Deliver the campaign's undelivered batches in order, recording each delivered batch
        (so no later load sends it again); the first batch the channel does not take, with the
        error, or ``None`` when all went."""
        while camp._undelivered:
            batch = camp._undelivered[0]
            try:
                channel.deliver(batch)
            except ChannelError as err:
                logger.warning(
                    "batch not delivered campaign_id=%s batch=%s error=%s", cid, batch.key, type(err).__name__
                )
                return batch, err
            with self.engine.begin() as conn:
                record_delivered(conn, cid, batch.key)
            camp._undelivered.pop(0)
        return None

    def _channel_paused(
        self, cid: int, holder: str, camp: Campaign, failed: tuple[SendBatch, ChannelError]
    ) -> None:
        """Pause a campaign whose channel did not take a batch (kept as undelivered: resume
        delivers it first), with the owner's alert and audit line, in one commit."""
        batch, err = failed
        with self.engine.connect() as conn:
            r = session(conn).scalars(select(CampaignRow).where(CampaignRow.id == cid)).one()
        n_alerts, n_audit = len(camp.alerts), len(camp.audit_log)
        camp._channel_failed(batch, err)
        generic_channel_errors(camp, n_audit, n_alerts)
        try:
            with self.engine.begin() as conn:
                self._commit_snapshot(conn, r, camp, holder, ref="channel")
                self._write_records(conn, cid, camp, n_alerts, n_audit)
        except ConflictError:  # changed meanwhile: the batch stays undelivered in what is stored
            logger.info("channel pause not committed campaign_id=%s", cid)
        self._push_alerts(r)

    def _write_records(self, conn: Connection, cid: int, camp: Campaign, n_alerts: int, n_audit: int) -> None:
        """The alerts and audit lines the campaign added since ``n_alerts`` / ``n_audit``."""
        for a in camp.alerts[n_alerts:]:
            conn.execute(
                insert(AlertRow).values(
                    campaign_id=cid,
                    kind=a.kind,
                    iteration=a.iteration,
                    value=a.value,
                    message=a.message,
                    at=utcnow(),
                )
            )
        for rec_ in camp.audit_log[n_audit:]:
            self._audit(conn, cid, rec_.action, rec_.reason, rec_.changes)

    def _push_alerts(self, r: CampaignRow) -> None:
        """Deliver the campaign's new alerts to its alert webhook, if it has one (signed; each
        alert once; a failing receiver is retried at later iterations and never stops the runner)."""
        try:
            hook = json.loads(r.request_json).get("alert_webhook")
        except (TypeError, ValueError):
            hook = None
        if not isinstance(hook, dict):
            return
        try:
            url = str(hook["url"])
            secret = resolve_alert_webhook(self, url, str(hook["secret_ref"]))
        except (KeyError, InvalidError) as err:
            logger.warning("alert webhook not usable campaign_id=%s reason=%r", r.id, str(err))
            return
        deliver_alerts(self.engine, r.id, url, secret)

    def _check_realtime_meanwhile(
        self, conn: Connection, r: CampaignRow, camp: Campaign, n_log: int, committed: NDArray[np.float64]
    ) -> None:
        """Refuse an iteration's commit when real-time decisions made while it was computed
        (after ``r`` was read) break its caps together with it: a customer it contacts too, or
        a channel budget the two would exceed (``committed``: by channel, as the iteration saw
        it). Called after the commit's UPDATE took the campaign row, so no more can come.

        Raises:
            ConflictError: the iteration must be computed again (nothing is kept).
        """
        meanwhile = conn.execute(
            select(
                DecisionRow.customer, DecisionRow.arm, DecisionRow.charged_micros + DecisionRow.held_micros
            ).where(
                DecisionRow.campaign_id == r.id,
                DecisionRow.source == "decide",
                DecisionRow.decision_id > DECIDE_ID_BASE + r.decisions_decided,
            )
        ).all()
        if not meanwhile:
            return
        arms = camp.sim.arms
        extra = np.zeros(len(arms.channel_names))
        for _, arm, m in meanwhile:  # the few decisions of the last moments
            extra[arms.channel[arms.index(arm)]] += dollars(int(m))
        contacted = set(camp.log.customer[n_log:].tolist())
        over = committed + extra > camp.channel_cap + 1e-9
        if over.any() or any(c in contacted for c, _, _ in meanwhile):
            self._count("commit_conflicts_total")
            raise ConflictError("real-time decisions meanwhile touch this iteration's caps; computed again")

    def _pause_on_error(self, r: CampaignRow, holder: str, message: str) -> None:
        """Pause a campaign whose iteration raised (nothing of the failed iteration is kept: the
        snapshot stays at the last committed version); the error goes to the audit log."""
        logger.warning(
            "campaign paused by an error campaign_id=%s iteration=%s reason=%r",
            r.id,
            r.iterations_done,
            message,
        )
        with self.engine.begin() as conn:
            res = conn.execute(
                update(CampaignRow)
                .where(*still_held(r, holder))
                .values(status="paused", version=r.version + 1, updated_at=utcnow())
            )
            if res.rowcount == 1:
                try:
                    camp = self._load_row(snapshot_blob(conn, r.id), r)
                except Exception:  # an unreadable snapshot stays as it is; the row says paused
                    camp = None
                if camp is not None:
                    camp.status = "paused"
                    conn.execute(
                        update(CampaignState)
                        .where(CampaignState.campaign_id == r.id)
                        .values(snapshot=dump_snapshot(camp))
                    )
                self._audit(conn, r.id, "runner_error", message[:2000], {})
                conn.execute(
                    insert(AlertRow).values(
                        campaign_id=r.id, kind="runner_error", iteration=r.iterations_done, value=0.0,
                        message=f"the iteration failed; the campaign is paused: {message[:500]}",
                        at=utcnow(),
                    )
                )  # fmt: skip
        self._push_alerts(r)  # the owner hears of the pause where the alerts go


class Runner:
    """The background worker: runs iterations of running campaigns until stopped."""

    def __init__(self, service: RunnerMixin) -> None:
        self.service = service
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def run_pending(self) -> int:
        """One pass over the due campaigns (one iteration each); returns how many advanced."""
        done = 0
        for cid in self.service.due_campaigns():
            if self._stop.is_set():
                break
            done += self.service.run_iteration(cid)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_pending() == 0:
                    self._stop.wait(self.service.settings.poll_seconds)
            except Exception as err:
                logger.exception(
                    "runner pass failed worker=%s error=%s", self.service.worker_id, type(err).__name__
                )
                self.errors.append(f"{type(err).__name__}: {err}")
                self._stop.wait(1.0)

    def start(self) -> None:
        logger.info("runner started worker=%s", self.service.worker_id)
        self._thread = threading.Thread(target=self._loop, name="campaign-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
