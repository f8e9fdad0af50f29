"""Import a generated CSV through a real `clarion serve --no-sender` process.

For each backend (a fresh SQLite file; a fresh PostgreSQL database, created and dropped):
start the server, create an account and a list, upload the file to POST /lists/{id}/imports
(defaultCountry=FR), poll GET /imports/{id} until done. Prints rows/s per backend, the
server's peak RSS (VmHWM) and the bare `phonenumbers` rate on the same rows (parse +
is_valid_number, measured in this run), with the ratio import rate / bare rate.

The file: mixed countries (E.164 with and without spaces), 10% French national numbers
(read with defaultCountry=FR), 1% invalid, 1% repeats of an earlier phone, and name and
attribute columns.

    .venv/bin/python bench/import.py                 # 1,000,000 rows, both backends
    .venv/bin/python bench/import.py --quick         # 20,000 rows
    .venv/bin/python bench/import.py --rows 200000 --backends sqlite
"""

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import phonenumbers

sys.path.insert(0, str(Path(__file__).parent))
from audience_server import (
    ADMIN_TOKEN,
    cpu_seconds,
    descendants,
    peak_rss_mb,
    served,
)

# Number ranges that are valid for every suffix (checked at start), across 8 countries.
TEMPLATES = [
    ("+3361", 7),
    ("+3375", 7),
    ("+16502", 6),
    ("+12123", 6),
    ("+447400", 6),
    ("+4179", 7),
    ("+3247", 7),
    ("+31612", 6),
    ("+49151", 8),
    ("+34612", 6),
    ("+39320", 7),
    ("+9198", 8),
]
FIRST = ["Léa", "Marie", "John", "Ada", "Grace", "Hugo", "Emma", "Noah", "Zoé", "Liam"]
LAST = ["Martin", "Smith", "Lovelace", "Hopper", "Curie", "Dubois", "Müller", "Rossi"]
CITIES = ["Paris", "London", "New York", "Zürich", "Brussels", "Amsterdam", "Berlin", "Madrid"]


def check_templates() -> None:
    rng = random.Random(7)
    for prefix, width in TEMPLATES:
        for _ in range(300):
            number = phonenumbers.parse(f"{prefix}{rng.randrange(10**width):0{width}d}")
            assert phonenumbers.is_valid_number(number), prefix


def spaced(e164: str) -> str:
    return f"{e164[:3]} {e164[3:6]} {e164[6:9]} {e164[9:]}"


def generate(path: Path, rows: int) -> None:
    """Deterministic file of `rows` data rows."""
    rng = random.Random(42)
    seen: list[str] = []
    step = 7919  # coprime with 10**k: distinct suffixes for distinct counters
    counters = [0] * len(TEMPLATES)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("phone,firstName,lastName,city,plan\n")
        for i in range(rows):
            draw = rng.random()
            if draw < 0.01:
                phone = rng.choice(["12", "not a number", "+999123", "+33 1", "06 12"])
            elif draw < 0.02 and seen:
                phone = rng.choice(seen)
            elif draw < 0.12:
                n = counters[0]
                counters[0] += 1
                # French national format, e.g. "06 12 34 56 78", read with defaultCountry=FR
                digits = f"61{(n * step) % 10**7:07d}"
                phone = "0" + " ".join(
                    [digits[0], digits[1:3], digits[3:5], digits[5:7], digits[7:]]
                )
            else:
                t = rng.randrange(1, len(TEMPLATES))
                prefix, width = TEMPLATES[t]
                n = counters[t]
                counters[t] += 1
                phone = f"{prefix}{(n * step) % 10**width:0{width}d}"
                if rng.random() < 0.3:
                    phone = spaced(phone)
            if (
                i % 1000 == 0
                and len(seen) < 5000
                and not phone.startswith(("1", "n", "+9", "06 12"))
            ):
                seen.append(phone)
            plan = "gold" if i % 7 == 0 else ""
            f.write(f"{phone},{rng.choice(FIRST)},{rng.choice(LAST)},{rng.choice(CITIES)},{plan}\n")


def bare_parse_rate(path: Path) -> float:
    """phonenumbers.parse + is_valid_number over the phone column (the floor of an import)."""
    phones: list[str] = []
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            phones.append(line.split(",", 1)[0])
    parse, valid, exc = (
        phonenumbers.parse,
        phonenumbers.is_valid_number,
        phonenumbers.NumberParseException,
    )
    started = time.perf_counter()
    for raw in phones:
        try:  # noqa: SIM105 (contextlib.suppress costs more in this hot loop)
            valid(parse(raw, "FR"))
        except exc:
            pass
    return len(phones) / (time.perf_counter() - started)


