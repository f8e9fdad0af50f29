"""Template rendering rate: `compile_template(text).render(contact, params)` per recipient.

A personalized estimate and the sender render one text per recipient, so this is on the hot
path of both. Renders a few templates over generated contacts (contact fields, attributes,
parameters, empty values that take their fallback) and prints renders/s for each, the best
of `--repeat` runs, in CPU time of this process (the machine may be shared).

    .venv/bin/python bench/render.py                  # 200,000 contacts
    .venv/bin/python bench/render.py --contacts 1000000
"""

import argparse
import random
import time
from typing import Any

from clarion.templates.render import compile_template

TEMPLATES = {
    "fields+param": "Hi {{firstName}} {{lastName}}, use code {{code}} before Friday.",
    "attributes": "{{firstName}}, your {{attributes.plan}} plan in {{ attributes.city }} ends.",
    "repeated": "{{firstName}}! {{firstName}}, {{code}} {{code}} {{attributes.city}}",
    "no variables": "Our store opens at 9 tomorrow.",
}
PARAMS = {"code": "BF20", "firstName": "there", "city": "your city"}


def contacts(count: int) -> list[dict[str, Any]]:
    rng = random.Random(3)
    out = []
    for i in range(count):
        out.append(
            {
                "firstName": rng.choice(["Léa", "John", "", None, "Zoé"]),
                "lastName": rng.choice(["Martin", "Smith", None]),
                "phone": f"+3361{i:07d}",
                "attributes": {
                    "city": rng.choice(["Paris", "Lyon", ""]),
                    "plan": rng.choice(["gold", "basic"]),
                    "points": i,
                },
            }
        )
    return out


def rate(text: str, people: list[dict[str, Any]], repeat: int) -> float:
    renderer = compile_template(text)
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for contact in people:
            renderer.render(contact, PARAMS)
        best = min(best, time.process_time() - started)
    return len(people) / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    people = contacts(args.contacts)
    print(f"{'template':<14}{'renders/s':>12}")
    for name, text in TEMPLATES.items():
        print(f"{name:<14}{rate(text, people, args.repeat):>12,.0f}")
    print(f"{args.contacts:,} contacts, best of {args.repeat} runs, per CPU second")


if __name__ == "__main__":
    main()
