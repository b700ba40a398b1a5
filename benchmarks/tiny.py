"""`--tiny`, the option every benchmark takes: sizes that run in seconds, which tests/test_benchmarks.py
runs so that no benchmark stops running unnoticed. It checks the benchmark runs; its numbers mean nothing."""

from __future__ import annotations

import argparse


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None, tiny: dict) -> argparse.Namespace:
    """`parser`'s arguments from `argv`, with --tiny added; under --tiny, `tiny`'s values replace them."""
    parser.add_argument("--tiny", action="store_true", help="sizes that run in seconds: the numbers mean nothing")
    args = parser.parse_args(argv)
    if args.tiny:
        vars(args).update(tiny)
    return args
