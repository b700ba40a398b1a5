"""`fmareport` command line: one subcommand per step of the pipeline.

Each subcommand lives in the module that does the work; that module defines
`add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
their subcommand runs, so `fmareport synth --help` does not import torch. A bad params
file (ConfigError) ends any subcommand here, with its message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .config import ConfigError

# (subcommand, module, one-line help)
COMMANDS = [
    ("synth", "fmareport.synth", "write a synthetic data set in FMA's exact on-disk format"),
    ("fetch", "fmareport.fetch", "download and verify FMA (fma_metadata.zip, fma_small.zip)"),
    ("prepare", "fmareport.store", "decode every track once into a clip store (int16 .npy + index)"),
    ("config", "fmareport.config_cli", "check params files and print the resolved config"),
    ("summary", "fmareport.summary", "print the network's layer table for each input kind"),
    ("book", "fmareport.book", "build the HTML report (Jupyter Book) of one profile's results"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fmareport", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    for name, module, help_ in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        # Build each subparser's arguments lazily: only the chosen one imports its module.
        if argv and argv[0] == name:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except ConfigError as err:
        print(f"fmareport {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
