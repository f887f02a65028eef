"""`python -m stripe_emulator`: serve the emulator on a live port with background delivery."""

from __future__ import annotations

import argparse
import logging
import signal

from werkzeug.serving import make_server

from . import taxes
from .app import Emulator
from .errors import StripeAPIError
from .sdkfacts import PINNED_VERSION
from .versions import check_version


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second signal must not interrupt the final save.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument(
        "--webhook-url",
        help="also register an endpoint taking every event here (tests; the shop registers "
        "its own through POST /v1/webhook_endpoints)",
    )
    parser.add_argument("--webhook-secret", default="whsec_test", help="signing secret of --webhook-url")
    parser.add_argument(
        "--api-version",
        default=PINNED_VERSION,
        help="the account's default API version (for endpoints created without one)",
    )
    parser.add_argument(
        "--state", metavar="PATH", help="SQLite file that keeps all state across restarts (default: in memory)"
    )
    parser.add_argument("--business-name", default="Your business", help="the name the hosted payment page shows")
    parser.add_argument("--public-url", help="base URL of hosted pages (default http://HOST:PORT)")
    parser.add_argument("--rate-limit", action="store_true", help="25 requests/s per endpoint")
    parser.add_argument(
        "--async-delay", type=float, default=5.0, help="seconds until a delayed payment completes on its own"
    )
    parser.add_argument(
        "--tax-registration",
        action="append",
        default=[],
        metavar="COUNTRY[-STATE]:PERCENT",
        help="a Stripe Tax registration and its combined rate, e.g. US-CA:7.25 or DE:19 (repeatable); with none, "
        "Stripe Tax is not set up and automatic_tax[enabled]=true is refused",
    )
    parser.add_argument(
        "--tax-checkout-default",
        choices=taxes.DEFAULTS,
        default="disabled",
        help="the account's checkout_sessions[automatic_tax_default_value]: enabled_when_possible adds tax to "
        "sessions that do not pass automatic_tax at all (when they pass Stripe Tax's checks)",
    )
    parser.add_argument(
        "--tax-default-behavior",
        choices=("inclusive", "exclusive"),
        help="Stripe Tax's default tax behavior for prices and shipping rates without tax_behavior",
    )
    args = parser.parse_args(argv)
    try:
        check_version(args.api_version, "--api-version")
    except StripeAPIError as error:
        parser.error(error.message)
    try:
        registrations = tuple(taxes.Registration.parse(text) for text in args.tax_registration)
    except ValueError as error:
        parser.error(f"--tax-registration {error}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator logs each request itself
    emulator = Emulator(
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        rate_limit=args.rate_limit,
        async_delivery=True,
        async_delay=args.async_delay,
        api_version=args.api_version,
        state_path=args.state,
        business_name=args.business_name,
        tax=taxes.TaxSettings(registrations, args.tax_checkout_default, args.tax_default_behavior),
    )
    server = make_server(args.host, args.port, emulator.wsgi_app, threaded=True)
    print(f"stripe emulator listening on http://{args.host}:{server.port}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: the state file is closed cleanly
    signal.signal(signal.SIGINT, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()


if __name__ == "__main__":
    main()
