"""Parsers for the small languages on the command line: consume offsets (``-o``), timestamps, ISO 8601
durations and datetimes, ``key=value`` pairs and ``QUEUE[:P,P]`` scopes. Each raises ValueError with a
message fit for one line."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class OffsetSpec:
    """Where ``logq consume`` starts: ``beginning``, ``end``, ``offset`` (value N), ``from_end`` (value N:
    N records before the end), ``timestamp`` (value ms), or ``stored`` (the group's committed offset)."""

    kind: str
    value: int = 0


def parse_offset_spec(text: str) -> OffsetSpec:
    """``beginning|earliest|start``, ``end|latest``, ``stored``, ``N``, ``-N``, ``@TIMESTAMP``."""
    t = text.strip()
    lowered = t.lower()
    if lowered in ("beginning", "earliest", "start", "oldest"):
        return OffsetSpec("beginning")
    if lowered in ("end", "latest", "newest"):
        return OffsetSpec("end")
    if lowered == "stored":
        return OffsetSpec("stored")
    if re.fullmatch(r"\d+", t):
        return OffsetSpec("offset", int(t))
    if re.fullmatch(r"-\d+", t):
        return OffsetSpec("from_end", int(t[1:]))
    if t.startswith(("@", "s@")):
        return OffsetSpec("timestamp", parse_timestamp(t.split("@", 1)[1]))
    raise ValueError(
        f"bad offset {text!r}: use beginning, end, stored, N (an offset), -N (N before the end) "
        "or @TIMESTAMP (ms, s or ISO 8601)"
    )


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch from 13-digit ms, 10-digit seconds, or an ISO 8601 date/datetime
    (UTC unless it has an offset)."""
    t = text.strip()
    if re.fullmatch(r"\d{11,}", t):
        return int(t)
    if re.fullmatch(r"\d{1,10}", t):
        return int(t) * 1000
    return parse_datetime(t)


def parse_datetime(text: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"bad date/time {text!r}: use ISO 8601, e.g. 2026-11-26T09:30:00 or 2026-11-26T09:30:00+01:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def parse_duration_ms(text: str) -> int:
    """An ISO 8601 duration ``PnDTnHnMnS`` (as kafka-consumer-groups' --by-duration) in milliseconds."""
    t = text.strip()
    match = _DURATION.fullmatch(t)
    if not match or t.upper() in ("P", "PT") or t.upper().endswith("T"):
        raise ValueError(f"bad duration {text!r}: use ISO 8601 PnDTnHnMnS, e.g. PT30M or P1DT12H")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    seconds = (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )
    return int(seconds * 1000)


def parse_key_values(items: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"bad {what} {item!r}: expected key=value")
        out[key] = value
    return out


def parse_partitions(text: str) -> list[int]:
    """``0,1,5`` or ``0-3`` pieces, as a sorted list without duplicates."""
    out: set[int] = set()
    for piece in (p.strip() for p in text.split(",") if p.strip()):
        if re.fullmatch(r"\d+", piece):
            out.add(int(piece))
        elif re.fullmatch(r"\d+-\d+", piece):
            low, high = (int(x) for x in piece.split("-"))
            if low > high:
                raise ValueError(f"bad partition range {piece!r}")
            out.update(range(low, high + 1))
        else:
            raise ValueError(f"bad partition list {text!r}: expected numbers such as 0,1,2 or 0-3")
    if not out:
        raise ValueError(f"bad partition list {text!r}: no partition given")
    return sorted(out)


def parse_queue_scope(text: str) -> tuple[str, list[int] | None]:
    """``QUEUE`` (every partition: None) or ``QUEUE:P,P``."""
    queue, sep, parts = text.partition(":")
    if not queue:
        raise ValueError(f"bad queue {text!r}: expected QUEUE or QUEUE:P,P")
    return queue, (parse_partitions(parts) if sep else None)