async def run_import(base: str, csv: Path) -> tuple[float, dict[str, object]]:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(f"{base}/admin/accounts", json={"name": "bench"}, headers=admin) as r:
            assert r.status == 201, await r.text()
            key = (await r.json())["apiKey"]
        auth = {"Authorization": f"Bearer {key}"}
        async with http.post(f"{base}/lists", json={"name": "bench"}, headers=auth) as r:
            assert r.status == 201, await r.text()
            list_id = (await r.json())["id"]
        started = time.perf_counter()
        with csv.open("rb") as f:
            form = aiohttp.FormData()
            form.add_field("defaultCountry", "FR")
            form.add_field("file", f, filename="bench.csv", content_type="text/csv")
            async with http.post(f"{base}/lists/{list_id}/imports", data=form, headers=auth) as r:
                assert r.status == 202, await r.text()
                import_id = (await r.json())["id"]
        uploaded = time.perf_counter() - started
        print(f"  upload accepted after {uploaded:.1f} s", flush=True)
        last_print = 0.0
        while True:
            async with http.get(f"{base}/imports/{import_id}", headers=auth) as r:
                status = await r.json()
            now = time.perf_counter() - started
            if status["status"] != "running":
                return now, status
            if now - last_print > 5:
                print(f"  {now:5.0f} s  {status['rows']:,} rows", flush=True)
                last_print = now
            await asyncio.sleep(0.2)


async def bench_backend(backend: str, csv: Path, workdir: Path) -> dict[str, object]:
    async with served(backend, workdir) as (base, proc):
        cpu_before = cpu_seconds([proc.pid, *descendants(proc.pid)])
        seconds, status = await run_import(base, csv)
        workers = descendants(proc.pid)
        cpu = cpu_seconds([proc.pid, *workers]) - cpu_before
        rss = peak_rss_mb(proc.pid)
        worker_rss = max((peak_rss_mb(w) for w in workers), default=0.0)
    return {
        "backend": backend,
        "seconds": seconds,
        "cpu": cpu,
        "rss": rss,
        "worker_rss": worker_rss,
        **status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    check_templates()
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as tmp:
        workdir = Path(tmp)
        csv = workdir / "contacts.csv"
        started = time.perf_counter()
        generate(csv, rows)
        print(
            f"generated {rows:,} rows ({csv.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        bare = bare_parse_rate(csv)
        print(f"bare phonenumbers parse + is_valid_number: {bare:,.0f} rows/s", flush=True)
        results = []
        for backend in args.backends.split(","):
            print(f"{backend}:", flush=True)
            results.append(asyncio.run(bench_backend(backend.strip(), csv, workdir)))
        print(f"load: {os.getloadavg()}")
        print()
        header = (
            f"{'backend':<11}{'status':<8}{'rows':>10}{'imported':>10}{'updated':>9}{'invalid':>9}"
        )
        header += f"{'seconds':>9}{'rows/s':>9}{'ratio':>7}{'server RSS':>11}{'worker RSS':>11}"
        header += f"{'server CPU s':>13}{'rows/CPU s':>11}"
        print(header)
        for r in results:
            rate = int(r["rows"]) / float(r["seconds"])  # type: ignore[call-overload]
            print(
                f"{r['backend']!s:<11}{r['status']!s:<8}{r['rows']:>10,}{r['imported']:>10,}"
                f"{r['updated']:>9,}{r['invalid']:>9,}{r['seconds']:>9.1f}{rate:>9,.0f}"
                f"{rate / bare:>7.2f}{r['rss']:>9.0f}MB{r['worker_rss']:>9.0f}MB"
                f"{r['cpu']:>13.1f}{int(r['rows']) / float(r['cpu']):>11,.0f}"  # type: ignore[call-overload]
            )
            if r["status"] != "done":
                print(f"  failure: {r.get('failureReason')}")
        print(f"bare phonenumbers rate: {bare:,.0f} rows/s (ratio = import rate / bare rate)")
        print("server CPU s: user+system CPU of the server and its parse worker during the import")


if __name__ == "__main__":
    main()
