"""`python -m newsletter.stripe_sandbox`: the sandbox on its own, until Ctrl-C."""
from __future__ import annotations

import argparse
import threading

from newsletter.billing import Plan
from newsletter.config import DEFAULTS
from newsletter.stripe_sandbox.dev import app_env, make_plan
from newsletter.stripe_sandbox.sandbox import Sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m newsletter.stripe_sandbox",
                                     description="A Stripe sandbox on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", help="where events go, e.g. http://127.0.0.1:5000/stripe/webhook")
    parser.add_argument("--with-plan", action="store_true",
                        help="make the membership's product and monthly price (the defaults of newsletter.config)")
    parser.add_argument("--state-file", help="keep the state in this JSON file across runs (default: in memory only)")
    args = parser.parse_args(argv)
    sandbox = Sandbox(webhook_url=args.webhook_url, state_file=args.state_file)
    sandbox.start(args.host, args.port)
    try:
        if args.with_plan:
            make_plan(sandbox, Plan.from_config(DEFAULTS))
        print(f"Stripe sandbox at {sandbox.url} (controls under {sandbox.url}/_sandbox/)")
        for name, value in app_env(sandbox).items():
            print(f"export {name}={value}", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
