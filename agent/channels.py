"""Channel adapters: one protocol for the simulator and for real senders.

The loop hands each iteration's decisions to a :class:`Channel` as one :class:`SendBatch`.
A channel returns the events it knows at once (the simulator samples them; real senders
return none) and, when the loop closes an iteration, the events that arrived meanwhile.
Real channels answer later, through :meth:`agent.Campaign.ingest_events` (the API's
``POST /campaigns/{id}/events``).

Adapters:
    * :class:`SimulatedChannel` (the default): the customer simulator answers.
    * :class:`WebhookChannel`: POSTs each batch as JSON to a URL, signed with HMAC-SHA256
      (header ``X-Signature: sha256=<hex>`` over the raw body), retried with exponential backoff
      on connection errors, 429 and 5xx; every decision carries an idempotency key
      (``<campaign>:<decision_id>``) and the batch one (header ``Idempotency-Key``), so a retry
      never makes a receiver send twice; batches already acknowledged are never posted again.
    * :class:`FileChannel`: writes each batch to ``<folder>/<campaign>-iter<NNNN>.jsonl`` (or
      ``.csv``) for a sender to pick up; written to a temporary file and renamed, so a reader
      never sees half a batch, and an existing batch file is never overwritten.
    * :class:`MirroredChannel`: delivers to copies (file, webhook) while another channel (the
      simulator) answers: a rehearsal of a real sender against the simulated world.

Example:
    >>> import numpy as np
    >>> from simulators import Simulator, load_scenario
    >>> sim = Simulator(load_scenario("retail"), n_customers=10)
    >>> sim.reset(seed=0)
    >>> batch = SendBatch("demo", 0, np.array([0]), np.array([3]), np.array([1]), np.array([0.5]))
    >>> batch.records(sim.arms)[0]["idempotency_key"]
    'demo:0'
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from simulators.types import ArmTable, CustomerSimulator, EventBatch, FloatArray, IntArray


class ChannelError(RuntimeError):
    """A batch could not be delivered (after the retries a channel allows)."""


@dataclass(frozen=True)
class SendBatch:
    """One iteration's contacts: ``(n,)`` arrays, one entry per decision."""

    campaign: str
    iteration: int
    decision_ids: IntArray
    customers: IntArray
    arms: IntArray
    pscores: FloatArray
    customer_ids: NDArray[np.str_] | None = None
    """``(n,)`` the owner's customer ids (an audience campaign); ``None``: the simulator's numbers."""

    def __len__(self) -> int:
        return int(self.decision_ids.size)

    @property
    def key(self) -> str:
        """Idempotency key of the batch: the same decisions always give the same key."""
        digest = hashlib.sha256(np.ascontiguousarray(self.decision_ids, dtype=np.int64).tobytes())
        return f"{self.campaign}:{self.iteration}:{digest.hexdigest()[:16]}"

    def records(self, arms: ArmTable) -> list[dict[str, Any]]:
        """JSON-ready records, one per decision (channel, content and offer by name)."""
        ch = np.asarray(arms.channel_names, dtype=object)[arms.channel[self.arms]]
        co = np.asarray(arms.content_names, dtype=object)[arms.content[self.arms]]
        of = np.asarray(arms.offer_names, dtype=object)[arms.offer[self.arms]]
        names = np.asarray(arms.names, dtype=object)[self.arms]
        customers = self.customers.tolist() if self.customer_ids is None else self.customer_ids.tolist()
        prefix = f"{self.campaign}:"
        # Serialisation needs one dict per decision; the columns themselves are built vectorised.
        return [
            {
                "decision_id": d,
                "idempotency_key": prefix + str(d),
                "customer": c,
                "arm": a,
                "channel": h,
                "content": t,
                "offer": o,
                "pscore": p,
            }
            for d, c, a, h, t, o, p in zip(
                self.decision_ids.tolist(),
                customers,
                names.tolist(),
                ch.tolist(),
                co.tolist(),
                of.tolist(),
                self.pscores.tolist(),
                strict=True,
            )
        ]


@runtime_checkable
class Channel(Protocol):
    """What the loop needs from a sender."""

    name: str

    def deliver(self, batch: SendBatch) -> EventBatch:
        """Send a batch; returns the events known at once (none for real senders).

        Raises:
            ChannelError: the batch could not be delivered.
        """
        ...

    def advance(self) -> EventBatch:
        """Close the iteration; returns the events that arrived during it."""
        ...


class SimulatedChannel:
    """The customer simulator as the channel (the default)."""

    name = "simulated"

    def __init__(self, simulator: CustomerSimulator) -> None:
        self.sim = simulator

    def deliver(self, batch: SendBatch) -> EventBatch:
        return self.sim.send(batch.decision_ids, batch.customers, batch.arms)

    def advance(self) -> EventBatch:
        return self.sim.advance()


class _Exporter:
    """A real sender: answers nothing itself (events arrive through ingestion)."""

    name = "export"

    def __init__(self, arms: ArmTable) -> None:
        self.arms = arms

    def advance(self) -> EventBatch:
        return EventBatch.empty()


