"""Run one benchmark by name: ``python -m bench NAME [--quick]``."""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "data": "bench.data",
    "federated_sql": "bench.federated_sql",
    "fedavg": "bench.fedavg",
    "heartbeats": "bench.heartbeats",
    "relay": "bench.relay",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    module = importlib.import_module(BENCHMARKS[args.name])
    result: int = module.run(quick=args.quick)
    return result


if __name__ == "__main__":
    sys.exit(main())
