"""Enforcing client quotas, Kafka's way (ClientQuotaManager, KIP-219).

Each quota key is measured per sharer (``logq.quotas.quota_for``: the user and/or client id the matching
entity groups by) as a rate over samples: ``quota.window.num`` (11) samples of ``quota.window.size``
(1 s). The rate is the sum of the samples still in the window over the time they span, counted as at
least ``samples - 1`` windows, so a new client's first burst is measured over 10 s, as in Kafka. When a
request takes the rate above the quota, the throttle time is Kafka's

    throttle_ms = (rate - quota) / quota * window_ms

the time after which the rate falls back to the quota if nothing more is sent. The response goes at
once with ``throttle_time_ms`` set, and the server does not read from the connection for that long
(``server.py``); clients that know KIP-219 wait as long before sending to this broker again.

Produce is measured by the request's size; Fetch (from consumers, not followers) by the records in the
answer, and a throttled Fetch is answered empty (its bytes not counted), as Kafka does. With no quota
configured, a request costs one lookup in an empty mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from logq.protocol import messages as m
from logq.protocol.schema import Struct
from logq.quotas import (
    CONSUMER_BYTE_RATE,
    NO_QUOTAS,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    ClientQuotas,
    quota_for,
    user_of_principal,
)

log = logging.getLogger(__name__)

QUOTA_WINDOW_SAMPLES = 11  # Kafka's quota.window.num
QUOTA_WINDOW_MS = 1000  # Kafka's quota.window.size.seconds, in ms
IDLE_SENSOR_MS = QUOTA_WINDOW_SAMPLES * QUOTA_WINDOW_MS  # a sensor this long unused has measured nothing
_PURGE_ABOVE = 1000  # sensors kept before idle ones are dropped


@dataclass(slots=True)
class _Sample:
    start_ms: int
    value: float = 0.0


@dataclass(slots=True)
class RateSensor:
    """Kafka's Rate over a SampledStat: ``samples`` windows of ``window_ms``, the oldest reused. The sum
    of the samples is kept as they change, so a measurement does not add them up again."""

    samples: int = QUOTA_WINDOW_SAMPLES
    window_ms: int = QUOTA_WINDOW_MS
    _samples: list[_Sample] = field(default_factory=list)
    total: float = 0.0
    last_ms: int = 0

    def record(self, value: float, now_ms: int) -> None:
        self.last_ms = now_ms
        samples = self._samples
        if not samples or now_ms - samples[-1].start_ms >= self.window_ms:
            self._next_sample(now_ms)
        samples[-1].value += value
        self.total += value

    def _next_sample(self, now_ms: int) -> None:
        # Expired samples go only here, when a window starts: a sample older than the whole window is
        # always followed by a new one before the rate is measured again.
        self._purge(now_ms)
        if len(self._samples) >= self.samples:
            self.total -= self._samples.pop(0).value
        self._samples.append(_Sample(now_ms))

    def record_and_throttle(self, value: float, now_ms: int, quota: float) -> int:
        """``record`` then ``throttle_ms``, in one call: this is the per-request path."""
        self.last_ms = now_ms
        samples = self._samples
        if not samples or now_ms - samples[-1].start_ms >= self.window_ms:
            self._next_sample(now_ms)
        samples[-1].value += value
        total = self.total = self.total + value
        span = now_ms - samples[0].start_ms
        minimum = (self.samples - 1) * self.window_ms
        span = max(span, minimum)
        rate = total * 1000 / span
        if rate <= quota:
            return 0
        return int((rate - quota) / quota * span)

    def _purge(self, now_ms: int) -> None:
        samples = self._samples
        expired = now_ms - self.samples * self.window_ms
        while samples and samples[0].start_ms <= expired:
            self.total -= samples.pop(0).value
        if not samples:
            self.total = 0.0  # no float residue from the subtractions

    def span_ms(self, now_ms: int) -> int:
        """The time the rate is measured over: since the oldest sample, at least ``samples - 1`` windows."""
        samples = self._samples
        if samples and samples[0].start_ms <= now_ms - self.samples * self.window_ms:
            self._purge(now_ms)
        oldest = samples[0].start_ms if samples else now_ms
        return max(now_ms - oldest, (self.samples - 1) * self.window_ms)

    def rate(self, now_ms: int) -> float:
        """Per second."""
        span = self.span_ms(now_ms)
        return self.total * 1000 / span

    def throttle_ms(self, now_ms: int, quota: float) -> int:
        span = self.span_ms(now_ms)
        return throttle_ms(self.total * 1000 / span, quota, span)


def throttle_ms(rate: float, quota: float, window_ms: int) -> int:
    """Kafka's QuotaUtils.throttleTime: how long until ``rate`` is back at ``quota`` with nothing sent."""
    if rate <= quota:
        return 0
    return int((rate - quota) / quota * window_ms)


@dataclass(slots=True)
class _Applied:
    """What applies to one (user, client id): the quota and the sensor it shares (None: unlimited)."""

    limit: float = 0.0
    sensor: RateSensor | None = None


_UNLIMITED = _Applied()