class WebhookChannel(_Exporter):
    """POST each batch as signed JSON to ``url``.

    Args:
        url: the sender's endpoint.
        secret: HMAC-SHA256 key; the receiver recomputes ``hmac(secret, body)`` and compares it
            with the ``X-Signature`` header.
        arms: the arm table (names go in the payload).
        max_retries: attempts after the first on a connection error, 429 or 5xx.
        backoff: seconds before the first retry; doubled each time (capped at 30 s).
        timeout: seconds per request.
        max_batch: decisions per POST (a larger batch is split, each part with its own key).
        transport: an ``httpx`` transport (tests); ``None``: the network.
        sleep: how to wait between retries (tests pass a recorder).

    A 4xx other than 429 is the receiver refusing the batch: it is not retried.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        arms: ArmTable,
        max_retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        max_batch: int = 5000,
        transport: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        if not secret:
            raise ValueError("webhook secret must not be empty: receivers verify the signature with it")
        super().__init__(arms)
        self.url, self.secret = url, secret
        self.max_retries, self.backoff, self.timeout = max_retries, backoff, timeout
        self.max_batch, self.transport, self.sleep = max_batch, transport, sleep
        self.acknowledged: set[str] = set()  # batch keys the receiver accepted
        self.posts = 0
        self._client: Any | None = None

    def sign(self, body: bytes) -> str:
        """``sha256=<hex>`` of ``body`` under the secret."""
        return "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout, transport=self.transport)
        return self._client

    def deliver(self, batch: SendBatch) -> EventBatch:
        for start in range(0, len(batch), self.max_batch):
            part = slice(start, start + self.max_batch)
            self._post(
                SendBatch(
                    batch.campaign,
                    batch.iteration,
                    batch.decision_ids[part],
                    batch.customers[part],
                    batch.arms[part],
                    batch.pscores[part],
                    None if batch.customer_ids is None else batch.customer_ids[part],
                )
            )
        return EventBatch.empty()

    def _post(self, batch: SendBatch) -> None:
        import httpx

        key = batch.key
        if key in self.acknowledged:
            return
        payload = {
            "campaign": batch.campaign,
            "iteration": batch.iteration,
            "batch_key": key,
            "decisions": batch.records(self.arms),
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Signature": self.sign(body), "Idempotency-Key": key}
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            self.posts += 1
            try:
                resp = self._http().post(self.url, content=body, headers=headers)
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
                continue
            if resp.status_code < 300:
                self.acknowledged.add(key)
                return
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code != 429 and resp.status_code < 500:
                raise ChannelError(f"webhook {self.url} refused batch {key}: {last}")
        raise ChannelError(
            f"webhook {self.url} failed for batch {key} after {self.max_retries + 1} attempts: {last}"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None  # a connection pool is not campaign state
        state["sleep"] = time.sleep
        state["transport"] = None
        return state


class FileChannel(_Exporter):
    """Write each batch to ``folder`` as JSONL or CSV for a sender to pick up."""

    name = "file"

    def __init__(self, folder: str | Path, arms: ArmTable, fmt: Literal["jsonl", "csv"] = "jsonl") -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"file channel format must be 'jsonl' or 'csv', got {fmt!r}")
        super().__init__(arms)
        self.folder, self.fmt = Path(folder), fmt
        self.written: list[Path] = []

    def deliver(self, batch: SendBatch) -> EventBatch:
        path = self.folder / f"{batch.campaign or 'campaign'}-iter{batch.iteration:04d}.{self.fmt}"
        if path.exists():  # already handed over: a retry must not duplicate it
            return EventBatch.empty()
        records = batch.records(self.arms)
        if self.fmt == "jsonl":
            text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        else:
            buf = io.StringIO()
            fields = [
                "decision_id",
                "idempotency_key",
                "customer",
                "arm",
                "channel",
                "content",
                "offer",
                "pscore",
            ]
            writer = csv.DictWriter(buf, fieldnames=fields)
            writer.writeheader()
            writer.writerows(records)
            text = buf.getvalue()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as err:
            raise ChannelError(f"cannot write batch file {path}: {err}") from err
        self.written.append(path)
        return EventBatch.empty()


class Outbox:
    """Hold a real channel's batches instead of sending them, for the caller to deliver after it
    has committed the iteration (the live runner): a receiver then never sees a decision the
    database does not hold, and an iteration computed again after a lost commit sends nothing
    twice. ``queued`` are the held batches; events come back through ingestion, as for any real
    sender."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.name = channel.name
        self.queued: list[SendBatch] = []

    def deliver(self, batch: SendBatch) -> EventBatch:
        self.queued.append(batch)
        return EventBatch.empty()

    def advance(self) -> EventBatch:
        return self.channel.advance()


class MirroredChannel:
    """Deliver every batch to ``copies`` too, while ``primary`` answers."""

    def __init__(self, primary: Channel, copies: list[Channel]) -> None:
        self.primary, self.copies = primary, copies
        self.name = "+".join([primary.name, *(c.name for c in copies)])

    def deliver(self, batch: SendBatch) -> EventBatch:
        for c in self.copies:
            c.deliver(batch)
        return self.primary.deliver(batch)

    def advance(self) -> EventBatch:
        return self.primary.advance()
