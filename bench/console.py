"""Benchmark: what the web console costs a browser.

    python bench/console.py                          # size of the first page's JS and CSS
    python bench/console.py --url http://127.0.0.1:8000 --key KEY [--repeat 20]

1. The first page's weight: every script and stylesheet `index.html` loads before the first
   paint (the entry chunk, its module preloads and CSS), compressed as `clarion serve` sends
   them (gzip through Starlette's GZipMiddleware, level 9), against the 300 KB budget. Chunks
   fetched later (each page, the chart library) are listed apart.
2. With --url and --key: the time each page waits for its first rows, that is the API calls it
   makes before it can render them (first page of each list, the statistics of the last 30
   days, one campaign and its recipients), timed over HTTP against a running server with
   whatever data it holds (median and worst of --repeat runs).
"""

import argparse
import gzip
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

DIST = Path(__file__).resolve().parents[1] / "src" / "clarion" / "console_dist"
BUDGET = 300 * 1024


def first_page_files(dist: Path) -> list[Path]:
    index = (dist / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="(/assets/[^"]+\.(?:js|css))"', index)
    return [dist / ref.lstrip("/") for ref in dict.fromkeys(refs)]


def compressed(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def weigh(dist: Path) -> None:
    if not (dist / "index.html").is_file():
        sys.exit(f"no console build in {dist}: run `make console` first")
    first = first_page_files(dist)
    total = 0
    print("first page (loaded before the first paint):")
    for path in first:
        size = compressed(path)
        total += size
        print(f"  {path.name:<40} {path.stat().st_size / 1024:8.1f} KB  gzip {size / 1024:7.1f} KB")
    verdict = "within" if total <= BUDGET else "OVER"
    print(f"  total compressed JS+CSS: {total / 1024:.1f} KB ({verdict} the 300 KB budget)")
    later = sorted(set((dist / "assets").glob("*")) - set(first), key=lambda p: p.name)
    lazy = sum(compressed(p) for p in later if p.suffix in (".js", ".css"))
    print(f"loaded on demand: {len(later)} chunks, {lazy / 1024:.1f} KB compressed in all")


def time_pages(url: str, key: str, repeat: int) -> None:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    today = datetime.now(UTC).date()
    month = {"from": str(today - timedelta(days=29)), "to": str(today)}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        latest = client.get("/campaigns", params={"limit": 1}).json()["items"]
        campaign = latest[0]["id"] if latest else None
        pages: dict[str, list[tuple[str, dict[str, object]]]] = {
            "Dashboard": [
                ("/account", {}),
                ("/campaigns", {"status": "sending", "limit": 20}),
                ("/campaigns/stats", month),
            ],
            "Campaigns": [("/campaigns", {"limit": 50})],
            "Contacts": [("/contacts", {"limit": 50})],
            "Contacts search": [("/contacts", {"limit": 50, "search": "+336"})],
            "Lists": [("/lists", {"limit": 50})],
            "Templates": [("/templates", {"limit": 50})],
            "Statistics": [("/campaigns/stats", month)],
            "Settings": [("/users", {"limit": 100}), ("/account/ledger", {"limit": 20})],
        }
        if campaign is not None:
            pages["Campaign"] = [
                (f"/campaigns/{campaign}", {}),
                (f"/campaigns/{campaign}/messages", {"limit": 50}),
            ]
        print(f"time to first rows (API calls before the page can render), {repeat} runs:")
        for name, calls in pages.items():
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                for path, params in calls:
                    answer = client.get(path, params=params)
                    answer.raise_for_status()
                samples.append(time.perf_counter() - started)
            print(
                f"  {name:<16} median {statistics.median(samples) * 1000:7.1f} ms"
                f"  worst {max(samples) * 1000:7.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=DIST)
    parser.add_argument("--url", help="a running clarion serve, to time the pages' first rows")
    parser.add_argument("--key", help="an API key of the account to read")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    weigh(args.dist)
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        time_pages(args.url, args.key, args.repeat)


if __name__ == "__main__":
    main()
