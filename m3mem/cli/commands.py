"""Command name -> the function that runs it (``fn(args, settings) -> exit code``)."""

from __future__ import annotations

from m3mem.cli.answer import cmd_ask, cmd_eval
from m3mem.cli.ingest import cmd_ingest
from m3mem.cli.share import cmd_browse, cmd_export, cmd_import_m3agent
from m3mem.cli.inspect import cmd_search, cmd_show

COMMANDS = {"ingest": cmd_ingest, "ask": cmd_ask, "eval": cmd_eval, "show": cmd_show, "search": cmd_search,
            "browse": cmd_browse, "export": cmd_export, "import-m3agent": cmd_import_m3agent}
