"""``gateway`` / ``python -m gateway``: flags and environment to a running gateway.

Every flag ``--some-name`` can also be set as ``GATEWAY_SOME_NAME``; a flag
on the command line wins over the environment. The flags are derived from
the config dataclasses (``flags``, ``settings``). ``gateway journal ...``
inspects and salvages the journal (``journal``).

Exit codes: 0 stopped by a signal; 1 a fatal error or a start-up failure;
2 bad settings (one line on stderr); 65 the journal is damaged and needs an
operator's ``gateway journal salvage``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from gateway.cli.flags import FLAGS, SETTINGS, build_parser, config_from_args
from gateway.config import GatewayConfig
from gateway.observability import logs

__all__ = ["EXIT_JOURNAL_DAMAGED", "FLAGS", "SETTINGS", "build_parser", "config_from_args", "main"]

log = logging.getLogger("gateway")

EXIT_JOURNAL_DAMAGED = 65  # EX_DATAERR (sysexits.h): the journal, not the setup, is at fault


async def serve(config: GatewayConfig) -> int:
    """Run the gateway until SIGTERM or SIGINT (exit 0) or a fatal failure (exit 1)."""
    from gateway.app import Gateway

    gateway = Gateway(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    exit_code = 0
    try:
        await gateway.start()
        signalled = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(gateway.actor.wait_failed())
        await asyncio.wait((signalled, failed), return_when=asyncio.FIRST_COMPLETED)
        for waiter in (signalled, failed):
            waiter.cancel()
        if gateway.actor.failure is not None:
            log.critical("stopping after a fatal error: %r", gateway.actor.failure)
            exit_code = 1
        else:
            log.info("signal received: draining")
            await gateway.drain()
    finally:
        await gateway.stop()
    log.info("stopped")
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` command (``gateway journal ...`` inspects)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["journal"]:
        from gateway.cli import journal

        return journal.main(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    logs.configure(config.log.level, config.log.format)
    from gateway.app import JournalNeedsSalvage, StartupError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(serve(config))
    except StartupError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return EXIT_JOURNAL_DAMAGED if isinstance(exc, JournalNeedsSalvage) else 1
    return 0
