"""Per-call cost of SMS segment counting and template rendering.

A personalized estimate renders and counts once per recipient: 1,000,000 recipients within
the 5 s budget of `calculateGoal` leaves about 5 µs per recipient for everything, so this
prints calls/s for each piece and the share of that budget they take.

    .venv/bin/python bench/segments.py [--calls 1000000] [--repeat 3] [--quick]
"""

import argparse
import os
import random
import time
from collections.abc import Callable

from clarion.pricing.segments import count_segments, split_parts
from clarion.templates.render import compile_template

BUDGET_RECIPIENTS = 1_000_000
BUDGET_SECONDS = 5.0


REPEAT = 3


def measure(
    name: str, calls: int, fn: Callable[[int], object], *, estimate: bool = True
) -> tuple[float, float]:
    """Best of REPEAT runs: the machine is shared, the best run is the least disturbed. The
    process CPU time is printed too: on a busy machine it is the steadier figure."""
    elapsed = cpu = float("inf")
    for _ in range(REPEAT):
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(calls):
            fn(i)
        elapsed = min(elapsed, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    rate = calls / elapsed
    per_call = elapsed / calls * 1e6
    share = per_call * BUDGET_RECIPIENTS / 1e6 / BUDGET_SECONDS
    budget = f"{share:6.1%} of the 1M-recipient 5 s budget" if estimate else "(send time only)"
    print(
        f"{name:<44} {rate:>11,.0f} calls/s  {per_call:6.2f} µs/call "
        f"({cpu / calls * 1e6:5.2f} µs CPU)  {budget}"
    )
    return elapsed / calls, cpu / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (20,000 calls)")
    args = parser.parse_args()
    calls = 20_000 if args.quick else args.calls
    global REPEAT
    REPEAT = 1 if args.quick else max(1, args.repeat)

    rng = random.Random(7)
    first_names = ["Anne", "Bob", "Chloé", "Dmitri", "Eve", "François", "Günter", "Hana", ""]
    cities = ["Paris", "Lyon", "Zürich", "Kraków", "São Paulo", "Oslo"]
    contacts = [
        {
            "firstName": rng.choice(first_names),
            "lastName": rng.choice(["Martin", "Smith", "Ødegaard", None]),
            "phone": f"+3361234{i:04d}",
            "attributes": {"city": rng.choice(cities), "points": rng.randint(0, 5000)},
        }
        for i in range(1000)
    ]
    params = {"firstName": "friend", "code": "BF20"}

    gsm = (
        "Hi there, 20% off everything today only! Use code BF20 at checkout. Reply STOP to opt out"
    )
    gsm_long = (gsm + " [terms apply] ") * 3
    ucs2 = "Привет! Скидка 20% на всё только сегодня. Код BF20. Ответьте STOP для отказа"
    emoji = "Black Friday 🎉 20% off everything today only! Code BF20 👉 Reply STOP to opt out"
    template = (
        "Hi {{firstName}} {{ lastName }}, {{attributes.city}} store: 20% off today with code "
        "{{code}}. You have {{attributes.points}} points. Reply STOP to opt out"
    )
    renderer = compile_template(template)

    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"calls per measurement: {calls:,}, best of {REPEAT}")
    measure(
        f"count_segments GSM-7 ({len(gsm)} chars, 1 part)", calls, lambda i: count_segments(gsm)
    )
    measure(
        f"count_segments GSM-7 ext ({len(gsm_long)} chars)",
        calls,
        lambda i: count_segments(gsm_long),
    )
    measure(f"count_segments UCS-2 ({len(ucs2)} chars)", calls, lambda i: count_segments(ucs2))
    measure(
        f"count_segments UCS-2 emoji ({len(emoji)} chars)", calls, lambda i: count_segments(emoji)
    )
    measure(
        "render (5 variables)",
        calls,
        lambda i: renderer.render(contacts[i % 1000], params),
    )
    wall, cpu = measure(
        "render + count_segments (personalized)",
        calls,
        lambda i: count_segments(renderer.render(contacts[i % 1000], params)),
    )
    measure(
        "split_parts GSM-7 ext (multi-part)",
        calls // 10,
        lambda i: split_parts(gsm_long),
        estimate=False,
    )
    measure(
        "split_parts UCS-2 emoji (multi-part)",
        calls // 10,
        lambda i: split_parts(emoji),
        estimate=False,
    )
    print(
        f"1,000,000 personalized recipients: {BUDGET_RECIPIENTS * wall:.2f} s of render+count "
        f"({BUDGET_RECIPIENTS * cpu:.2f} s CPU) "
        f"(budget {BUDGET_SECONDS:.0f} s for the whole estimate)"
    )


if __name__ == "__main__":
    main()
