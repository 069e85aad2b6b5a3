"""Events: settling the ledger, counting the funnel, and real channels' events (idempotent)."""

from __future__ import annotations

import numpy as np

from agent.control import EventIn, IngestResult
from agent.holdout import HoldoutMixin
from agent.schedule import HOUR
from agent.state import CampaignError
from simulators.money import LedgerError
from simulators.types import EventBatch, EventKind, IntArray


class EventsMixin(HoldoutMixin):
    """Applies response events to the campaign through the money rules of
    :class:`simulators.money.CampaignLedger` (each decision settled once, inside its window)."""

    def _ingest(self, events: EventBatch) -> dict[str, float]:
        """Settle the ledger and count the funnel for a batch of events."""
        out: dict[str, float] = {"conversions": 0, "revenue": 0.0, "spend": 0.0}
        if len(events) == 0:
            return out
        self._events.append(events)
        own = events.decision_id >= 0
        every = events.kind == EventKind.CONVERTED
        np.add.at(self.customer_conversions, events.customer[every], 1)
        np.add.at(self.customer_revenue, events.customer[every], events.revenue[every])
        for kind, key in (
            (EventKind.DELIVERED, "delivered"),
            (EventKind.OPENED, "opened"),
            (EventKind.CLICKED, "clicked"),
            (EventKind.UNSUBSCRIBED, "unsubscribed"),
        ):
            c = int(np.count_nonzero(own & (events.kind == kind)))
            self.funnel[key] += c
            out[key] = c
        unsubscribe = getattr(self.sim, "unsubscribe", None)  # an owner's audience (the simulator knows)
        gone = own & (events.kind == EventKind.UNSUBSCRIBED)
        if unsubscribe is not None and gone.any():
            unsubscribe(events.customer[gone], self.sim.arms.channel[self.log.arm[events.decision_id[gone]]])
        conv = np.flatnonzero(own & (events.kind == EventKind.CONVERTED))
        if conv.size:
            # Attributed and settled once per decision, and only inside its attribution window.
            try:
                settled = self.ledger.convert(events.decision_id[conv], events.offer_cost[conv])
            except LedgerError as err:
                raise CampaignError(str(err)) from None
            self._freed(settled.released)
            conv = conv[settled.counted]
            ids, cost, rev = events.decision_id[conv], events.offer_cost[conv], events.revenue[conv]
            sent_at = self.log.iteration[ids]
            self.triangle.add(sent_at, self.t - sent_at, rev)
            arms = self.log.arm[ids]
            np.add.at(self.offer_cost_by_offer, self.sim.arms.offer[arms], cost)
            np.add.at(self.conversions_by_arm, arms, 1)
            np.add.at(self.revenue_by_arm, arms, rev)
            self.conversions += int(ids.size)
            self.revenue += float(rev.sum())
            np.add.at(self.customer_attributed, self.log.customer[ids], 1)
            np.add.at(self.customer_attributed_revenue, self.log.customer[ids], rev)
            out["conversions"] = int(ids.size)
            out["revenue"] = float(rev.sum())
            out["spend"] = float(cost.sum())
        return out

    def ingest_events(self, events: list[EventIn], received_at: list[float] | None = None) -> IngestResult:
        """Take response events from a real channel: idempotent by event id, in any order.

        Each event is judged on its own: an unknown decision, or a conversion after its decision's
        attribution window closed or costing more than its reservation still holds, is rejected
        with the reason; a repeated event id is a duplicate; the rest are applied like simulator
        events (the ledger settles offer costs, the funnel counts, the policy learns on the next
        update). An event given by ``customer_id`` answers that customer's latest decision.

        Args:
            events: the events.
            received_at: with a schedule, when each event arrived (epoch seconds): a conversion
                that arrived after its send's time plus the attribution window is late.
        """
        accepted: list[EventIn] = []
        duplicates: list[str] = []
        rejected: dict[str, str] = {}
        given = self._by_decision(events, rejected, received_at)
        events = [e for e in given if e is not None]
        if received_at is not None:  # the arrival times of the events left
            received_at = [t for e, t in zip(given, received_at, strict=True) if e is not None]
        n = len(self.log)
        converting: set[int] = set()
        batch_ids: set[str] = set()
        # What each converting decision's reservation still holds, from one vectorized ledger read.
        ids_ = [e.decision_id for e in events if e.kind == "converted" and e.decision_id is not None]
        conv = np.unique([d for d in ids_ if d < n])
        held = self.log.reserved[conv] - self.ledger.charged(conv) if conv.size else np.zeros(0)
        room = dict(zip(conv.tolist(), held.tolist(), strict=True))
        open_ = dict(zip(conv.tolist(), self.ledger.attributable(conv).tolist(), strict=True))
        sched = self.spec.schedule
        deadline = (
            sched.attribution_window_hours * HOUR if sched is not None and received_at is not None else None
        )
        for k, ev in enumerate(events):  # one request's events (validation per item), not customers
            assert ev.decision_id is not None  # resolved by _by_decision
            if ev.event_id in self._seen_event_ids or ev.event_id in batch_ids:
                duplicates.append(ev.event_id)
            elif ev.decision_id >= n:
                rejected[ev.event_id] = f"unknown decision {ev.decision_id}"
            elif ev.kind == "converted":
                d = ev.decision_id
                sent_at = self._sent_time(d)
                if deadline is not None and received_at is not None and received_at[k] > sent_at + deadline:
                    late_by = (received_at[k] - sent_at - deadline) / HOUR
                    rejected[ev.event_id] = (
                        f"decision {d}: arrived {late_by:.2f} h after its attribution window "
                        f"({sched.attribution_window_hours if sched else 0:g} h) closed"
                    )
                elif not open_[d] or d in converting:
                    rejected[ev.event_id] = f"decision {d} already converted or its attribution window closed"
                elif ev.offer_cost > room[d] + 1e-9:
                    rejected[ev.event_id] = (
                        f"offer cost ${ev.offer_cost:,.2f} exceeds what decision {d} reserved"
                    )
                else:
                    converting.add(d)
                    accepted.append(ev)
                    batch_ids.add(ev.event_id)
            else:
                accepted.append(ev)
                batch_ids.add(ev.event_id)
        if accepted:
            kinds = {k.name.lower(): k for k in EventKind}
            ids = np.array([e.decision_id for e in accepted], dtype=np.int64)
            batch = EventBatch(
                decision_id=ids,
                customer=self.log.customer[ids],
                kind=np.array([kinds[e.kind] for e in accepted], dtype=np.int8),
                iteration=np.full(ids.shape, self.t, np.int64),
                revenue=np.array([e.revenue for e in accepted]),
                offer_cost=np.array([e.offer_cost for e in accepted]),
            )
            self._ingest(batch)
            self._carry.append(batch)  # the policy learns from them at its next update
            self._seen_event_ids.update(e.event_id for e in accepted)
            if self.cost_to_goal is None and self.goal_reached:
                self.cost_to_goal = self.ledger.spent
        return IngestResult([e.event_id for e in accepted], duplicates, rejected)

    def _by_decision(
        self, events: list[EventIn], rejected: dict[str, str], received_at: list[float] | None = None
    ) -> list[EventIn | None]:
        """Per event, the event pointed at its decision: given, or for the owner's ``customer_id``
        that customer's latest decision (sent before the event arrived, with a schedule);
        ``None`` for an unknown customer or one never contacted (its reason in ``rejected``)."""
        given: list[EventIn | None] = list(events)
        by_customer = [k for k, e in enumerate(events) if e.decision_id is None]
        if by_customer:
            index_of = getattr(self.sim, "index_of", None)
            wanted = [str(events[k].customer_id) for k in by_customer]
            idx = index_of(wanted) if index_of is not None else np.full(len(wanted), -1, np.int64)
            # Each customer's decisions, in decision order, with when they were sent (one sort).
            order = np.argsort(self.log.customer, kind="stable")
            by_cust = self.log.customer[order]
            clock = np.asarray([*self.times, self.now or 0.0], dtype=np.float64)
            sent = clock[np.minimum(self.log.iteration[order], clock.size - 1)]
            timed = received_at is not None and self.spec.schedule is not None
            for k, cid, i in zip(by_customer, wanted, idx.tolist(), strict=True):
                lo, hi = np.searchsorted(by_cust, i, "left"), np.searchsorted(by_cust, i, "right")
                if timed and received_at is not None:  # the latest sent before the event arrived
                    hi = lo + int(np.searchsorted(sent[lo:hi], received_at[k], "right"))
                d = int(self.log.decision_id[order[hi - 1]]) if i >= 0 and hi > lo else -1
                if d < 0:
                    what = "is not in the campaign's audience" if i < 0 else "was never contacted"
                    rejected[events[k].event_id] = f"customer {cid!r} {what}"
                    given[k] = None
                else:
                    given[k] = events[k].model_copy(update={"decision_id": d, "customer_id": None})
        return given

    def _sent_time(self, decision_id: int) -> float:
        """When a decision was sent, on the schedule's clock (epoch seconds)."""
        it = int(self.log.iteration[decision_id])
        return self.times[it] if it < len(self.times) else float(self.now or 0.0)

    def _freed(self, ids: IntArray) -> None:
        """Take the released reservations' remainders off their customers' committed cost."""
        remainder = self.log.reserved[ids] - self.ledger.charged(ids)
        np.subtract.at(self.customer_cost, self.log.customer[ids], remainder)

    def _expire(self) -> None:
        """Close attribution and release the reservations whose window has closed."""
        self._freed(self.ledger.close(self.t).released)

    @property
    def event_log(self) -> EventBatch:
        """Every event observed so far, in arrival order."""
        if len(self._events) > 1:
            self._events = [EventBatch.concat(self._events)]
        return self._events[0] if self._events else EventBatch.empty()
