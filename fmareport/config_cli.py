"""`fmareport config PROFILE [CELL.yaml ...]`: validate params files, print the config."""

from __future__ import annotations

import argparse

import yaml

from .config import load_config, profile_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", help="profile name (smoke, demo, paper) or path to a profile YAML")
    p.add_argument("cells", nargs="*", help="experiment cell YAMLs, applied in order (later wins)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(profile_path(args.profile), *args.cells)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
