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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agent.caps import CapsMixin, DryRun, ExternalContacts, allowed_mask, channel_caps
from agent.channels import Channel, ChannelError, SendBatch, SimulatedChannel
from agent.control import Alert, AlertCallback, AuditRecord, CampaignUpdate, Status
from agent.feedback import DelayTriangle
from agent.forecast import Forecast
from agent.holdout import draw_holdout
from agent.report import CampaignReport, DecisionLog, IterationRecord
from agent.reporting import ReportMixin
from agent.schedule import Clock, VirtualClock
from agent.snapshot import ChannelFactory, from_doc, to_doc
from agent.spec import CampaignSpec
from agent.state import CampaignError
from policies.base import Decisions, Feedback, Policy
from simulators.money import CampaignLedger, LedgerError, attribution_window
from simulators.types import CustomerSimulator, EventBatch

__all__ = ["Campaign", "CampaignError", "DryRun", "ExternalContacts", "Forecast", "IterationCallback"]

IterationCallback = Callable[[IterationRecord], None]


class Campaign(CapsMixin, ReportMixin):
    """One campaign: a spec, an audience (simulator), a policy, a channel and a seed.

    The lifecycle (state machine, iterations, delivery, drain, owner's interventions, alerts) is
    here; the other jobs are mixins over the shared :class:`agent.state.CampaignState`: holdout
    (:mod:`agent.holdout`), events (:mod:`agent.events`), projection and forecast
    (:mod:`agent.forecast`), planning and caps (:mod:`agent.caps`), report (:mod:`agent.reporting`).

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
        self.sim_seed = int(sim_seq.generate_state(1)[0])
        self.sim.reset(seed=self.sim_seed)
        self.rng = np.random.default_rng(loop_seq)
        arms = simulator.arms
        self.allowed = allowed_mask(spec, arms)
        # Optional protocol member: channels without delayed conversions need not define it.
        window = spec.schedule.window_iterations() if spec.schedule is not None else spec.attribution_window
        try:
            self.window = attribution_window(int(getattr(simulator, "max_delay", 0)), window)
        except ValueError as err:
            raise CampaignError(str(err)) from None
        self.channel_cap = channel_caps(spec, arms.channel_names)
        bad = [c for c in spec.suppression if not 0 <= c < simulator.n_customers]
        if bad:
            raise CampaignError(
                f"suppression: unknown customer id(s) {sorted(bad)[:5]}; "
                f"ids are 0..{simulator.n_customers - 1}"
            )
        self.suppressed = np.zeros(simulator.n_customers, dtype=bool)
        self.suppressed[list(spec.suppression)] = True
        n_all = simulator.n_customers
        self.holdout = draw_holdout(n_all, spec.holdout, holdout_seq)
        # Every conversion per customer (attributed or organic): the holdout comparison counts them all.
        self.customer_conversions = np.zeros(n_all, dtype=np.int64)
        self.customer_revenue = np.zeros(n_all)
        # Attributed conversions and revenue per customer (the report's segments add them up).
        self.customer_attributed = np.zeros(n_all, dtype=np.int64)
        self.customer_attributed_revenue = np.zeros(n_all)
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
        # The schedule's clock (epoch seconds): when each iteration ran, and when the next is due.
        self.times: list[float] = []
        self.next_due: float | None = None
        self.now: float | None = None

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
        sched = self.spec.schedule
        if sched is not None and self.now is not None and sched.ended(self.now):
            return "schedule_ended"
        return None

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
        owner_ids = getattr(self.sim, "customer_ids", None)
        batch = SendBatch(
            self.campaign_id, t, ids, c, a, pscores[contact], None if owner_ids is None else owner_ids[c]
        )
        events = self._deliver(batch) if ids.size else None
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
        self.times.append(self.now if self.now is not None else float(self.t))
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

    def drain(self) -> None:
        """After the last send: let delayed conversions arrive and close every reservation."""
        for _ in range(self.window):
            # Conversions still count while any window is open, offer reservations or not.
            if not self._windows_open():
                break
            self._advance()
        self._freed(self.ledger.drain().released)

    def run(
        self, on_iteration: IterationCallback | None = None, clock: Clock | None = None
    ) -> CampaignReport:
        """Run iterations until a stop rule fires (then drain) or the campaign is paused or
        cancelled (e.g. from ``on_iteration``), and report. A paused campaign continues with
        :meth:`resume` and another :meth:`run`.

        While the conversions still expected from recent sends would reach the goal, iterations
        pass without sending (:meth:`hold`); sending resumes if they fall short.

        With a schedule, each tick waits on ``clock`` until it is due (default: a
        :class:`agent.schedule.VirtualClock` from the schedule's start, so a simulation runs at
        full speed through the same schedule rules).
        """
        if self.status in ("completed", "cancelled"):
            raise CampaignError(f"the campaign is {self.status}; it cannot run again")
        if self.status == "paused":
            raise CampaignError("the campaign is paused; resume it first")
        self.status = "running"
        if not self._redeliver():
            return self.report()
        sched = self.spec.schedule
        if sched is not None and clock is None:
            clock = VirtualClock(sched.start.timestamp() if sched.start is not None else 0.0)
        while self.status == "running":
            now = None
            if sched is not None and clock is not None:
                if self.next_due is None:
                    self.next_due = sched.first_wave(clock.now())
                clock.sleep_until(self.next_due)
                now = clock.now()
            rec = self.tick(now)
            if rec is None:
                break
            if on_iteration is not None:
                on_iteration(rec)
        return self.report()

    def tick(self, now: float | None = None) -> IterationRecord | None:
        """One unit of :meth:`run` for a running campaign: an iteration (sent or held), or
        ``None`` when a stop rule fired (the campaign is then drained and completed).

        With a schedule (``spec.schedule``), ``now`` is the clock's time (epoch seconds; the
        caller ticks when :attr:`next_due` has come, see :meth:`due`); after the stop rule fires
        the open windows close in their own time: each later tick lets one iteration pass without
        sending until none is open, then the campaign completes.

        Raises:
            CampaignError: the campaign is not running.
        """
        if self.status != "running":
            raise CampaignError(f"the campaign is {self.status}, not running")
        sched = self.spec.schedule
        if sched is not None:
            self.now = now if now is not None else (self.next_due if self.next_due is not None else 0.0)
        reason = self.stop_reason if self.stop_reason is not None else self.check_stop()
        if reason is not None:
            self.stop_reason = reason
            if sched is not None and self._windows_open():
                rec = self._drain_step()
            else:
                self.status = "completed"
                self.drain()
                return None
        else:
            rec = self.hold() if self._goal_in_flight() else self.step()
            self._check_alerts()
        if sched is not None:
            assert self.now is not None
            self.next_due = sched.next_wave(self.now, self.now)
        return rec

    def due(self, now: float) -> bool:
        """Whether the next tick may run at ``now`` (always, without a schedule)."""
        return self.spec.schedule is None or self.next_due is None or now >= self.next_due

    def _windows_open(self) -> bool:
        return bool(self.ledger.open_ids().size or self.ledger.n_attributable)

    def _drain_step(self) -> IterationRecord:
        """After the stop, with a schedule: one iteration passes without sending; late events
        arrive and the windows that closed release their reservations."""
        t, spent_before = self.t, self.ledger.spent
        later, got = self._advance()
        self._carry.append(later)
        return self._record(t, 0, np.zeros(self._n_channels, np.int64), {}, got, spent_before)

    def start(self, reason: str = "started", now: float | None = None) -> None:
        """Launch a ready campaign (then :meth:`tick` or :meth:`run`); with a schedule, the first
        wave is due at its start (or ``now``, the clock's time, if later).

        Raises:
            CampaignError: the campaign is not ready.
        """
        self._transition("start", ("ready",), "running", reason)
        if self.spec.schedule is not None and now is not None:
            self.next_due = self.spec.schedule.first_wave(now)

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
        reports = []
        for child in seeds:
            # One deepcopy for both: a policy that holds the simulator (the oracle) keeps holding this one.
            sim, policy = copy.deepcopy((self.sim, self.policy))
            reports.append(Campaign(self.spec, sim, policy, seed=int(child.generate_state(1)[0])).run())
        return Forecast.of(reports)

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
        allowed = allowed_mask(spec, self.sim.arms)
        caps = channel_caps(spec, self.sim.arms.channel_names)
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

    # -- snapshot ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The campaign as plain, versioned, JSON-ready data (:mod:`agent.snapshot`): no pickled
        live objects, no channel or secrets; :meth:`from_snapshot` continues it bit for bit.

        Raises:
            CampaignError: the simulator is not the built-in :class:`simulators.Simulator`.
        """
        return to_doc(self)

    @classmethod
    def from_snapshot(cls, doc: dict[str, Any], channel: Channel | ChannelFactory | None = None) -> Campaign:
        """Rebuild a campaign from :meth:`snapshot` (any supported ``snapshot_version``, see
        :func:`agent.snapshot.migrate`).

        Args:
            doc: the snapshot.
            channel: the channel to continue on, or a function that builds it around the rebuilt
                simulator; ``None``: the simulator (:class:`agent.channels.SimulatedChannel`).

        Raises:
            CampaignError: an unsupported version or an unknown policy class.
        """
        return from_doc(cls, doc, channel)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_alert_callbacks"] = []  # callables (servers, loggers) are not campaign state
        return state
