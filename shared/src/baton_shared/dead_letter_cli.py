"""`baton-dlq`: look at the dead-letter streams and put entries back once the cause is fixed.

    baton-dlq                                  dead letters per stream
    baton-dlq list STREAM [--count N] [--after ID]
    baton-dlq show STREAM ID                   one entry, body included, as JSON
    baton-dlq redrive STREAM (ID... | --all)   back onto STREAM, out of the DLQ
    baton-dlq drop STREAM ID...                delete for good

Reads `REDIS_URL`, `REDIS_PREFIX` and `STREAM_MAXLEN` like the services. `list` prints no
event bodies (they hold customers' messages); `show` does, because it was asked to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from redis.asyncio import Redis
from redis.exceptions import RedisError

from baton_shared.cli import load_settings
from baton_shared.settings import BusSettings
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, is_entry_id
from baton_shared.streams.dead_letters import DeadLetter, DeadLetters

ERROR_WIDTH = 120


def _entry_id(value: str) -> str:
    if not is_entry_id(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a stream entry id (like 1732600000000-0)"
        )
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baton-dlq", description="Inspect, re-drive and drop dead-letter entries."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("counts", help="dead letters per stream (the default)")
    streams = {"choices": names.ALL_STREAMS, "metavar": "STREAM"}
    listing = commands.add_parser("list", help="entries of one stream's DLQ, oldest first")
    listing.add_argument("stream", **streams)  # type: ignore[arg-type]
    listing.add_argument("--count", type=_positive, default=50)
    listing.add_argument("--after", type=_entry_id, help="start after this entry")
    show = commands.add_parser("show", help="one entry with its original fields, as JSON")
    show.add_argument("stream", **streams)  # type: ignore[arg-type]
    show.add_argument("entry_id", type=_entry_id)
    redrive = commands.add_parser("redrive", help="append entries to their stream again")
    redrive.add_argument("stream", **streams)  # type: ignore[arg-type]
    redrive.add_argument("entry_ids", type=_entry_id, nargs="*", metavar="ID")
    redrive.add_argument("--all", action="store_true", help="every entry of this DLQ")
    drop = commands.add_parser("drop", help="delete entries for good")
    drop.add_argument("stream", **streams)  # type: ignore[arg-type]
    drop.add_argument("entry_ids", type=_entry_id, nargs="+", metavar="ID")
    return parser


def _line(letter: DeadLetter) -> str:
    error = " ".join(letter.error.split())
    if len(error) > ERROR_WIDTH:
        error = error[: ERROR_WIDTH - 1] + "…"
    return (
        f"{letter.entry_id}  group={letter.group or '?'}  deliveries={letter.deliveries}  "
        f"{letter.event_type or '?'}  event_id={letter.event_id or '?'}  {error}"
    )


async def _run(args: argparse.Namespace, dead: DeadLetters) -> int:
    command = args.command or "counts"
    if command == "counts":
        for stream, count in (await dead.counts()).items():
            print(f"{names.dlq(stream):28} {count}")
        return 0
    if command == "list":
        for letter in await dead.read(args.stream, after=args.after or "-", count=args.count):
            print(_line(letter))
        return 0
    if command == "show":
        found = await dead.get(args.stream, args.entry_id)
        if found is None:
            print(f"{args.entry_id}: not in {names.dlq(args.stream)}", file=sys.stderr)
            return 1
        shown = {
            "dlq_entry_id": found.entry_id,
            "stream": found.stream,
            "group": found.group,
            "original_entry_id": found.original_id,
            "deliveries": found.deliveries,
            "error": found.error,
            "fields": found.fields,
        }
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return 0
    if command == "redrive":
        ids = args.entry_ids
        if args.all:
            ids = [letter.entry_id async for letter in dead.all(args.stream)]
        missing = 0
        for entry_id in ids:
            new_id = await dead.redrive(args.stream, entry_id)
            if new_id is None:
                missing += 1
                print(f"{entry_id}: not in {names.dlq(args.stream)}", file=sys.stderr)
            else:
                print(f"{entry_id} -> {args.stream} {new_id}")
        print(f"re-driven {len(ids) - missing} of {len(ids)}")
        return 1 if missing else 0
    dropped = await dead.drop(args.stream, *args.entry_ids)
    print(f"dropped {dropped} of {len(args.entry_ids)}")
    return 0 if dropped == len(args.entry_ids) else 1


async def _main(args: argparse.Namespace, settings: BusSettings) -> int:
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        bus = Bus(redis, prefix=settings.redis_prefix, maxlen=settings.stream_maxlen)
        return await _run(args, DeadLetters(bus))
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `baton-dlq`."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "redrive" and bool(args.entry_ids) == args.all:
        parser.error("redrive takes entry ids or --all (one of the two)")
    settings = load_settings(BusSettings)
    try:
        return asyncio.run(_main(args, settings))
    except RedisError as exc:  # down, refusing, or the wrong address: say so, no traceback
        print(f"baton-dlq: Redis answered with an error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
