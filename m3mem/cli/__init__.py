"""The ``m3mem`` command line. Only this package parses arguments, prints and sets up logging.

Errors become exit codes in one table (``EXIT_CODES``): an ``m3mem`` error of a known kind prints
its message; anything else is a bug, reported as one (exit 1, traceback with ``--verbose``).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

from m3mem.config import load_settings
from m3mem.errors import InputError, M3memError, ModelError, UsageError

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

# error kind -> exit code, first match wins (subclasses before their bases)
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (UsageError, EXIT_USAGE),
    (InputError, EXIT_INPUT),
    (FileNotFoundError, EXIT_INPUT),  # a path the user gave does not exist
    (IsADirectoryError, EXIT_INPUT),
    (ModelError, EXIT_MODEL),
    (ImportError, EXIT_MODEL),  # an optional dependency of the chosen backend is missing
    (M3memError, EXIT_FAIL),  # a known failure that is nobody's input (a full disk: StorageError)
]

log = logging.getLogger("m3mem")


def exit_code(error: BaseException) -> int | None:
    """The exit code of a known kind of error, or None for an unexpected one (a bug)."""
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), None)


def main(argv: list[str] | None = None) -> int:
    from m3mem.cli.commands import COMMANDS
    from m3mem.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config, vars(args))
        return COMMANDS[args.command](args, settings)
    except KeyboardInterrupt:
        print("m3mem: interrupted; committed clips are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`m3mem show --json | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit flush does not fail again
        return 128 + 13  # as a process killed by SIGPIPE
    except Exception as e:  # noqa: BLE001  (the one place errors become exit codes)
        code = exit_code(e)
        if code is not None:
            print(f"m3mem: {e}", file=sys.stderr)
            return code
        if args.verbose:
            traceback.print_exc()
        print(f"m3mem: internal error: {type(e).__name__}: {e} (this is a bug; run with -v for the "
              f"traceback and report it)", file=sys.stderr)
        return EXIT_FAIL
