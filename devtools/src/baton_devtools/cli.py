"""`baton-dev`: entry point for the development doubles and the `make run` supervisor."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, function, help). Imported lazily so one tool's import cost or
# failure never affects another.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("baton_devtools.supervisor", "main", "start the whole stack in the foreground"),
    "infra": ("baton_devtools.infra", "main", "print or start PostgreSQL and Redis"),
    "wa-emulator": ("baton_devtools.whatsapp.app", "main", "serve the WhatsApp Cloud API emulator"),
    "gemini-emulator": ("baton_devtools.gemini.app", "main", "serve the Gemini API emulator"),
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch `baton-dev <command> [args...]` to the module that implements it."""
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="baton-dev", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args[:1])
    module_name, func_name, _ = COMMANDS[ns.command]
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(args[1:])
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
