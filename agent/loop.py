"""The campaign loop: choose, reserve, send, observe, learn, check the stop rules.

One :class:`Campaign` runs one campaign against any channel that follows the simulator
protocol (:class:`simulators.types.CustomerSimulator`).

Example:
    >>> from agent import Campaign, CampaignSpec, Goal
    >>> from policies import make_policy
    >>> from simulators import Simulator, load_scenario
    >>> sim = Simulator(load_scenario("retail"), n_customers=3000)
    >>> spec = CampaignSpec(goal=Goal(target=50), budget=100, customers_per_iteration=1000)
    >>> report = Campaign(spec, sim, make_policy("fixed:email/bestsellers/none", sim), seed=0).run()
    >>> report.spend <= report.budget
    True
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agent.channels import Channel, ChannelError, SendBatch, SimulatedChannel
from agent.control import Alert, AlertCallback, AuditRecord, CampaignUpdate, EventIn, IngestResult, Status
from agent.feedback import DelayTriangle
from agent.report import CampaignReport, DecisionLog, IterationRecord
from agent.spec import CampaignSpec
from policies.base import DecisionContext, Decisions, Feedback, Policy
from simulators.money import CampaignLedger, LedgerError
from simulators.types import NO_CONTACT, CustomerSimulator, EventBatch, EventKind, FloatArray, IntArray

IterationCallback = Callable[[IterationRecord], None]


@dataclass(frozen=True)
class _Plan:
    customers: NDArray[np.int64]
    ctx: DecisionContext
    dec: Decisions
    chosen: NDArray[np.int64]
    contact: NDArray[np.int64]


@dataclass(frozen=True)
class DryRun:
    """The next iteration, decided and priced but not sent."""

    iteration: int
    candidates: int
    contacts: int
    contacts_by_arm: dict[str, int]
    send_cost: float
    """Dollars the sends would cost."""
    worst_case_cost: float
    """Dollars the ledger would reserve (send cost plus every offer's cap)."""
    budget_available: float


@dataclass(frozen=True)
class Forecast:
    """Pre-launch forecast from simulated campaigns (see :meth:`Campaign.forecast`)."""

    runs: int
    p_goal_within_budget: float
    cost_to_goal_median: float | None
    """Median over the runs that reached the goal (``None`` if none did)."""
    cost_to_goal_q25: float | None
    cost_to_goal_q75: float | None
    spend_median: float


@dataclass(frozen=True)
class ExternalContacts:
    """Contacts made outside the loop (the API's real-time decisions), for the loop's caps.

    Attributes:
        customers: ``(k,)`` the customer of each contact.
        times: ``(k,)`` the campaign clock (:attr:`Campaign.t`) at each contact.
        committed: ``(k,)`` dollars each contact spent plus still holds.
        channel_committed: ``(n_channels,)`` dollars spent plus held by every external contact,
            by channel (``customers`` may list only the customers about to be decided).
        opted_out: ``(m, 2)`` ``(customer, channel)`` pairs that unsubscribed.
    """

    customers: NDArray[np.int64]
    times: NDArray[np.int64]
    committed: FloatArray
    channel_committed: FloatArray
    opted_out: NDArray[np.int64]


class CampaignError(ValueError):
    """A campaign that cannot run as specified (message says what to change)."""


class Campaign:
    """One campaign: a spec, an audience (simulator), a policy, a channel and a seed.

    Args:
        spec: goal, budget and limits.
        simulator: the customer world: audience, features and reachability (and, through the
            default channel, the responses); it is reset with a seed drawn from ``seed``.
        policy: decides arms; may learn in :meth:`Policy.update`.
        seed: root seed of the run; the same seed gives the same campaign, bit for bit.
        scenario_name: label for the report.
        channel: where the decisions go (:mod:`agent.channels`); default: the simulator.
        campaign_id: names the batches handed to the channel (default: ``scenario_name``).
    """

    _external: ExternalContacts | None = None
    """Contacts made outside the loop (see :meth:`set_external_contacts`); a class default, so
    campaigns pickled before it existed load unchanged."""

    def __init__(
        self,
        spec: CampaignSpec,
        simulator: CustomerSimulator,
        policy: Policy,
        seed: int | None = None,
        scenario_name: str = "",
        channel: Channel | None = None,
        campaign_id: str = "",
    ) -> None:
        self.spec = spec
        self.channel: Channel = channel if channel is not None else SimulatedChannel(simulator)
        self.sim = simulator
        self.policy = policy
        self.seed = seed
        self.scenario_name = scenario_name or str(getattr(getattr(simulator, "scenario", None), "name", ""))
        # Children are keyed by index: adding the holdout's stream leaves the first two unchanged.
        sim_seq, loop_seq, holdout_seq = np.random.SeedSequence(seed).spawn(3)
        self.sim.reset(seed=int(sim_seq.generate_state(1)[0]))
        self.rng = np.random.default_rng(loop_seq)
        arms = simulator.arms
        self.allowed = self._allowed_mask(spec)
        # Optional protocol member: channels without delayed conversions need not define it.
        max_delay = int(getattr(simulator, "max_delay", 0))
        self.window = spec.attribution_window if spec.attribution_window is not None else max_delay
        if self.window < max_delay:
            raise CampaignError(
                f"attribution_window {self.window} is shorter than the channel's longest conversion "
                f"delay {max_delay}: offers redeemed later could not be paid from a reservation"
            )
        self.channel_cap = self._channel_caps(spec)
        bad = [c for c in spec.suppression if not 0 <= c < simulator.n_customers]
        if bad:
            raise CampaignError(
                f"suppression: unknown customer id(s) {sorted(bad)[:5]}; "
                f"ids are 0..{simulator.n_customers - 1}"
            )
        self.suppressed = np.zeros(simulator.n_customers, dtype=bool)
        self.suppressed[list(spec.suppression)] = True
        n_all = simulator.n_customers
        self.holdout = np.zeros(n_all, dtype=bool)
        if spec.holdout > 0:
            k = round(spec.holdout * n_all)
            if k < 1 or k >= n_all:
                raise CampaignError(
                    f"holdout {spec.holdout} of {n_all} customers leaves an empty group; "
                    "use a larger audience"
                )
            self.holdout[np.random.default_rng(holdout_seq).choice(n_all, size=k, replace=False)] = True
        # Every conversion per customer (attributed or organic): the holdout comparison counts them all.
        self.customer_conversions = np.zeros(n_all, dtype=np.int64)
        self.customer_revenue = np.zeros(n_all)
        self.ledger = CampaignLedger(spec.budget, self.window)
        self.log = DecisionLog()
        self._events: list[EventBatch] = []
        self._seen_event_ids: set[str] = set()
        self.history: list[IterationRecord] = []
        n = simulator.n_customers
        self.customer_cost = np.zeros(n)  # spent + reserved per customer
        self.customer_contacts = np.zeros(n, dtype=np.int64)
        self.last_contact = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._n_channels = len(arms.channel_names)
        self.spend_by_channel = np.zeros(self._n_channels)
        self.offer_cost_by_offer = np.zeros(len(arms.offer_names))
        self.conversions_by_arm = np.zeros(len(arms), dtype=np.int64)  # attributed
        self.revenue_by_arm = np.zeros(len(arms))
        self.funnel = dict.fromkeys(("delivered", "opened", "clicked", "unsubscribed"), 0)
        self.conversions = 0
        self.revenue = 0.0
        self.cost_to_goal: float | None = None
        self.stop_reason: str | None = None
        self.status: Status = "ready"
        self.audit_log: list[AuditRecord] = []
        self.alerts: list[Alert] = []
        self._alert_callbacks: list[AlertCallback] = []
        self._alerted: set[float | str] = set()
        self.iterations = 0
        self.t = 0  # the clock: iterations elapsed, holds and the drain included
        self.campaign_id = campaign_id or self.scenario_name
        self.triangle = DelayTriangle(self.window)
        self._carry: list[EventBatch] = []  # events seen in holds, for the policy's next update
        self._undelivered: list[SendBatch] = []

    # -- spec-derived masks --------------------------------------------------------------------
    def _allowed_mask(self, spec: CampaignSpec) -> NDArray[np.bool_]:
        arms = self.sim.arms
        allowed = np.ones(len(arms), dtype=bool)
        if spec.allowed_arms is not None:
            try:
                idx = [arms.index(a) for a in spec.allowed_arms]
            except ValueError as err:
                raise CampaignError(f"allowed_arms: {err}") from None
            allowed[1:] = False
            allowed[idx] = True
            allowed[NO_CONTACT] = True
        if spec.max_offer_value is not None:
            over = arms.max_offer_cost > spec.max_offer_value + 1e-12
            named = [arms.names[i] for i in np.flatnonzero(over & allowed)] if spec.allowed_arms else []
            if named:
                raise CampaignError(
                    f"allowed_arms: {named[:3]} offer more than max_offer_value ${spec.max_offer_value:,.2f}"
                )
            allowed &= ~over
        return allowed

    def _channel_caps(self, spec: CampaignSpec) -> FloatArray:
        names = list(self.sim.arms.channel_names)
        caps = np.full(len(names), np.inf)
        for channel, cap in (spec.channel_budgets or {}).items():
            if channel not in names:
                raise CampaignError(f"channel_budgets: unknown channel {channel!r}; channels are {names}")
            caps[names.index(channel)] = cap
        return caps

    # -- state ---------------------------------------------------------------------------------
    @property
    def achieved(self) -> float:
        """Goal metric reached so far (observed; for ``incremental_conversions`` the estimate)."""
        metric = self.spec.goal.metric
        if metric == "incremental_conversions":
            inc = self.incremental()
            return 0.0 if inc is None else max(inc["incremental_conversions"], 0.0)
        return float(self.conversions if metric == "conversions" else self.revenue)

    def incremental(self) -> dict[str, float] | None:
        """Incremental conversions and revenue of the campaign, with 95% confidence intervals.

        The treated group is everyone not in the holdout (contacted or not: an intent-to-treat
        comparison, so the policy's targeting cannot bias it). With per-customer totals ``y``,
        the estimate is ``n_treated * (mean(y | treated) - mean(y | holdout))`` and its standard
        error ``n_treated * sqrt(var_t / n_t + var_h / n_h)`` (normal approximation).

        Returns:
            ``None`` without a holdout; else the estimates, ``*_ci_low``/``*_ci_high``, and the
            group sizes.
        """
        if not self.holdout.any():
            return None
        h, t = self.holdout, ~self.holdout
        n_t, n_h = int(t.sum()), int(h.sum())
        out: dict[str, float] = {"treated_customers": n_t, "holdout_customers": n_h}
        for name, y in (("conversions", self.customer_conversions), ("revenue", self.customer_revenue)):
            yt, yh = y[t].astype(np.float64), y[h].astype(np.float64)
            diff = yt.mean() - yh.mean()
            se = np.sqrt(yt.var(ddof=1) / n_t + yh.var(ddof=1) / n_h) if min(n_t, n_h) > 1 else np.inf
            out[f"incremental_{name}"] = float(n_t * diff)
            out[f"incremental_{name}_ci_low"] = float(n_t * (diff - 1.96 * se))
            out[f"incremental_{name}_ci_high"] = float(n_t * (diff + 1.96 * se))
        return out

    @property
    def goal_reached(self) -> bool:
        return self.achieved >= self.spec.goal.target

    def _cheapest_send(self) -> float:
        worst = self.sim.arms.worst_case_cost
        contact = self.allowed.copy()
        contact[NO_CONTACT] = False
        return float(worst[contact].min()) if contact.any() else float("inf")

    def check_stop(self) -> str | None:
        """The stop reason if the campaign must not start another iteration, else ``None``."""
        if self.goal_reached:
            return "goal_reached"
        if self.iterations >= self.spec.max_iterations:
            return "max_iterations"
        # Money held by open reservations comes back when their windows close, so the campaign
        # is out of budget only when even the unspent remainder cannot pay for one send.
        if self.ledger.budget - self.ledger.spent < self._cheapest_send():
            return "budget_exhausted"
        return None

    # -- events --------------------------------------------------------------------------------
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
            out["conversions"] = int(ids.size)
            out["revenue"] = float(rev.sum())
            out["spend"] = float(cost.sum())
        return out

    def ingest_events(self, events: list[EventIn]) -> IngestResult:
        """Take response events from a real channel: idempotent by event id, in any order.

        Each event is judged on its own: an unknown decision, or a conversion after its decision's
        attribution window closed or costing more than its reservation still holds, is rejected
        with the reason; a repeated event id is a duplicate; the rest are applied like simulator
        events (the ledger settles offer costs, the funnel counts, the policy learns on the next
        update).
        """
        accepted: list[EventIn] = []
        duplicates: list[str] = []
        rejected: dict[str, str] = {}
        n = len(self.log)
        converting: set[int] = set()
        batch_ids: set[str] = set()
        # What each converting decision's reservation still holds, from one vectorized ledger read.
        conv = np.unique([e.decision_id for e in events if e.kind == "converted" and e.decision_id < n])
        held = self.log.reserved[conv] - self.ledger.charged(conv) if conv.size else np.zeros(0)
        room = dict(zip(conv.tolist(), held.tolist(), strict=True))
        open_ = dict(zip(conv.tolist(), self.ledger.attributable(conv).tolist(), strict=True))
        for ev in events:  # a loop over one request's events (validation per item), not over customers
            if ev.event_id in self._seen_event_ids or ev.event_id in batch_ids:
                duplicates.append(ev.event_id)
            elif ev.decision_id >= n:
                rejected[ev.event_id] = f"unknown decision {ev.decision_id}"
            elif ev.kind == "converted":
                d = ev.decision_id
                if not open_[d] or d in converting:
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
            self._seen_event_ids.update(e.event_id for e in accepted)
            if self.cost_to_goal is None and self.goal_reached:
                self.cost_to_goal = self.ledger.spent
        return IngestResult([e.event_id for e in accepted], duplicates, rejected)

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

    # -- caps ----------------------------------------------------------------------------------
    def set_external_contacts(self, contacts: ExternalContacts | None) -> None:
        """Count contacts made outside the loop (the API's real-time decisions) toward every cap
        from now on: frequency cap, per-customer cost cap, channel budgets and opt-outs. Each
        call replaces the previous set; ``None`` forgets it."""
        self._external = contacts

    def _capped(self, customers: np.ndarray, t: int) -> NDArray[np.bool_]:
        """``(n,)`` mask of candidates who may not be contacted now: suppressed, or over the
        frequency cap (``max_contacts`` within the last ``window_iterations``, or closer than
        ``min_gap`` to their last contact), the loop's contacts and external ones alike."""
        out: NDArray[np.bool_] = self.suppressed[customers] | self.holdout[customers]
        cap, ext = self.spec.frequency_cap, self._external
        who, when = self.log.customer, self.log.iteration
        last = self.last_contact[customers]
        if ext is not None and ext.customers.size:
            who, when = np.concatenate([who, ext.customers]), np.concatenate([when, ext.times])
            ext_last = np.full(self.sim.n_customers, np.iinfo(np.int64).min // 2, dtype=np.int64)
            np.maximum.at(ext_last, ext.customers, ext.times)
            last = np.maximum(last, ext_last[customers])
        if cap is None or who.size == 0:
            return out
        out |= t - last < cap.min_gap
        recent = when > t - cap.window_iterations
        counts = np.bincount(who[recent], minlength=self.sim.n_customers)
        out |= counts[customers] >= cap.max_contacts
        return out

    def channel_committed(self) -> FloatArray:
        """``(n_channels,)`` dollars spent plus still reserved by the decisions on each channel
        (external contacts included)."""
        arms = self.sim.arms
        ext = np.zeros(self._n_channels) if self._external is None else self._external.channel_committed
        if len(self.log) == 0:
            return ext.astype(np.float64)
        ids = self.log.decision_id
        # An open reservation holds its whole worst case (charged + remainder); a closed one its charges.
        committed = np.where(self.ledger.is_open(ids), self.log.reserved, self.ledger.charged(ids))
        out = np.bincount(arms.channel[self.log.arm], weights=committed, minlength=self._n_channels)
        return (out + ext).astype(np.float64)

    def _fits_channels(self, worst: FloatArray, chosen: np.ndarray) -> np.ndarray:
        """Mask of the contacts (in priority order) whose worst case fits their channel's cap."""
        if not np.isfinite(self.channel_cap).any():
            return np.ones(chosen.shape, dtype=bool)
        ch = self.sim.arms.channel[chosen]
        room = self.channel_cap - self.channel_committed()
        fits = np.ones(chosen.shape, dtype=bool)
        for k in np.flatnonzero(np.isfinite(self.channel_cap)):  # a loop over channels, not customers
            on = np.flatnonzero(ch == k)
            fits[on] = np.cumsum(worst[chosen[on]]) <= room[k] + 1e-9
        return fits

    # -- one iteration -------------------------------------------------------------------------
    def _context(self, customers: NDArray[np.int64]) -> DecisionContext:
        """The policy's view of ``(n,)`` candidates, with every rule and cap in the arm mask."""
        spec, sim, arms = self.spec, self.sim, self.sim.arms
        worst = arms.worst_case_cost
        mask = sim.arm_mask(customers) & self.allowed[None, :]
        ext = self._external
        if ext is not None and ext.opted_out.size:  # unsubscribes the channel did not report itself
            blocked = np.zeros((sim.n_customers, self._n_channels), dtype=bool)
            blocked[ext.opted_out[:, 0], ext.opted_out[:, 1]] = True
            mask[:, 1:] &= ~blocked[customers][:, arms.channel[1:]]
        if spec.max_cost_per_customer is not None:
            room = spec.max_cost_per_customer - self.customer_cost[customers]
            if ext is not None and ext.customers.size:
                room -= np.bincount(ext.customers, ext.committed, minlength=sim.n_customers)[customers]
            mask &= worst[None, :] <= room[:, None] + 1e-12
        mask[self._capped(customers, self.t), 1:] = False
        mask[:, NO_CONTACT] = True
        return DecisionContext(
            customers=customers,
            features=sim.features(customers),
            mask=mask,
            arms=arms,
            iteration=self.iterations,
            iterations_left=spec.max_iterations - self.iterations,
            budget_available=self.ledger.available,
            goal_metric="revenue" if spec.goal.metric == "revenue" else "conversions",
            goal_remaining=max(spec.goal.target - self._counted(), 0.0),
            attribution_window=self.window,
        )

    def _act(self, ctx: DecisionContext) -> tuple[Decisions, NDArray[np.int64]]:
        """The policy's decisions and the arms the loop allows (invalid or masked: no contact)."""
        dec = self.policy.act(ctx)
        chosen = np.asarray(dec.arms, dtype=np.int64)
        if chosen.shape != ctx.customers.shape:
            raise CampaignError(
                f"policy {self.policy.name} returned {chosen.shape} arms for {ctx.customers.shape} customers"
            )
        # The loop enforces reachability, allowed arms and caps whatever the policy asked for.
        valid = (chosen >= 0) & (chosen < len(self.sim.arms))
        chosen = np.where(valid, chosen, NO_CONTACT)
        chosen = np.where(ctx.mask[np.arange(chosen.size), chosen], chosen, NO_CONTACT)
        return dec, chosen

    def decide(self, customers: NDArray[np.int64]) -> tuple[NDArray[np.int64], FloatArray]:
        """Real-time decisions outside the iteration loop (the API's ``/decide``).

        Args:
            customers: ``(n,)`` customer indices.

        Returns:
            ``(n,)`` arms after every rule and cap (no contact where none applies; channel
            budgets taken in customer order) and their pscores. Nothing is reserved or logged
            here: the caller reserves each arm's worst case before acting on it, and reports the
            contact back with :meth:`set_external_contacts`. The policy's random stream advances.

        Raises:
            CampaignError: an unknown customer.
        """
        customers = np.asarray(customers, dtype=np.int64)
        if customers.size and (customers.min() < 0 or customers.max() >= self.sim.n_customers):
            raise CampaignError(f"customer ids are 0..{self.sim.n_customers - 1}")
        dec, chosen = self._act(self._context(customers))
        contact = np.flatnonzero(chosen != NO_CONTACT)
        fits = self._fits_channels(self.sim.arms.worst_case_cost, chosen[contact])
        chosen[contact[~fits]] = NO_CONTACT
        return chosen, np.asarray(dec.pscores, dtype=np.float64)

    def _plan(self) -> _Plan:
        """Choose this iteration's candidates and arms and apply every rule and cap (no money moves)."""
        spec, sim, arms = self.spec, self.sim, self.sim.arms
        n_cand = min(spec.customers_per_iteration, sim.n_customers)
        customers = np.sort(self.rng.choice(sim.n_customers, size=n_cand, replace=False))
        worst = arms.worst_case_cost
        ctx = self._context(customers)
        dec, chosen = self._act(ctx)
        # Budget: keep contacts in priority order while their worst case fits.
        contact = np.flatnonzero(chosen != NO_CONTACT)
        if dec.priority is not None and contact.size:
            contact = contact[np.argsort(-np.asarray(dec.priority)[contact], kind="stable")]
        fits = self.ledger.affordable(worst[chosen[contact]]) & self._fits_channels(worst, chosen[contact])
        chosen[contact[~fits]] = NO_CONTACT
        contact = contact[fits]
        # The last wave: no more contacts than the rest of the goal needs (with a margin).
        needed = self._contacts_needed()
        if needed < contact.size:
            chosen[contact[needed:]] = NO_CONTACT
            contact = contact[:needed]
        contact = np.sort(contact)
        return _Plan(customers=customers, ctx=ctx, dec=dec, chosen=chosen, contact=contact)

    def dry_run(self) -> DryRun:
        """Decide and price the next iteration without sending anything or changing the campaign.

        The decision runs on a copy (policy, random streams and ledger included), so the real
        iteration that follows is unaffected.
        """
        plan = copy.deepcopy(self)._plan()
        arms = self.sim.arms
        a = plan.chosen[plan.contact]
        by_arm = np.bincount(a, minlength=len(arms))
        return DryRun(
            iteration=self.iterations,
            candidates=int(plan.customers.size),
            contacts=int(a.size),
            contacts_by_arm={arms.names[i]: int(k) for i, k in enumerate(by_arm) if k},
            send_cost=float(arms.send_cost[a].sum()),
            worst_case_cost=float(arms.worst_case_cost[a].sum()),
            budget_available=self.ledger.available,
        )

    def step(self) -> IterationRecord:
        """Run one iteration (decide, reserve, send, observe, learn); call :meth:`check_stop` first."""
        arms = self.sim.arms
        t = self.t
        spent_before = self.ledger.spent
        plan = self._plan()
        customers, ctx, dec, chosen, contact = plan.customers, plan.ctx, plan.dec, plan.chosen, plan.contact
        n_cand = customers.size
        worst = arms.worst_case_cost
        c, a = customers[contact], chosen[contact]
        pscores = np.asarray(dec.pscores, dtype=np.float64)
        # Charged before delivery: a send whose fate is unknown (a timeout) counts as spent.
        ids = self.ledger.send(t, worst[a], arms.send_cost[a])
        self.customer_cost[c] += worst[a]
        self.customer_contacts[c] += 1
        self.last_contact[c] = t
        self.log.append(
            decision_id=ids,
            iteration=np.full(ids.shape, t, np.int64),
            customer=c,
            arm=a,
            pscore=pscores[contact],
            reserved=worst[a],
        )
        self.triangle.add_sends(t, int(ids.size))
        np.add.at(self.spend_by_channel, arms.channel[a], arms.send_cost[a])
        self._freed(ids[~self.ledger.is_open(ids)])  # no offer: released at once by the ledger
        events = (
            self._deliver(SendBatch(self.campaign_id, t, ids, c, a, pscores[contact])) if ids.size else None
        )
        got = self._ingest(events if events is not None else EventBatch.empty())
        later, got_later = self._tick()
        sent = Decisions(arms=chosen, pscores=pscores, priority=dec.priority)
        decision_ids = np.full(n_cand, -1, dtype=np.int64)
        decision_ids[contact] = ids
        seen = [*self._carry, *([events] if events is not None else []), later]
        self._carry = []
        self.policy.update(Feedback(ctx, sent, decision_ids, EventBatch.concat(seen)))
        by_channel = np.bincount(arms.channel[a], minlength=self._n_channels)
        return self._record(t, n_cand, by_channel, got, got_later, spent_before)

    def hold(self) -> IterationRecord:
        """Let one iteration pass without sending: the conversions still expected from recent
        sends would reach the goal (see :meth:`projected`), so another wave could overshoot it."""
        t, spent_before = self.t, self.ledger.spent
        later, got_later = self._tick()
        self._carry.append(later)
        return self._record(t, 0, np.zeros(self._n_channels, np.int64), {}, got_later, spent_before)

    def _tick(self) -> tuple[EventBatch, dict[str, float]]:
        """Close an iteration of the campaign (see :meth:`_advance`)."""
        later, got = self._advance()
        self.iterations += 1
        return later, got

    def _advance(self) -> tuple[EventBatch, dict[str, float]]:
        """Let the clock move on: the channel's late events arrive, expired windows close."""
        later = self.channel.advance()
        self.t += 1
        got = self._ingest(later)
        self._expire()
        if self.cost_to_goal is None and self.goal_reached:
            self.cost_to_goal = self.ledger.spent
        return later, got

    def _record(
        self,
        t: int,
        n_cand: int,
        by_channel: NDArray[np.int64],
        got: dict[str, float],
        got_later: dict[str, float],
        spent_before: float,
    ) -> IterationRecord:
        proj = self.projected()
        rec = IterationRecord(
            iteration=t,
            candidates=n_cand,
            sends=int(by_channel.sum()),
            sends_by_channel={
                n: int(k) for n, k in zip(self.sim.arms.channel_names, by_channel, strict=True)
            },
            delivered=int(got.get("delivered", 0) + got_later.get("delivered", 0)),
            opened=int(got.get("opened", 0) + got_later.get("opened", 0)),
            clicked=int(got.get("clicked", 0) + got_later.get("clicked", 0)),
            conversions=int(got.get("conversions", 0) + got_later.get("conversions", 0)),
            revenue=float(got.get("revenue", 0.0) + got_later.get("revenue", 0.0)),
            unsubscribed=int(got.get("unsubscribed", 0) + got_later.get("unsubscribed", 0)),
            spend=self.ledger.spent - spent_before,
            spend_total=self.ledger.spent,
            reserved=self.ledger.reserved,
            conversions_total=self.conversions,
            revenue_total=self.revenue,
            goal_progress=min(self.achieved / self.spec.goal.target, 1.0),
            conversions_projected=proj["conversions_projected"],
            revenue_projected=proj["revenue_projected"],
        )
        self.history.append(rec)
        return rec

    # -- delivery ------------------------------------------------------------------------------
    def _deliver(self, batch: SendBatch) -> EventBatch | None:
        """Hand a batch to the channel; on failure keep it for a retry and pause the campaign."""
        try:
            return self.channel.deliver(batch)
        except ChannelError as err:
            self._undelivered.append(batch)
            self._channel_failed(batch, err)
            return None

    def _channel_failed(self, batch: SendBatch, err: ChannelError) -> None:
        if self.status in ("ready", "running"):
            self.status = "paused"
        self.audit_log.append(
            AuditRecord(action="channel_failed", iteration=self.iterations, reason=str(err))
        )
        self._raise(Alert("channel_failed", self.iterations, float(len(batch)), str(err)))

    def _redeliver(self) -> bool:
        """Retry the batches a channel failed to take (same idempotency keys); ``True`` when all went."""
        while self._undelivered:
            batch = self._undelivered[0]
            try:
                events = self.channel.deliver(batch)
            except ChannelError as err:
                self._channel_failed(batch, err)
                return False
            self._undelivered.pop(0)
            self._ingest(events)
            self._carry.append(events)
        return True

    # -- delayed feedback ----------------------------------------------------------------------
    def projected(self) -> dict[str, float]:
        """Observed conversions and revenue plus what recent sends are still expected to bring.

        The pending part is the chain-ladder projection of :class:`agent.feedback.DelayTriangle`
        over the cohorts whose attribution window is still open.
        """
        conv, rev = self.triangle.pending(self.t)
        return {
            "conversions_pending": conv,
            "revenue_pending": rev,
            "conversions_projected": self.conversions + conv,
            "revenue_projected": self.revenue + rev,
        }

    def _counted(self) -> float:
        """The goal metric as the stop rule and the policy see it: observed plus pending when
        ``spec.stop_on_projected`` (for ``conversions`` and ``revenue``), else observed."""
        metric = self.spec.goal.metric
        if not self.spec.stop_on_projected or metric == "incremental_conversions":
            return self.achieved
        return self.projected()["conversions_projected" if metric == "conversions" else "revenue_projected"]

    def _contacts_needed(self, margin: float = 1.25) -> int:
        """Contacts enough to reach the rest of the goal at the yield observed so far (projected
        conversions or revenue per send, over every cohort), times ``margin``; unbounded when
        there is no yield to go by or the projection is off."""
        metric = self.spec.goal.metric
        sends = int(self.triangle.sends.sum())
        if not self.spec.stop_on_projected or metric == "incremental_conversions" or sends == 0:
            return np.iinfo(np.int64).max
        counted = self._counted()
        per_send = counted / sends
        if per_send <= 0:
            return np.iinfo(np.int64).max
        remaining = max(self.spec.goal.target - counted, 0.0)
        return int(np.ceil(margin * remaining / per_send))

    def _goal_in_flight(self) -> bool:
        """The goal is not reached yet, but the projection says recent sends will reach it."""
        return not self.goal_reached and self._counted() >= self.spec.goal.target

    def drain(self) -> None:
        """After the last send: let delayed conversions arrive and close every reservation."""
        for _ in range(self.window):
            # Conversions still count while any window is open, offer reservations or not.
            if self.ledger.open_ids().size == 0 and self.ledger.n_attributable == 0:
                break
            self._advance()
        self._freed(self.ledger.drain().released)

    def run(self, on_iteration: IterationCallback | None = None) -> CampaignReport:
        """Run iterations until a stop rule fires (then drain) or the campaign is paused or
        cancelled (e.g. from ``on_iteration``), and report. A paused campaign continues with
        :meth:`resume` and another :meth:`run`.

        While the conversions still expected from recent sends would reach the goal, iterations
        pass without sending (:meth:`hold`); sending resumes if they fall short.
        """
        if self.status in ("completed", "cancelled"):
            raise CampaignError(f"the campaign is {self.status}; it cannot run again")
        if self.status == "paused":
            raise CampaignError("the campaign is paused; resume it first")
        self.status = "running"
        if not self._redeliver():
            return self.report()
        while self.status == "running" and (rec := self.tick()) is not None:
            if on_iteration is not None:
                on_iteration(rec)
        return self.report()

    def tick(self) -> IterationRecord | None:
        """One unit of :meth:`run` for a running campaign: an iteration (sent or held), or
        ``None`` when a stop rule fired (the campaign is then drained and completed).

        Raises:
            CampaignError: the campaign is not running.
        """
        if self.status != "running":
            raise CampaignError(f"the campaign is {self.status}, not running")
        reason = self.check_stop()
        if reason is not None:
            self.stop_reason = reason
            self.status = "completed"
            self.drain()
            return None
        rec = self.hold() if self._goal_in_flight() else self.step()
        self._check_alerts()
        return rec

    def start(self, reason: str = "started") -> None:
        """Launch a ready campaign (then :meth:`tick` or :meth:`run`).

        Raises:
            CampaignError: the campaign is not ready.
        """
        self._transition("start", ("ready",), "running", reason)

    # -- forecast ------------------------------------------------------------------------------
    def forecast(self, runs: int = 10) -> Forecast:
        """Before launch: how much reaching the goal is expected to cost, and how likely it is.

        Simulates ``runs`` whole campaigns with this spec and a copy of this policy, each on a
        fresh draw of the simulated world (seeds derived from this campaign's seed), and reads
        off the cost to goal. The campaign itself is not touched.

        Raises:
            CampaignError: the campaign has already started (the forecast is a pre-launch tool).
        """
        if self.status != "ready" or self.iterations:
            raise CampaignError("forecast is available before launch only (status 'ready')")
        if runs < 1:
            raise CampaignError("forecast needs at least one run")
        seeds = np.random.SeedSequence(self.seed).spawn(3 + runs)[3:]
        costs, reached, spends = [], 0, []
        for child in seeds:
            # One deepcopy for both: a policy that holds the simulator (the oracle) keeps holding this one.
            sim, policy = copy.deepcopy((self.sim, self.policy))
            rep = Campaign(self.spec, sim, policy, seed=int(child.generate_state(1)[0])).run()
            reached += rep.goal_reached
            spends.append(rep.spend)
            if rep.cost_to_goal is not None:
                costs.append(rep.cost_to_goal)
        q = np.percentile(costs, [25, 50, 75]).tolist() if costs else [None, None, None]
        return Forecast(
            runs=runs,
            p_goal_within_budget=reached / runs,
            cost_to_goal_median=q[1],
            cost_to_goal_q25=q[0],
            cost_to_goal_q75=q[2],
            spend_median=float(np.median(spends)),
        )

    # -- manual intervention -------------------------------------------------------------------
    def pause(self, reason: str) -> None:
        """Stop after the current iteration until :meth:`resume`.

        Raises:
            CampaignError: the campaign is not ready or running.
        """
        self._transition("pause", ("ready", "running"), "paused", reason)

    def resume(self, reason: str) -> None:
        """Continue a paused campaign (call :meth:`run` again).

        Raises:
            CampaignError: the campaign is not paused.
        """
        self._transition("resume", ("paused",), "running", reason)

    def cancel(self, reason: str) -> None:
        """End the campaign now: no more sends; open reservations are settled or released by the drain.

        Raises:
            CampaignError: the campaign is already completed or cancelled.
        """
        self._transition("cancel", ("ready", "running", "paused"), "cancelled", reason)
        self.stop_reason = "cancelled"
        self.drain()

    def _transition(self, action: str, allowed: tuple[Status, ...], to: Status, reason: str) -> None:
        if self.status not in allowed:
            raise CampaignError(
                f"cannot {action} a campaign that is {self.status}; allowed from {list(allowed)}"
            )
        self.status = to
        self.audit_log.append(AuditRecord(action=action, iteration=self.iterations, reason=reason))  # type: ignore[arg-type]

    def modify(self, update: CampaignUpdate, reason: str) -> None:
        """Change budget, goal, caps or allowed arms between iterations; all or nothing.

        Raises:
            CampaignError: the change is invalid (e.g. a budget below what is already spent plus
                reserved, an unknown arm or channel, a finished campaign); nothing is changed.
        """
        if self.status in ("completed", "cancelled"):
            raise CampaignError(f"cannot modify a campaign that is {self.status}")
        changes = update.changes()
        if not changes:
            raise CampaignError("nothing to change: give at least one field")
        try:
            spec = CampaignSpec.model_validate({**self.spec.model_dump(), **changes})
        except ValueError as err:
            raise CampaignError(str(err)) from None
        allowed = self._allowed_mask(spec)
        caps = self._channel_caps(spec)
        committed = self.channel_committed()
        over = [
            n
            for n, cap, used in zip(self.sim.arms.channel_names, caps, committed, strict=True)
            if used > cap + 1e-9
        ]
        if over:
            raise CampaignError(f"channel_budgets: below what is already spent or reserved on {over}")
        try:
            self.ledger.set_budget(spec.budget)  # the last check: it changes nothing when it fails
        except LedgerError as err:
            raise CampaignError(str(err)) from None
        self.spec, self.allowed, self.channel_cap = spec, allowed, caps
        self.audit_log.append(
            AuditRecord(action="modify", iteration=self.iterations, reason=reason, changes=changes)
        )

    # -- alerts --------------------------------------------------------------------------------
    def on_alert(self, callback: AlertCallback) -> None:
        """Call ``callback`` with every alert from now on (callbacks are not pickled)."""
        self._alert_callbacks.append(callback)

    def _check_alerts(self) -> None:
        spent = self.ledger.spent / self.ledger.budget
        for f in sorted(self.spec.alert_fractions):
            if spent >= f and f not in self._alerted:
                self._alerted.add(f)
                self._raise(Alert("budget", self.iterations, f, f"{f:.0%} of the budget is spent"))
        if self.goal_reached and "goal" not in self._alerted:
            self._alerted.add("goal")
            self._raise(Alert("goal_reached", self.iterations, self.achieved, "the goal is reached"))

    def _raise(self, alert: Alert) -> None:
        self.alerts.append(alert)
        for cb in self._alert_callbacks:
            cb(alert)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_alert_callbacks"] = []  # callables (servers, loggers) are not campaign state
        return state

    # -- report --------------------------------------------------------------------------------
    def report(self) -> CampaignReport:
        """The report as of now."""
        arms = self.sim.arms
        sends = len(self.log)
        spend = self.ledger.spent
        f = self.funnel
        margin = float(getattr(self.sim, "margin", 1.0))

        def rate(a: float, b: float) -> float:
            return float(a / b) if b else 0.0

        by_channel = (
            np.bincount(arms.channel[self.log.arm], minlength=self._n_channels)
            if sends
            else np.zeros(self._n_channels, np.int64)
        )
        channel_spend: FloatArray = self.spend_by_channel
        return CampaignReport(
            scenario=self.scenario_name,
            policy=self.policy.name,
            seed=self.seed,
            goal_metric=self.spec.goal.metric,
            goal_target=self.spec.goal.target,
            goal_reached=self.goal_reached,
            stop_reason=self.stop_reason or self.status,
            budget=self.ledger.budget,
            spend=spend,
            reserved=self.ledger.reserved,
            cost_to_goal=self.cost_to_goal,
            iterations=self.iterations,
            sends=sends,
            sends_by_channel={n: int(k) for n, k in zip(arms.channel_names, by_channel, strict=True)},
            spend_by_channel={
                n: round(float(v), 6) for n, v in zip(arms.channel_names, channel_spend, strict=True)
            },
            offer_cost_by_offer={
                n: round(float(v), 6) for n, v in zip(arms.offer_names, self.offer_cost_by_offer, strict=True)
            },
            delivered=f["delivered"],
            opened=f["opened"],
            clicked=f["clicked"],
            conversions=self.conversions,
            revenue=self.revenue,
            unsubscribed=f["unsubscribed"],
            delivery_rate=rate(f["delivered"], sends),
            open_rate=rate(f["opened"], f["delivered"]),
            click_rate=rate(f["clicked"], f["opened"]),
            conversion_rate=rate(self.conversions, sends),
            cost_per_conversion=spend / self.conversions if self.conversions else None,
            roi=(self.revenue * margin - spend) / spend if spend > 0 else None,
            goal_progress=min(self.achieved / self.spec.goal.target, 1.0),
            **self.projected(),
            channel=self.channel.name,
            max_contacts_per_customer=int(self.customer_contacts.max(initial=0)),
            max_cost_per_customer=float(self._customer_spend().max(initial=0.0)),
            history=list(self.history),
            incremental=self.incremental(),
            results_by_arm=self._results_by_arm(),
            status=self.status,
            alerts=list(self.alerts),
            audit_log=list(self.audit_log),
        )

    def _results_by_arm(self) -> dict[str, dict[str, float]]:
        """Sends, attributed conversions and revenue, and spend (charged) per arm that was sent."""
        arms = self.sim.arms
        if len(self.log) == 0:
            return {}
        sends = np.bincount(self.log.arm, minlength=len(arms))
        spend = np.bincount(
            self.log.arm, weights=self.ledger.charged(self.log.decision_id), minlength=len(arms)
        )
        return {
            arms.names[i]: {
                "sends": int(sends[i]),
                "conversions": int(self.conversions_by_arm[i]),
                "revenue": round(float(self.revenue_by_arm[i]), 2),
                "spend": round(float(spend[i]), 6),
            }
            for i in np.flatnonzero(sends)
        }

    def _customer_spend(self) -> FloatArray:
        if len(self.log) == 0:
            return np.zeros(0, dtype=np.float64)
        spent = self.ledger.charged(self.log.decision_id)
        out = np.bincount(self.log.customer, weights=spent, minlength=self.sim.n_customers)
        return out.astype(np.float64)
