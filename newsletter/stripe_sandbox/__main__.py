"""`python -m newsletter.stripe_sandbox`: the sandbox on its own, until Ctrl-C."""
from __future__ import annotations

import argparse
import threading

from newsletter.stripe_sandbox.dev import DevSandbox, MembershipPrice


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m newsletter.stripe_sandbox",
                                     description="A Stripe sandbox on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", help="where events go, e.g. http://127.0.0.1:5000/stripe/webhook")
    parser.add_argument("--with-price", action="store_true",
                        help="make a monthly membership price (5.00 EUR, lookup key community_monthly)")
    args = parser.parse_args(argv)
    price = MembershipPrice() if args.with_price else None
    with DevSandbox(args.webhook_url, args.host, args.port, price) as running:
        print(f"Stripe sandbox at {running.url} (controls under {running.url}/_sandbox/)")
        for name, value in running.env.items():
            print(f"export {name}={value}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
