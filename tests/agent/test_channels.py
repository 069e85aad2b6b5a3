"""Channel adapters: the webhook against a real HTTP server on 127.0.0.1, files, mirroring."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent import Campaign, CampaignSpec, Goal
from agent.channels import (
    Channel,
    ChannelError,
    FileChannel,
    MirroredChannel,
    SendBatch,
    SimulatedChannel,
    WebhookChannel,
)
from policies import make_policy
from simulators import Simulator, load_scenario
from tests.webhook import SECRET, Receiver


def _sim() -> Simulator:
    return Simulator(load_scenario("retail"), n_customers=2000)


def _batch(n: int = 5, iteration: int = 0) -> SendBatch:
    ids = np.arange(n, dtype=np.int64) + 100 * iteration
    return SendBatch("c1", iteration, ids, ids + 7, np.ones(n, np.int64), np.full(n, 0.5))


def test_webhook_signature_verifies_and_payload_names_the_arms(receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    sim = _sim()
    ch = WebhookChannel(url, SECRET, sim.arms)
    assert isinstance(ch, Channel)
    assert len(ch.deliver(_batch())) == 0
    assert rec.requests == 1 and rec.bad_signatures == 0
    assert sorted(rec.sent) == [f"c1:{i}" for i in range(5)]
    wrong = WebhookChannel(url, "not-the-secret", sim.arms, max_retries=0)
    with pytest.raises(ChannelError, match="refused"):
        wrong.deliver(_batch(iteration=1))
    assert rec.bad_signatures == 1


def test_webhook_retries_5xx_without_sending_twice(receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    waits: list[float] = []
    ch = WebhookChannel(url, SECRET, _sim().arms, backoff=0.1, sleep=waits.append, max_batch=3)
    rec.fail_next = [503, 500]  # processed, then answered with an error: the client must retry
    ch.deliver(_batch(n=5))
    assert rec.requests == 4  # 3 attempts for the first part, 1 for the second
    assert waits == [0.1, 0.2]  # exponential backoff
    assert set(rec.sent.values()) == {1} and len(rec.sent) == 5
    before = rec.requests
    ch.deliver(_batch(n=5))  # the same batch again (a loop retry): acknowledged, never posted
    assert rec.requests == before


def test_webhook_gives_up_after_retries(receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    ch = WebhookChannel(url, SECRET, _sim().arms, max_retries=2, sleep=lambda s: None)
    rec.fail_next = [500, 500, 500]
    with pytest.raises(ChannelError, match="after 3 attempts"):
        ch.deliver(_batch())
    assert rec.requests == 3


def test_webhook_rejects_bad_configuration() -> None:
    arms = _sim().arms
    with pytest.raises(ValueError, match="http"):
        WebhookChannel("ftp://x", SECRET, arms)
    with pytest.raises(ValueError, match="secret"):
        WebhookChannel("http://127.0.0.1:1/x", "", arms)


def test_campaign_pauses_on_channel_failure_and_redelivers_on_resume(receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    sim = _sim()
    hook = WebhookChannel(url, SECRET, sim.arms, max_retries=1, sleep=lambda s: None)
    spec = CampaignSpec(goal=Goal(target=10_000), budget=60, max_iterations=4, customers_per_iteration=500)
    camp = Campaign(
        spec,
        sim,
        make_policy("random", sim, seed=0),
        seed=0,
        channel=MirroredChannel(SimulatedChannel(sim), [hook]),
        campaign_id="c1",
    )
    rec.fail_next = [500, 500]  # the first batch fails twice: the campaign pauses
    rep = camp.run()
    assert rep.status == "paused" and camp.iterations == 1
    assert [a.kind for a in rep.alerts] == ["channel_failed"]
    assert rep.audit_log[-1].action == "channel_failed"
    camp.resume("receiver is back")
    rep = camp.run()
    assert rep.status == "completed"
    # Every decision reached the receiver exactly once, the failed batch included.
    assert sorted(rec.sent) == sorted(f"c1:{i}" for i in camp.log.decision_id.tolist())
    assert set(rec.sent.values()) == {1}
    assert rep.spend <= rep.budget + 1e-9


def test_file_channel_writes_whole_batches_once(tmp_path: Path) -> None:
    sim = _sim()
    jsonl = FileChannel(tmp_path / "j", sim.arms)
    jsonl.deliver(_batch())
    jsonl.deliver(_batch())  # a retry of the same iteration does not duplicate it
    (path,) = jsonl.written
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["decision_id"] for r in rows] == list(range(5))
    assert (
        rows[0]["arm"] == sim.arms.names[1]
        and rows[0]["channel"] == sim.arms.channel_names[sim.arms.channel[1]]
    )
    assert not list((tmp_path / "j").glob(".partial-*"))
    as_csv = FileChannel(tmp_path / "c", sim.arms, fmt="csv")
    as_csv.deliver(_batch())
    with as_csv.written[0].open() as fh:
        got = list(csv.DictReader(fh))
    assert [int(r["decision_id"]) for r in got] == list(range(5))
    with pytest.raises(ValueError, match="jsonl"):
        FileChannel(tmp_path, sim.arms, fmt="xml")  # type: ignore[arg-type]


def test_mirrored_file_channel_leaves_the_campaign_unchanged(tmp_path: Path) -> None:
    spec = CampaignSpec(goal=Goal(target=150), budget=80, max_iterations=6, customers_per_iteration=800)

    def run(mirror: bool) -> tuple[Any, Campaign]:
        sim = _sim()
        ch = MirroredChannel(SimulatedChannel(sim), [FileChannel(tmp_path, sim.arms)]) if mirror else None
        camp = Campaign(spec, sim, make_policy("thompson", sim, seed=1), seed=1, channel=ch)
        return camp.run(), camp

    plain, _ = run(False)
    mirrored, camp = run(True)
    assert mirrored.conversions == plain.conversions and mirrored.spend == plain.spend
    assert mirrored.channel == "simulated+file"
    ids = [
        json.loads(x)["decision_id"]
        for f in sorted(tmp_path.glob("*.jsonl"))
        for x in f.read_text().splitlines()
    ]
    assert ids == camp.log.decision_id.tolist()
    pickle.loads(pickle.dumps(camp))  # snapshots keep working with a channel attached


def test_webhook_channel_pickles_without_its_connection(receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    ch = WebhookChannel(url, SECRET, _sim().arms)
    ch.deliver(_batch())
    again = pickle.loads(pickle.dumps(ch))
    again.deliver(_batch())  # acknowledged keys survive the snapshot: not posted again
    again.deliver(_batch(iteration=1))
    assert rec.requests == 2
