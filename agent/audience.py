"""An owner's audience as the campaign's world: real customers, no simulator.

:class:`AudienceWorld` follows :class:`simulators.types.CustomerSimulator` for what the campaign
loop reads of a world (the customers, their features, who may be reached on which channel, the
arms), built from an owner's imported rows and catalogue. It has no responses: a campaign on it
sends through a real channel (webhook or file) and learns from the events the owner posts back.
Customers are indices ``0..n-1`` inside the campaign; :attr:`customer_ids` are the owner's ids,
which go out in every channel batch and come back in events.

Who may be contacted on a channel: consent and reachability from the audience, minus the
channel's opt-out list (refreshed before every wave, :meth:`set_opt_outs`) and minus those who
unsubscribed during the campaign (:meth:`unsubscribe`).

Example:
    >>> import numpy as np
    >>> from agent.catalogue import Catalogue
    >>> cat = Catalogue.model_validate({"channels": [{"name": "email", "send_cost": 0.001}],
    ...                                 "contents": [{"name": "news"}]})
    >>> world = AudienceWorld.build(
    ...     np.array(["a1", "b2"]), {"recency": np.array([1.0, 9.0])}, {"recency": "numeric"},
    ...     {"email": np.array([True, False])}, cat)
    >>> world.arm_mask(np.array([0, 1])).tolist()
    [[True, True], [True, False]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agent.catalogue import Catalogue
from policies.features import FeaturePipeline
from simulators.types import (
    ArmTable,
    BoolArray,
    EventBatch,
    GroundTruth,
    IntArray,
    decode_array,
    encode_array,
)


class AudienceError(ValueError):
    """The audience and the catalogue do not make a campaign (names the reason)."""


class AudienceWorld:
    """An owner's customers, features and reachability, with the catalogue's arms.

    Args:
        customer_ids: ``(n,)`` the owner's ids.
        features: ``(n, d)`` model inputs in ``[0, 1]`` (see :class:`policies.features.FeaturePipeline`).
        feature_names: ``(d,)`` their names.
        reachable: ``(n, n_channels)`` consent and reachability per catalogue channel.
        catalogue: the owner's channels, contents and offers.
        pipeline: the fitted pipeline (kept for the snapshot and reports).
        segments: ``(n,)`` optional segment label per customer, for the report's breakdown.
        segment_by: the column the labels come from.
        name: the audience's name (the report's label).
    """

    def __init__(
        self,
        customer_ids: NDArray[np.str_],
        features: NDArray[np.float32],
        feature_names: tuple[str, ...],
        reachable: BoolArray,
        catalogue: Catalogue,
        pipeline: FeaturePipeline,
        segments: NDArray[np.str_] | None = None,
        segment_by: str | None = None,
        name: str = "audience",
    ) -> None:
        n = customer_ids.shape[0]
        if n == 0:
            raise AudienceError("the audience (after its filter) has no customers")
        self.customer_ids = customer_ids
        self._features = np.ascontiguousarray(features, dtype=np.float32)
        self._feature_names = feature_names
        self.reachable = reachable
        self.catalogue = catalogue
        self.pipeline = pipeline
        self.segments = segments
        self.segment_by = segment_by
        self.name = name
        self._arms = catalogue.arm_table()
        n_ch = len(self._arms.channel_names)
        self.unsubscribed = np.zeros((n, n_ch), dtype=bool)
        self.opted_out = np.zeros((n, n_ch), dtype=bool)
        self._iteration = 0
        self._index: dict[str, int] | None = None

    @staticmethod
    def build(
        customer_ids: NDArray[np.str_],
        columns: Mapping[str, NDArray[Any]],
        column_types: Mapping[str, str],
        consent: Mapping[str, BoolArray],
        catalogue: Catalogue,
        segment_by: str | None = None,
        name: str = "audience",
    ) -> AudienceWorld:
        """Fit the feature pipeline on the audience and build the world.

        Args:
            customer_ids: ``(n,)`` the owner's ids.
            columns: column -> ``(n,)`` values (numeric with NaN, or strings).
            column_types: column -> ``numeric`` / ``categorical`` (the model inputs).
            consent: channel -> ``(n,)`` consent and reachability (opt-outs already applied).
            catalogue: the owner's catalogue; each of its channels needs consent data.
            segment_by: a column whose values label the report's segments.
            name: the audience's name.

        Raises:
            AudienceError: a catalogue channel the audience has no consent for, an unknown
                segment column, an empty audience.
        """
        missing = [c.name for c in catalogue.channels if c.name not in consent]
        if missing:
            raise AudienceError(
                f"the audience has no consent data for channel(s) {missing}; channels with consent: "
                f"{sorted(consent)}"
            )
        reachable = np.stack([np.asarray(consent[c.name], bool) for c in catalogue.channels], axis=1)
        pipeline = FeaturePipeline.fit(columns, column_types)
        segments = None
        if segment_by is not None:
            if segment_by not in columns:
                raise AudienceError(f"segment_by: no column {segment_by!r}; columns: {sorted(columns)}")
            segments = np.asarray(columns[segment_by]).astype(str)
        return AudienceWorld(
            np.asarray(customer_ids).astype(str),
            pipeline.transform(columns),
            pipeline.feature_names,
            reachable,
            catalogue,
            pipeline,
            segments,
            segment_by,
            name,
        )

    # -- the world protocol (what the loop reads) ---------------------------------------------
    @property
    def arms(self) -> ArmTable:
        return self._arms

    @property
    def n_customers(self) -> int:
        return int(self.customer_ids.shape[0])

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._feature_names

    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def margin(self) -> float:
        return self.catalogue.margin

    def reset(self, seed: int | None = None) -> None:
        """Nothing to draw: the audience is given (the seed is not used)."""
        self._iteration = 0

    def features(self, customers: IntArray) -> NDArray[np.float32]:
        """``(n, d)`` the customers' model inputs."""
        return self._features[customers]

    def arm_mask(self, customers: IntArray) -> BoolArray:
        """``(n, n_arms)`` arms allowed: the arm's channel is reachable, consented, not opted out
        and not unsubscribed; no contact always."""
        ok = self.reachable[customers] & ~self.opted_out[customers] & ~self.unsubscribed[customers]
        mask = np.ones((customers.size, len(self._arms)), dtype=bool)
        mask[:, 1:] = ok[:, self._arms.channel[1:]]
        return mask

    def expected(self, customers: IntArray, arms: IntArray) -> GroundTruth:
        """An owner's audience has no ground truth (policies that need it are refused)."""
        raise AudienceError("an owner's audience has no simulator: no ground truth to read")

    def send(self, decision_ids: IntArray, customers: IntArray, arms: IntArray) -> EventBatch:
        """Nothing answers here: an audience campaign sends through a webhook or file channel."""
        raise AudienceError("an owner's audience has no simulated responses: use a webhook or file channel")

    def advance(self) -> EventBatch:
        self._iteration += 1
        return EventBatch.empty()

    # -- the owner's customers ----------------------------------------------------------------
    def index_of(self, ids: list[str]) -> IntArray:
        """``(len(ids),)`` the campaign's index of each owner id, -1 when not in the audience."""
        if self._index is None:
            self._index = {str(c): i for i, c in enumerate(self.customer_ids.tolist())}
        return np.array([self._index.get(i, -1) for i in ids], dtype=np.int64)

    def unsubscribe(self, customers: IntArray, channels: IntArray) -> None:
        """Customers who unsubscribed from a channel during the campaign: never contacted there again."""
        self.unsubscribed[customers, channels] = True

    def set_opt_outs(self, opted_out: Mapping[str, BoolArray]) -> None:
        """The channels' opt-out lists as they are now: channel -> ``(n,)`` opted out."""
        for j, name in enumerate(self._arms.channel_names):
            if name in opted_out:
                self.opted_out[:, j] = np.asarray(opted_out[name], bool)

    # -- snapshot --------------------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        """Plain data (arrays as base64 ``.npy``, no pickle)."""
        return {
            "name": self.name,
            "catalogue": self.catalogue.model_dump(mode="json"),
            "pipeline": self.pipeline.to_dict(),
            "feature_names": list(self._feature_names),
            "customer_ids": encode_array(self.customer_ids),
            "features": encode_array(self._features),
            "reachable": encode_array(self.reachable),
            "unsubscribed": encode_array(self.unsubscribed),
            "opted_out": encode_array(self.opted_out),
            "segments": None if self.segments is None else encode_array(self.segments),
            "segment_by": self.segment_by,
            "iteration": self._iteration,
        }

    @staticmethod
    def from_doc(d: Mapping[str, Any]) -> AudienceWorld:
        """Inverse of :meth:`to_doc`."""
        world = AudienceWorld(
            decode_array(d["customer_ids"]),
            decode_array(d["features"]),
            tuple(d["feature_names"]),
            decode_array(d["reachable"]),
            Catalogue.model_validate(d["catalogue"]),
            FeaturePipeline.from_dict(d["pipeline"]),
            None if d["segments"] is None else decode_array(d["segments"]),
            d["segment_by"],
            d["name"],
        )
        world.unsubscribed = decode_array(d["unsubscribed"])
        world.opted_out = decode_array(d["opted_out"])
        world._iteration = int(d["iteration"])
        return world
