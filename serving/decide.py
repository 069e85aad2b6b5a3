"""Real-time decisions (``/decide``): concurrent calls are batched, decided by the campaign's
policy within every cap of the loop, and each one reserved in SQL before it is answered."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection

from agent import Campaign
from agent.loop import ExternalContacts
from serving.errors import ConflictError, InvalidError, NotFoundError, ServiceError
from serving.models import CampaignRow, DecisionRow, EventRow, LedgerRow
from serving.schemas import DecideOut
from serving.settings import Settings
from serving.settlement import DECIDE_ID_BASE, reserve_decision
from serving.store import Store, load_snapshot, snapshot_blob
from simulators.money import dollars, holds_after_send, micros_paid, micros_up, to_dollars
from simulators.types import ArmTable

logger = logging.getLogger(__name__)

DECIDE_CACHE_CAMPAIGNS = 8
"""Campaigns whose policy a server keeps in memory for ``/decide`` (the most recently loaded)."""


def external_contacts(
    conn: Connection,
    cid: int,
    camp: Campaign,
    customers: NDArray[np.int64] | None,
) -> ExternalContacts:
    """The real-time decisions the loop's caps must count: every contact of ``customers``
    (``None``: of everyone), the money they hold by channel, and the unsubscribes reported
    through ``/events`` for those customers (the channel itself knows only its own)."""
    arms = camp.sim.arms
    mine = [DecisionRow.campaign_id == cid, DecisionRow.source == "decide"]
    who = [] if customers is None else [DecisionRow.customer.in_(np.unique(customers).tolist())]
    committed = DecisionRow.charged_micros + DecisionRow.held_micros
    rows = conn.execute(
        select(DecisionRow.customer, DecisionRow.iteration, committed).where(*mine, *who)
    ).all()
    by_channel = np.zeros(len(arms.channel_names))
    for arm, m in conn.execute(
        select(DecisionRow.arm, func.sum(committed)).where(*mine).group_by(DecisionRow.arm)
    ):
        by_channel[arms.channel[arms.index(arm)]] += dollars(int(m))  # a loop over arms, not customers
    out = conn.execute(
        select(DecisionRow.customer, DecisionRow.arm)
        .join(
            EventRow,
            (EventRow.campaign_id == DecisionRow.campaign_id)
            & (EventRow.decision_id == DecisionRow.decision_id),
        )
        .where(
            DecisionRow.campaign_id == cid,
            EventRow.kind == "unsubscribed",
            EventRow.status != "rejected",
            *who,
        )
    ).all()
    contacts = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return ExternalContacts(
        customers=contacts[:, 0],
        times=contacts[:, 1],
        committed=to_dollars(contacts[:, 2]),
        channel_committed=by_channel,
        opted_out=np.array([(c, arms.channel[arms.index(a)]) for c, a in out], dtype=np.int64).reshape(-1, 2),
    )


class DecideMixin(Store):
    """Real-time decisions, one conditional reservation each."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        super().__init__(settings, engine)
        self._decide_cache: dict[int, tuple[int, Campaign, threading.Lock]] = {}
        self._cache_lock = threading.Lock()
        self._batcher: DecideBatcher | None = None

    def _cached(
        self, cid: int, version: int, blob_loader: Callable[[], bytes]
    ) -> tuple[Campaign, threading.Lock]:
        with self._cache_lock:
            hit = self._decide_cache.get(cid)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        camp = load_snapshot(blob_loader())
        entry = (version, camp, threading.Lock())
        with self._cache_lock:
            self._decide_cache.pop(cid, None)
            self._decide_cache[cid] = entry  # newest last
            while len(self._decide_cache) > DECIDE_CACHE_CAMPAIGNS:  # snapshots are large: keep a few
                self._decide_cache.pop(next(iter(self._decide_cache)))
        return camp, entry[2]

    def decide(self, owner_id: int, cid: int, customer: int) -> DecideOut:
        """One customer's decision now; its worst case is reserved in the database before it is
        returned, or the call is refused (:class:`ConflictError`) when the budget cannot hold it.

        Concurrent calls are served together (:class:`DecideBatcher`): one policy call and one
        transaction for all of them, each decision still reserved by its own conditional UPDATE.
        """
        self._count("decide_requests_total")
        with self._cache_lock:
            if self._batcher is None:
                self._batcher = DecideBatcher(self)
        return self._batcher.submit(owner_id, cid, customer)

    def _decide_group(self, owner_id: int, cid: int, customers: list[int]) -> list[DecideOut | ServiceError]:
        """Decide for several customers of one campaign; one result (or refusal) per customer.

        The transaction first takes the campaign row (a no-op UPDATE), so the real-time decisions
        of every process are made one group at a time, each seeing all those before it: the
        loop's caps (:meth:`agent.Campaign.decide`) count them through
        :meth:`_external_contacts`. A customer asked for twice in a group is decided in a second
        round that sees the first.
        """
        with self.engine.begin() as conn:
            r = conn.execute(
                update(CampaignRow)
                .where(CampaignRow.id == cid, CampaignRow.owner_id == owner_id)
                .values(decisions_decided=CampaignRow.decisions_decided)
                .returning(CampaignRow.status, CampaignRow.version)
            ).first()
            if r is None:
                return [NotFoundError(f"no campaign {cid}")] * len(customers)
            if r.status != "running":
                return [ConflictError(f"the campaign is {r.status}; /decide needs a running campaign")] * len(
                    customers
                )

            def blob() -> bytes:
                with self.engine.connect() as c:
                    return snapshot_blob(c, cid)

            camp, lock = self._cached(cid, r.version, blob)
            n = camp.sim.n_customers
            out: list[DecideOut | ServiceError] = [
                InvalidError(f"customer ids are 0..{n - 1}", ["customer"]) for _ in customers
            ]
            todo = [k for k, c in enumerate(customers) if c < n]
            while todo:  # rounds of distinct customers (a loop over one request group's items)
                first = {customers[k]: k for k in reversed(todo)}
                round_ = sorted(first.values())
                todo = [k for k in todo if first[customers[k]] != k]
                who = np.array([customers[k] for k in round_], dtype=np.int64)
                with lock:
                    camp.set_external_contacts(external_contacts(conn, cid, camp, who))
                    chosen, pscores = camp.decide(who)
                    now = camp.t
                results = self._reserve(conn, cid, camp.sim.arms, now, who, chosen, pscores)
                for k, res in zip(round_, results, strict=True):
                    out[k] = res
        return out

    def _reserve(
        self,
        conn: Connection,
        cid: int,
        arms: ArmTable,
        now: int,
        who: NDArray[np.int64],
        chosen: NDArray[np.int64],
        pscores: NDArray[np.float64],
    ) -> list[DecideOut | ServiceError]:
        """Reserve each contact's worst case (a conditional UPDATE that checks the budget) and
        record it; a contact the budget cannot hold is refused (:func:`serving.settlement.reserve_decision`).

        Args:
            conn: the transaction of the group.
            cid: the campaign.
            arms: the campaign's arms (their send and worst-case costs).
            now: the campaign's clock (the iteration the decisions count in).
            who, chosen, pscores: ``(k,)`` customers, their chosen arms (0: no contact) and the
                propensities of those choices.
        """
        out: list[DecideOut | ServiceError] = []
        rows: list[dict[str, Any]] = []
        ledger: list[dict[str, Any]] = []
        for customer, arm_, ps in zip(who.tolist(), chosen.tolist(), pscores.tolist(), strict=True):
            if arm_ == 0:
                out.append(
                    DecideOut(
                        decision_id=None, customer=customer, arm=arms.names[0], channel=None, content=None,
                        offer=None, pscore=ps, reserved=0.0,
                    )
                )  # fmt: skip
                continue
            # Held rounded up, paid to the nearest micro-dollar: the one rule of simulators.money.
            send, worst = (
                micros_paid(float(arms.send_cost[arm_])),
                micros_up(float(arms.worst_case_cost[arm_])),
            )
            seq = reserve_decision(conn, cid, send, worst)
            if seq is None:
                self._count("decide_budget_refusals_total")
                out.append(
                    ConflictError("not enough budget left for this decision (or the campaign stopped)")
                )
                continue
            did = DECIDE_ID_BASE + seq
            rows.append(
                {
                    "campaign_id": cid, "decision_id": did, "source": "decide", "iteration": now,
                    "customer": customer, "arm": arms.names[arm_], "pscore": ps, "reserved_micros": worst,
                    "held_micros": worst - send, "charged_micros": send,
                    "open": holds_after_send(worst, send),
                }
            )  # fmt: skip
            ledger += [
                {"campaign_id": cid, "kind": "reserve", "amount_micros": worst, "ref": f"decision:{did}"},
                {"campaign_id": cid, "kind": "charge", "amount_micros": send, "ref": f"decision:{did}"},
            ]
            out.append(
                DecideOut(
                    decision_id=did,
                    customer=customer,
                    arm=arms.names[arm_],
                    channel=arms.channel_names[arms.channel[arm_]],
                    content=arms.content_names[arms.content[arm_]],
                    offer=arms.offer_names[arms.offer[arm_]],
                    pscore=ps,
                    reserved=dollars(worst),
                )
            )
        if rows:
            conn.execute(insert(DecisionRow), rows)
            conn.execute(insert(LedgerRow), ledger)
        self._count("decisions_total", len(rows))
        return out


