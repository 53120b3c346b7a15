"""`make bench`: run every benchmark and print its figures."""

from __future__ import annotations

import asyncio
import sys

from bench import e2e_latency


def main() -> int:
    """Run the benchmarks in turn."""
    asyncio.run(e2e_latency.main(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
