"""Signatures made and checked by the providers' own packages, for
`tests/tests/sources.rs`. The body is read from stdin.

- `standard-webhooks SECRET MSG_ID TIMESTAMP`: prints the `webhook-signature`
  value made by the `standardwebhooks` package (PyPI).
- `stripe-verify SECRET HEADER`: exits 0 when Stripe's own library
  (`stripe.WebhookSignature.verify_header`) accepts the header for the
  body, 1 with the reason otherwise.
"""

import sys
from datetime import datetime, timezone


def main():
    command, *args = sys.argv[1:]
    body = sys.stdin.buffer.read()
    if command == "standard-webhooks":
        from standardwebhooks.webhooks import Webhook

        secret, msg_id, timestamp = args
        when = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
        print(Webhook(secret).sign(msg_id, when, body.decode()))
    elif command == "stripe-verify":
        import stripe

        secret, header = args
        try:
            stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=600)
        except stripe.SignatureVerificationError as error:
            print(error, file=sys.stderr)
            sys.exit(1)
    else:
        sys.exit(f"unknown command {command}")


main()
