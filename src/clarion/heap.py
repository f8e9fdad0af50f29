"""The garbage collector's settings for the long-running processes (`clarion serve`,
`clarion worker`).

CPython's cycle collector runs a young collection every 700 net allocations and, now and
then, a full one that walks every tracked object. These processes hold about 200,000 of them
once loaded (modules, routes, models, the phone-number data), and a full collection of that
heap took 130-220 ms of CPU on the 2-core machine: a worker sending 100,000 messages ran 15
of them, 2.3 s of its CPU, and an API process paused every request in flight for as long.

- Everything loaded at start is moved out of the collector's sight once its garbage is
  collected (`gc.freeze`): full collections then walk only what was made since.
- Young collections run every 20,000 net allocations instead of 700: a batch of a thousand
  messages allocates tens of thousands of objects that reference counting frees, and
  collecting every 700 walked the batch in flight again and again and promoted it to the
  older generations, which then needed full collections of their own.

Measured with `bench/dispatch.py` (one worker, PostgreSQL) and `bench/journey.py`: see
`docs/engine.md`.
"""

import gc

YOUNG_THRESHOLD = 20_000  # net allocations between two young collections (CPython: 700)


def settle() -> None:
    """Call once, after loading and before serving or sending."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD)  # the older generations keep CPython's thresholds
