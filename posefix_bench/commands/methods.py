"""List the refinement methods: the built-ins (posefix, identity, command, python) and installed plug-ins.

For each: its type, whether it reads the images, whether it has trained weights, where it comes from (built in, or
the entry point of the package that added it under the group ``posefix_bench.methods``) and a description.
``--json`` prints the same as JSON records.
"""

from __future__ import annotations

import argparse

HELP = "list the refinement methods (posefix, identity, command, python, installed plug-ins)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from posefix_bench.methods import list_methods
    from posefix_bench.reporting.tables import text_table

    infos = list_methods()
    if args.json:
        print(json.dumps([i.to_record() for i in infos], indent=2))
        return 0
    rows = [[i.type, i.uses_images, i.learned, i.origin, i.description] for i in infos]
    print(text_table(["method", "uses images", "learned", "from", "description"], rows))
    return 0
