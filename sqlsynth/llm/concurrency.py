"""Adaptive concurrency (AIMD) for one endpoint: how many requests may be in flight right now, and how
fast they may leave.

A rate-limited provider answers 429 when sent more than it allows. Instead of keeping
``max_concurrency`` requests in flight and burning retries, the limit starts at ``max_concurrency``
(an endpoint that never throttles pays nothing: a slow start from 4 cost ~10% of the unthrottled
throughput bench), halves on a throttle (429 / Retry-After) and grows by one per round trip while
answers succeed (additive increase), within ``max_concurrency``: a run converges to the provider's
rate. One throttle cut per window: the 429s of requests sent before the last cut do not
cut again (they were sent at the old limit).

Two things keep the refusals per throttle to one or two (measured: a run of 400 rows against a
100 requests/s bucket sent up to 41 extra requests without them, on a loaded box):

- Pacing, once the endpoint has throttled. Answers come back in waves (everything sent together
  returns together), and a wave of freed slots used to be refilled in one event-loop turn, before
  the first 429 of that wave could be read. Sends are spaced ``rtt / (limit * PACE_GAIN)`` apart
  (the smoothed round trip of successful requests): 1.5 x the rate the limit itself allows, so
  pacing never becomes the bottleneck, while a provider's next 429 arrives before most of the wave
  has left. An endpoint that never throttled is not paced (no timer per request).
- Retry-After applies to everyone: after a 429 with Retry-After, no request is sent before it
  elapses (the provider said when the next one is welcome), not only the refused one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

PACE_GAIN = 1.5     # pacing rate over limit / rtt: headroom so pacing never becomes the bottleneck
RTT_WEIGHT = 0.125  # smoothing of the round-trip estimate (as TCP's srtt)


class AdaptiveLimit:
    """An asyncio semaphore whose size moves with the endpoint's answers (one event loop). Waiters are
    woken one per free slot, in order (a Condition's notify_all would wake thousands per answer)."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.throttles = 0          # cuts made (for the progress display and tests)
        self.rtt: float | None = None  # smoothed round trip of successful requests, seconds
        self._sent = 0              # tickets handed out
        self._cut_at = -1           # ticket count when the limit was last cut
        self._next_send = 0.0       # monotonic time before which the next request waits (pacing)
        self._paused_until = 0.0    # Retry-After of the last 429, for every request
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> int:
        """Wait for a slot and for the pace; the request's ticket (pass it to throttled())."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # _wake() counted this request in flight before waking it
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()  # woken and cancelled at once: hand the slot on
                raise
        try:
            await self._pace()
        except asyncio.CancelledError:
            self.release()
            raise
        self._sent += 1
        return self._sent

    async def _pace(self) -> None:
        """Wait for this request's send time: spaced from the previous one, after any Retry-After.
        Each request reserves its time before sleeping, so requests paced together leave one by one."""
        while True:
            now = time.monotonic()
            start = max(now, self._next_send, self._paused_until)
            paced = self.rtt and self.throttles  # an endpoint that never throttled pays no timer per request
            self._next_send = start + (self.rtt / (self.limit * PACE_GAIN) if paced else 0.0)
            if start <= now:
                return
            await asyncio.sleep(start - now)
            if time.monotonic() >= self._paused_until:
                return  # else a 429 arrived while sleeping: wait out its Retry-After too

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def succeeded(self, rtt: float | None = None) -> None:
        if rtt is not None:
            self.rtt = rtt if self.rtt is None else self.rtt + RTT_WEIGHT * (rtt - self.rtt)
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)  # +1 per round trip
        self._wake()

    def throttled(self, ticket: int, retry_after: float | None = None) -> None:
        if retry_after:
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
        if ticket <= self._cut_at:
            return  # sent before the last cut: that cut already accounted for it
        self.limit = max(1.0, self.limit / 2)
        self._cut_at = self._sent
        self.throttles += 1
