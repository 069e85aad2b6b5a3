"""An explicit, versioned snapshot of a campaign: plain data, no pickled live objects.

:func:`to_doc` (``Campaign.snapshot()``) turns a :class:`agent.Campaign` into a JSON-ready
``dict``; :func:`from_doc` (``Campaign.from_snapshot(doc, channel=...)``) rebuilds one that
continues bit for bit. What is in it:

* ``snapshot_version`` (:data:`SNAPSHOT_VERSION`); older documents go through :func:`migrate`;
* the spec, seeds, names, the scenario (the simulator is rebuilt from it and its reset seed, then
  brought to the saved state with :meth:`simulators.Simulator.restore`: iteration, fatigue,
  opt-outs, contact history, conversions still to arrive, random state);
* the policy through :meth:`policies.base.Policy.save` (its files, base64), and which class of
  :mod:`policies` to load it with;
* the ledger, the decision log, events, history, audit log, alerts and every counter.

Arrays are ``.npy`` bytes (``allow_pickle=False``), base64-encoded. Not in it: the channel (a live
sender; its secrets stay with the caller, who passes a channel to ``from_snapshot``) and the
alert callbacks.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import tempfile
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from agent.audience import AudienceWorld
from agent.caps import ExternalContacts
from agent.channels import Channel, SendBatch, SimulatedChannel
from agent.control import Alert, AuditRecord
from agent.report import DecisionLog, IterationRecord
from agent.spec import CampaignSpec
from agent.state import CampaignError
from policies.base import Policy
from simulators.scenario import Scenario
from simulators.simulator import Simulator
from simulators.types import CustomerSimulator, EventBatch, decode_array, encode_array

if TYPE_CHECKING:
    from agent.loop import Campaign

SNAPSHOT_VERSION = 1
"""The layout :func:`to_doc` writes; :func:`migrate` upgrades every older one to it."""

ChannelFactory = Callable[[CustomerSimulator], Channel]
"""Builds the channel of a restored campaign around its rebuilt simulator."""

_ARRAYS = (
    "holdout", "suppressed", "customer_conversions", "customer_revenue", "customer_cost",
    "customer_contacts", "last_contact", "spend_by_channel", "offer_cost_by_offer",
    "conversions_by_arm", "revenue_by_arm", "customer_attributed", "customer_attributed_revenue",
)  # fmt: skip
_SCALARS = (
    "conversions", "revenue", "cost_to_goal", "stop_reason", "status", "iterations", "t",
)  # fmt: skip
_CLOCK = ("times", "next_due", "now")
"""The schedule's clock (absent from snapshots written before schedules: defaults kept)."""
_LEDGER = (
    "unlimited",
    "window",
    "_budget",
    "_spent",
    "_reserved",
    "_external",
    "_n",
    "_closed",
    "_n_attributable",
)


