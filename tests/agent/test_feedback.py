"""The loop's feedback to a learning policy joins events to decisions, delayed ones included."""

from __future__ import annotations

import numpy as np

from agent import Campaign, CampaignSpec, Goal
from policies import Feedback, FixedPolicy
from simulators import EventKind, Simulator, load_scenario


class Recorder(FixedPolicy):
    """E-mail to everyone reachable; remembers every feedback."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__("email/bestsellers/none", seed)
        self.feedback: list[Feedback] = []

    def update(self, feedback: Feedback) -> None:
        self.feedback.append(feedback)


def test_feedback_ids_and_delayed_conversions() -> None:
    sim = Simulator(load_scenario("retail"), n_customers=3000)
    pol = Recorder(seed=0)
    spec = CampaignSpec(goal=Goal(target=10_000), budget=40, max_iterations=6, customers_per_iteration=1000)
    Campaign(spec, sim, pol, seed=0).run()
    assert len(pol.feedback) == 6
    sent_ids: dict[int, int] = {}
    for it, fb in enumerate(pol.feedback):
        sent = fb.decision_ids >= 0
        assert np.array_equal(sent, fb.decisions.arms != 0)
        for i in fb.decision_ids[sent]:
            sent_ids[int(i)] = it
        conv = fb.events.select((fb.events.kind == EventKind.CONVERTED) & (fb.events.decision_id >= 0))
        for i in conv.decision_id:
            assert int(i) in sent_ids and sent_ids[int(i)] <= it
    # retail delays conversions by up to 2 iterations: some arrive after the iteration of the send.
    late = sum(
        int(
            np.count_nonzero(
                [
                    sent_ids[int(i)] < it
                    for i in fb.events.decision_id[
                        (fb.events.kind == EventKind.CONVERTED) & (fb.events.decision_id >= 0)
                    ]
                ]
            )
        )
        for it, fb in enumerate(pol.feedback)
    )
    assert late > 0
