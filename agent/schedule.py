"""When a campaign's waves run, in wall time: a schedule and the clocks that read it.

A :class:`Schedule` says when the first wave may run (``start``), how far apart waves are (every
N hours, or a cron expression), when the campaign ends (``end``), and how long a send's
attribution window lasts (hours). The campaign loop counts iterations; the schedule maps them to
wall time:

* a wave runs when it is due (:meth:`Schedule.next_wave`), never earlier; iterations that only
  let time pass (holds, and the drain after the last send) are paced the same way;
* the window in iterations is the wall window over the shortest gap between two waves, rounded
  up (:meth:`Schedule.window_iterations`), so an iteration window never closes before the wall
  window has passed; on top, each real event is judged by the time it arrived
  (:meth:`agent.Campaign.ingest_events`): accepted up to the send's time plus the window.

Clocks: :class:`WallClock` (the server; ``speed`` > 1 runs time faster, for rehearsals and the
end-to-end test), :class:`VirtualClock` (simulations: waiting is instant), :class:`ManualClock`
(tests set the time).

Example:
    >>> from datetime import UTC, datetime
    >>> s = Schedule(start=datetime(2026, 1, 5, 9, tzinfo=UTC), every_hours=24, attribution_window_hours=72)
    >>> s.window_iterations()
    3
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

HOUR = 3600.0
MAX_HOURS = 24 * 366


class Schedule(BaseModel):
    """Start, cadence (``every_hours`` or ``cron``), end and attribution window of a campaign."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime | None = None
    """The first wave runs at this time or later; ``None``: as soon as the campaign is started."""
    every_hours: Annotated[float, Field(gt=0, le=MAX_HOURS, allow_inf_nan=False)] | None = None
    """Hours between two waves (e.g. 24: daily)."""
    cron: Annotated[str, Field(min_length=9, max_length=100)] | None = None
    """A 5-field cron expression in UTC (e.g. ``0 9 * * mon-fri``), instead of ``every_hours``."""
    end: AwareDatetime | None = None
    """No wave starts at or after this time (the open windows still close in their time)."""
    attribution_window_hours: Annotated[float, Field(gt=0, le=MAX_HOURS, allow_inf_nan=False)] = 72.0
    """How long after a send its events count (and its offer's reservation is held)."""

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if (self.every_hours is None) == (self.cron is None):
            raise ValueError("give exactly one of every_hours and cron")
        if self.cron is not None:
            from croniter import croniter

            if len(self.cron.split()) != 5 or not croniter.is_valid(self.cron):
                raise ValueError(f"cron: {self.cron!r} is not a valid 5-field cron expression")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def first_wave(self, now: float) -> float:
        """When the first wave is due (epoch seconds) for a campaign started at ``now``."""
        begin = max(now, self.start.timestamp()) if self.start is not None else now
        if self.cron is None:
            return begin
        return self._cron_next(begin - 1e-6)

    def next_wave(self, last: float, now: float) -> float:
        """When the wave after one that ran at ``last`` is due (epoch seconds), never before ``now``'s
        next slot: a late runner does not catch up by running waves back to back."""
        if self.cron is None:
            assert self.every_hours is not None
            return max(last + self.every_hours * HOUR, now)
        return self._cron_next(max(last, now))

    def ended(self, now: float) -> bool:
        """Whether no wave may start at ``now``."""
        return self.end is not None and now >= self.end.timestamp()

    def min_gap_hours(self) -> float:
        """The shortest time between two waves (for cron: over the next 500 occurrences)."""
        if self.cron is None:
            assert self.every_hours is not None
            return self.every_hours
        from croniter import croniter

        base = self.start or datetime.now(UTC)
        it = croniter(self.cron, base)
        times = [it.get_next(float) for _ in range(500)]
        return max(min(b - a for a, b in itertools.pairwise(times)) / HOUR, 1 / 60)

    def window_iterations(self) -> int:
        """The attribution window in iterations: never closes before the wall window has passed."""
        return max(math.ceil(self.attribution_window_hours / self.min_gap_hours() - 1e-9), 1)

    def _cron_next(self, after: float) -> float:
        from croniter import croniter

        assert self.cron is not None
        out: float = croniter(self.cron, datetime.fromtimestamp(after, UTC)).get_next(float)
        return out


class Clock(Protocol):
    """What reads and waits for time (epoch seconds)."""

    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None: ...


class WallClock:
    """The real clock, optionally running ``speed`` times faster from the moment it is made (for
    rehearsing a schedule: at ``speed=3600`` a day passes in 24 seconds)."""

    def __init__(self, speed: float = 1.0) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"clock speed must be a positive number, got {speed}")
        self.speed = speed
        self._t0 = time.time()

    def now(self) -> float:
        real = time.time()
        return self._t0 + (real - self._t0) * self.speed

    def sleep_until(self, t: float) -> None:
        wait = (t - self.now()) / self.speed
        if wait > 0:
            time.sleep(wait)


class VirtualClock:
    """Simulated time: waiting moves the clock at once (a simulated campaign runs at full speed
    through the same schedule code as a live one)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def sleep_until(self, t: float) -> None:
        self._now = max(self._now, t)


class ManualClock(VirtualClock):
    """A clock tests move by hand (:meth:`set`, :meth:`advance`); thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._lock = threading.Lock()

    def set(self, t: float) -> None:
        with self._lock:
            self._now = t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