def _encode_all(obj: Any) -> Any:
    """Arrays anywhere in a dict/list tree as :func:`simulators.types.encode_array` text under
    ``{"npy": ...}``."""
    if isinstance(obj, np.ndarray):
        return {"npy": encode_array(obj)}
    if isinstance(obj, dict):
        return {k: _encode_all(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode_all(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode_all(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"npy"}:
            return decode_array(obj["npy"])
        return {k: _decode_all(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_all(v) for v in obj]
    return obj


def _batch(b: EventBatch) -> dict[str, Any]:
    return {f.name: getattr(b, f.name) for f in fields(EventBatch)}


def to_doc(camp: Campaign) -> dict[str, Any]:
    """The campaign as plain, JSON-ready data (see the module docstring).

    Raises:
        CampaignError: the campaign's world is neither a :class:`simulators.Simulator` nor an
            :class:`agent.audience.AudienceWorld` (only their state is known to be complete).
    """
    sim = camp.sim
    if isinstance(sim, Simulator):
        world: dict[str, Any] = {
            "scenario": sim.scenario.model_dump(mode="json"),
            "n_customers": sim.n_customers,
            "simulator": sim.state(),
        }
    elif isinstance(sim, AudienceWorld):
        world = {"audience": sim.to_doc()}
    else:
        raise CampaignError(
            "a snapshot needs the built-in simulators.Simulator or an owner's AudienceWorld "
            "(their state is explicit)"
        )
    led = camp.ledger
    n = led.n_reservations
    policy_files, policy_class = _save_policy(camp.policy)
    doc: dict[str, Any] = {
        "snapshot_version": SNAPSHOT_VERSION,
        "spec": camp.spec.model_dump(mode="json"),
        "seed": camp.seed,
        "sim_seed": camp.sim_seed,
        "scenario_name": camp.scenario_name,
        "campaign_id": camp.campaign_id,
        **world,
        "policy": {"class": policy_class, "files": policy_files},
        "rng": camp.rng.bit_generator.state,
        "arrays": {k: getattr(camp, k) for k in _ARRAYS},
        "scalars": {k: getattr(camp, k) for k in _SCALARS},
        "clock": {k: getattr(camp, k) for k in _CLOCK},
        "funnel": dict(camp.funnel),
        "ledger": {
            **{k: getattr(led, k) for k in _LEDGER},
            **{k: getattr(led, k)[:n] for k in led._PER_DECISION},
        },
        "log": {f.name: getattr(camp.log, f.name) for f in fields(DecisionLog)},
        "events": _batch(camp.event_log),
        "seen_event_ids": sorted(camp._seen_event_ids),
        "history": [asdict(r) for r in camp.history],
        "audit_log": [asdict(r) for r in camp.audit_log],
        "alerts": [asdict(a) for a in camp.alerts],
        "alerted": sorted(camp._alerted, key=str),
        "triangle": {k: getattr(camp.triangle, k) for k in ("sends", "conversions", "revenue")},
        "carry": [_batch(b) for b in camp._carry],
        "undelivered": [asdict(b) for b in camp._undelivered],
        "external": None if camp._external is None else asdict(camp._external),
    }
    out: dict[str, Any] = _encode_all(doc)
    return out


def from_doc(
    cls: type[Campaign], doc: dict[str, Any], channel: Channel | ChannelFactory | None = None
) -> Campaign:
    """Rebuild a campaign from :func:`to_doc` (after :func:`migrate`); it continues bit for bit.

    Args:
        cls: the campaign class.
        doc: a snapshot of any supported version.
        channel: the channel, or a function building it around the rebuilt simulator; ``None``:
            the simulator itself (:class:`agent.channels.SimulatedChannel`).

    Raises:
        CampaignError: an unknown version, or a policy class outside :mod:`policies`.
    """
    d = _decode_all(migrate(doc))
    sim: Simulator | AudienceWorld
    if "audience" in d:
        sim = AudienceWorld.from_doc(d["audience"])
    else:
        sim = Simulator(Scenario.model_validate(d["scenario"]), n_customers=int(d["n_customers"]))
        sim.reset(seed=int(d["sim_seed"]))
    policy = _load_policy(d["policy"]["class"], d["policy"]["files"], sim)
    chan = _channel(channel, sim)
    camp = cls(
        CampaignSpec.model_validate(d["spec"]),
        sim,
        policy,
        seed=d["seed"],
        scenario_name=d["scenario_name"],
        channel=chan,
        campaign_id=d["campaign_id"],
    )
    if camp.sim_seed != int(d["sim_seed"]):  # a campaign without a seed drew another one: the saved wins
        camp.sim_seed = int(d["sim_seed"])
        sim.reset(seed=camp.sim_seed)
    if isinstance(sim, Simulator):
        sim.restore(d["simulator"])
    else:  # reset() by the constructor cleared the world's iteration only
        sim._iteration = int(d["audience"]["iteration"])
    camp.rng.bit_generator.state = d["rng"]
    for k, v in d["arrays"].items():  # arrays a snapshot predates keep their zeros
        setattr(camp, k, v)
    for k, v in d["scalars"].items():
        setattr(camp, k, v)
    for k, v in d.get("clock", {}).items():
        setattr(camp, k, v)
    camp.funnel = {k: int(v) for k, v in d["funnel"].items()}
    led = camp.ledger
    for k in _LEDGER:
        setattr(led, k, d["ledger"][k])
    led._grow(led._n)
    for k in led._PER_DECISION:
        getattr(led, k)[: led._n] = d["ledger"][k]
    camp.log = DecisionLog(**d["log"])
    camp._events = [EventBatch(**d["events"])]
    camp._seen_event_ids = set(d["seen_event_ids"])
    camp.history = [IterationRecord(**r) for r in d["history"]]
    camp.audit_log = [AuditRecord(**r) for r in d["audit_log"]]
    camp.alerts = [Alert(**a) for a in d["alerts"]]
    camp._alerted = set(d["alerted"])
    for k, v in d["triangle"].items():
        setattr(camp.triangle, k, v)
    camp._carry = [EventBatch(**b) for b in d["carry"]]
    camp._undelivered = [SendBatch(**b) for b in d["undelivered"]]
    camp._external = None if d["external"] is None else ExternalContacts(**d["external"])
    return camp


def _channel(channel: Channel | ChannelFactory | None, sim: CustomerSimulator) -> Channel:
    if channel is None:
        return SimulatedChannel(sim)
    if hasattr(channel, "deliver"):
        return cast(Channel, channel)
    return channel(sim)


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a snapshot of any older version to :data:`SNAPSHOT_VERSION` (a new dict).

    Version 1 is the first; each later version adds one step here (``if version == k: ...``).

    Raises:
        CampaignError: no version, or one newer than this code knows.
    """
    version = doc.get("snapshot_version")
    if not isinstance(version, int) or not 1 <= version <= SNAPSHOT_VERSION:
        raise CampaignError(
            f"unsupported snapshot_version {version!r}: this code reads versions 1..{SNAPSHOT_VERSION}"
        )
    return dict(doc)


def _save_policy(policy: Policy) -> tuple[dict[str, str], str]:
    """The policy's saved files (base64, by relative path) and its ``module:class``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = policy.save(Path(tmp) / "policy")
        files = {
            p.relative_to(folder).as_posix(): base64.b64encode(p.read_bytes()).decode("ascii")
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    cls = type(policy)
    return files, f"{cls.__module__}:{cls.__qualname__}"


def _load_policy(name: str, files: dict[str, str], sim: CustomerSimulator) -> Policy:
    """Load a policy saved by :func:`_save_policy` (only classes of :mod:`policies`)."""
    module, _, qualname = name.partition(":")
    if not module.startswith("policies."):
        raise CampaignError(f"snapshot names a policy outside the policies package: {name!r}")
    cls = getattr(importlib.import_module(module), qualname, None)
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise CampaignError(f"snapshot names no policy class: {name!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp).resolve()
        for rel, data in files.items():
            target = folder / rel
            if folder not in target.resolve().parents:
                raise CampaignError(f"snapshot policy file outside its folder: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data))
        live = {"simulator": sim} if "simulator" in inspect.signature(cls).parameters else {}
        return cls.load(folder, **live)