class DecideBatcher:
    """Serve concurrent ``/decide`` calls together: whatever queued while the previous group was
    being decided goes into the next one (no waiting when calls arrive one at a time)."""

    def __init__(self, service: DecideMixin, max_batch: int = 256) -> None:
        self.service, self.max_batch = service, max_batch
        self.queue: queue.Queue[tuple[int, int, int, Future[DecideOut]]] = queue.Queue()
        threading.Thread(target=self._loop, name="decide-batcher", daemon=True).start()

    def submit(self, owner_id: int, cid: int, customer: int) -> DecideOut:
        fut: Future[DecideOut] = Future()
        self.queue.put((owner_id, cid, customer, fut))
        return fut.result(timeout=60)

    def _loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            groups: dict[tuple[int, int], list[tuple[int, Future[DecideOut]]]] = {}
            for owner_id, cid, customer, fut in batch:
                groups.setdefault((owner_id, cid), []).append((customer, fut))
            for (owner_id, cid), items in groups.items():
                try:
                    results = self.service._decide_group(owner_id, cid, [c for c, _ in items])
                except Exception as err:  # a database failure answers every call of the group
                    logger.exception("decide group failed campaign_id=%s calls=%s", cid, len(items))
                    for _, fut in items:
                        fut.set_exception(err)
                    continue
                for (_, fut), res in zip(items, results, strict=True):
                    if isinstance(res, Exception):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
