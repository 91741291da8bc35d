"""The ``lago-async`` command (also ``python -m lago_async``).

    lago-async ingest events.jsonl        # send a JSONL or CSV file of events, resumably

See ``lago-async ingest --help`` and docs/backfill.md.
"""

from __future__ import annotations

import argparse
import sys

from ._version import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: the process's); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="lago-async", description="Command-line tools of the lago-async SDK."
    )
    parser.add_argument("--version", action="version", version=f"lago-async {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ingest = commands.add_parser(
        "ingest",
        help="send a JSONL or CSV file of events to Lago, resumably",
        description="Send a JSONL or CSV file (or standard input) of events to Lago in "
        "batches, with a progress display, a checkpoint to resume from after an "
        "interruption, and a file listing the rows that could not be sent. Exit status: "
        "0 all delivered, 1 some rows rejected, 2 usage error, 3 delivery failed (run again "
        "to resume), 130 interrupted.",
    )
    from . import _backfill

    _backfill.add_arguments(ingest)
    args = parser.parse_args(argv)
    return _backfill.run(args)


if __name__ == "__main__":
    sys.exit(main())
