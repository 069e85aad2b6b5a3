"""Planning and caps: which customers may get which arm now, and the wave the loop sends.

Every rule and cap the loop enforces, whatever the policy asks for: reachability and opt-outs,
the allowed arms (and the offer guardrail), the per-customer cost cap, suppression, the holdout,
the frequency cap (:meth:`CapsMixin.allowed_for`), then the channel budgets and the budget in the
policy's priority order (:meth:`CapsMixin.fits_channels`, the ledger).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agent.forecast import ProjectionMixin
from agent.spec import CampaignSpec
from agent.state import CampaignError
from policies.base import DecisionContext, Decisions
from simulators.types import NO_CONTACT, ArmTable, FloatArray


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


def allowed_mask(spec: CampaignSpec, arms: ArmTable) -> NDArray[np.bool_]:
    """``(n_arms,)`` the arms a spec allows: ``allowed_arms`` and the offer guardrail.

    Raises:
        CampaignError: an unknown arm, or an allowed arm whose offer exceeds ``max_offer_value``.
    """
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


def channel_caps(spec: CampaignSpec, channel_names: tuple[str, ...]) -> FloatArray:
    """``(n_channels,)`` dollars each channel may commit (``inf`` where the spec sets no cap).

    Raises:
        CampaignError: an unknown channel.
    """
    names = list(channel_names)
    caps = np.full(len(names), np.inf)
    for channel, cap in (spec.channel_budgets or {}).items():
        if channel not in names:
            raise CampaignError(f"channel_budgets: unknown channel {channel!r}; channels are {names}")
        caps[names.index(channel)] = cap
    return caps


class CapsMixin(ProjectionMixin):
    """Masks, caps and the planning of one wave (no money moves here)."""

    _external: ExternalContacts | None = None
    """Contacts made outside the loop (see :meth:`set_external_contacts`); a class default, so
    campaigns pickled before it existed load unchanged."""

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
        committed = self.ledger.committed(self.log.decision_id)
        out = np.bincount(arms.channel[self.log.arm], weights=committed, minlength=self._n_channels)
        return (out + ext).astype(np.float64)

    def fits_channels(self, worst: FloatArray, chosen: np.ndarray) -> np.ndarray:
        """Mask of the contacts (in priority order) whose worst case fits their channel's budget.

        Args:
            worst: ``(n_arms,)`` worst-case dollars per arm.
            chosen: ``(k,)`` arm per contact, in the order they would be sent.

        Returns:
            ``(k,)`` the contacts that fit, each channel's taken in order until its budget is full.
        """
        if not np.isfinite(self.channel_cap).any():
            return np.ones(chosen.shape, dtype=bool)
        ch = self.sim.arms.channel[chosen]
        room = self.channel_cap - self.channel_committed()
        fits = np.ones(chosen.shape, dtype=bool)
        for k in np.flatnonzero(np.isfinite(self.channel_cap)):  # a loop over channels, not customers
            on = np.flatnonzero(ch == k)
            fits[on] = np.cumsum(worst[chosen[on]]) <= room[k] + 1e-9
        return fits

    def allowed_for(self, customers: NDArray[np.int64]) -> NDArray[np.bool_]:
        """The arms each customer may be sent now: every rule and cap but the money ones that
        depend on the order of the wave (channel budgets: :meth:`fits_channels`; the budget: the
        ledger).

        Applies reachability and opt-outs (the channel's and those reported as external
        contacts), the allowed arms and the offer guardrail, the per-customer cost cap (external
        contacts' money included), suppression, the holdout and the frequency cap. The loop's
        iterations and the API's real-time ``/decide`` use this one function.

        Args:
            customers: ``(n,)`` customer indices.

        Returns:
            ``(n, n_arms)`` allowed arms; no contact is always allowed.
        """
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
        return mask

    def _context(self, customers: NDArray[np.int64]) -> DecisionContext:
        """The policy's view of ``(n,)`` candidates, with every rule and cap in the arm mask."""
        spec, arms = self.spec, self.sim.arms
        counted = self._counted()
        return DecisionContext(
            customers=customers,
            features=self.sim.features(customers),
            mask=self.allowed_for(customers),
            arms=arms,
            iteration=self.iterations,
            iterations_left=spec.max_iterations - self.iterations,
            budget_available=self.ledger.available,
            goal_metric="revenue" if spec.goal.metric == "revenue" else "conversions",
            goal_remaining=max(spec.goal.target - counted, 0.0),
            attribution_window=self.window,
            goal_pending=max(counted - self.achieved, 0.0),
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
        fits = self.fits_channels(self.sim.arms.worst_case_cost, chosen[contact])
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
        fits = self.ledger.affordable(worst[chosen[contact]]) & self.fits_channels(worst, chosen[contact])
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

    def _cheapest_send(self) -> float:
        worst = self.sim.arms.worst_case_cost
        contact = self.allowed.copy()
        contact[NO_CONTACT] = False
        return float(worst[contact].min()) if contact.any() else float("inf")
