"""Adaptive concurrency (AIMD) for one endpoint: how many requests may be in flight right now.

A rate-limited provider answers 429 when sent more than it allows. Instead of keeping
``max_concurrency`` requests in flight and burning retries, the limit starts at ``max_concurrency``
(an endpoint that never throttles pays nothing: a slow start from 4 cost ~10% of the unthrottled
throughput bench), halves on a throttle (429 / Retry-After) and grows by one per round trip while
answers succeed (additive increase), within ``max_concurrency``: a run converges to the provider's
rate. One throttle cut per window: the 429s of requests sent before the last cut do not
cut again (they were sent at the old limit).
"""

from __future__ import annotations

import asyncio
from collections import deque


class AdaptiveLimit:
    """An asyncio semaphore whose size moves with the endpoint's answers (one event loop). Waiters are
    woken one per free slot, in order (a Condition's notify_all would wake thousands per answer)."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.throttles = 0          # cuts made (for the progress display and tests)
        self._sent = 0              # tickets handed out
        self._cut_at = -1           # ticket count when the limit was last cut
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> int:
        """Wait for a slot; the request's ticket (pass it to throttled())."""
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
        self._sent += 1
        return self._sent

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def succeeded(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)  # +1 per round trip
        self._wake()

    def throttled(self, ticket: int) -> None:
        if ticket <= self._cut_at:
            return  # sent before the last cut: that cut already accounted for it
        self.limit = max(1.0, self.limit / 2)
        self._cut_at = self._sent
        self.throttles += 1