class ClientQuotaManager:
    """One quota key's sensors (Kafka has one manager per quota type). The quota that applies to a
    (user, client id) is resolved once and kept until the quotas change, so a request costs one lookup
    and one sensor update."""

    def __init__(self, key: str, now_ms: Callable[[], int]) -> None:
        self.key = key
        self._now_ms = now_ms
        self._quotas: ClientQuotas = NO_QUOTAS
        self._sensors: dict[tuple[str, str], RateSensor] = {}
        self._applied: dict[tuple[str, str], _Applied] = {}

    def update(self, quotas: ClientQuotas) -> None:
        # A changed quota starts from what was measured under the old one (as Kafka's sensors do).
        self._quotas = quotas
        self._applied.clear()
        if not quotas:
            self._sensors.clear()

    def _resolve(self, principal: str, client_id: str) -> _Applied:
        if len(self._applied) >= _PURGE_ABOVE:
            self._applied.clear()
            self._drop_idle(self._now_ms())
        found = quota_for(self._quotas, self.key, user_of_principal(principal), client_id)
        applied = _UNLIMITED
        if found is not None:
            sensor = self._sensors.get(found.shared_by)
            if sensor is None:
                sensor = self._sensors[found.shared_by] = RateSensor()
            applied = _Applied(found.limit, sensor)
        self._applied[(principal, client_id)] = applied
        return applied

    def record(self, principal: str, client_id: str, value: float) -> int:
        """Count ``value`` against the quota that applies to the principal (``User:alice``) and client id;
        the throttle time in ms (0: within quota)."""
        applied = self._applied.get((principal, client_id)) or self._resolve(principal, client_id)
        sensor = applied.sensor
        if sensor is None:
            return 0
        return sensor.record_and_throttle(value, self._now_ms(), applied.limit)

    def unrecord(self, principal: str, client_id: str, value: float) -> None:
        """Take back ``value`` (a throttled Fetch's bytes, which are not sent)."""
        applied = self._applied.get((principal, client_id))
        if applied is not None and applied.sensor is not None:
            applied.sensor.record(-value, self._now_ms())

    def _drop_idle(self, now_ms: int) -> None:
        idle = [k for k, s in self._sensors.items() if now_ms - s.last_ms > IDLE_SENSOR_MS]
        for key in idle:
            del self._sensors[key]


# Never throttled for request time (Kafka exempts them too): a client must always be able to learn the
# broker's versions and log in.
_EXEMPT = (m.ApiVersionsRequest, m.SaslHandshakeRequest, m.SaslAuthenticateRequest)


class QuotaEnforcer:
    """What the server asks after each request: the throttle time, and the response to send."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.produce = ClientQuotaManager(PRODUCER_BYTE_RATE, now_ms)
        self.fetch = ClientQuotaManager(CONSUMER_BYTE_RATE, now_ms)
        self.request = ClientQuotaManager(REQUEST_PERCENTAGE, now_ms)
        self.active = False  # any quota at all: else the server skips the call
        self._request_active = False  # any request_percentage: else handling time is not recorded

    def update(self, quotas: ClientQuotas) -> None:
        """The coordinator's listener: the quotas in force from now on."""
        self.active = bool(quotas)
        self._request_active = any(REQUEST_PERCENTAGE in values for values in quotas.values())
        self.produce.update(quotas)
        self.fetch.update(quotas)
        self.request.update(quotas)
        log.info("client quotas now in force: %d entities", len(quotas))

    def throttle(
        self,
        principal: str,
        client_id: str,
        request: Struct,
        request_bytes: int,
        response: Struct | None,
        *,
        handled_s: float = 0.0,
    ) -> tuple[int, Struct | None]:
        """The throttle time (ms) of one handled request (the longest its quotas ask for), and the
        response to send with it set (a throttled Fetch's is empty). ``handled_s``: the handler's time,
        counted against request_percentage (seconds x 100 per second: percent of one thread). One call
        per request; nothing per record."""
        delay = 0
        fetched = -1
        kind = type(request)
        if kind is m.ProduceRequest:
            delay = self.produce.record(principal, client_id, request_bytes)
        elif kind is m.FetchRequest and isinstance(response, m.FetchResponse):
            if request.replica_id >= 0:  # type: ignore[attr-defined]
                return 0, response  # followers are never throttled
            fetched = sum(
                len(p.records) for t in response.responses for p in t.partitions if p.records is not None
            )
            delay = self.fetch.record(principal, client_id, fetched)
        if self._request_active and not isinstance(request, _EXEMPT):
            delay = max(delay, self.request.record(principal, client_id, handled_s * 100))
        if not delay:
            return 0, response
        if fetched >= 0 and isinstance(response, m.FetchResponse):
            # Kafka's throttled Fetch: answered empty, its bytes not counted (they are not sent)
            self.fetch.unrecord(principal, client_id, fetched)
            return delay, m.FetchResponse(
                throttle_time_ms=delay, error_code=0, session_id=response.session_id, responses=[]
            )
        if response is not None and hasattr(response, "throttle_time_ms"):
            response.throttle_time_ms = delay
        return delay, response  # acks=0 Produce has no response: the mute alone slows it
