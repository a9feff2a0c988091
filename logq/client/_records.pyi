"""Types of the compiled record codec (logq/client/_records.c); records.py documents the behaviour."""

from typing import Any

class RecordsBuffer:
    base_timestamp: int
    max_timestamp: int
    count: int
    size_limit: int
    def __init__(self, base_timestamp: int, size_limit: int) -> None: ...
    def append(
        self, key: bytes | None, value: bytes | None, headers: bytes, timestamp: int
    ) -> int | None: ...
    @property
    def size(self) -> int: ...
    def section(self) -> bytes: ...

class FutureFields:
    _c: Any
    _delta: int
    _ts: int
    def __init__(self, completion: Any, delta: int, timestamp: int) -> None: ...

def now_ms() -> int: ...
def decode_records(
    records: bytes,
    records_count: int,
    base_offset: int,
    base_timestamp: int,
    timestamp_scale: int,
    queue: str,
    partition: int,
    from_offset: int,
    out: list[Any],
) -> None: ...
def setup(record_type: type[tuple[Any, ...]], error_type: type[Exception]) -> None: ...
