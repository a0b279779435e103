#!/usr/bin/env python3
"""A RefundEngine protocol client in the Python standard library only: a second, independent client of
refundd's line-delimited JSON protocol (docs/protocol.md).

    python3 tools/refund_client.py [--host H] [--port P] [--token T] quickstart
    python3 tools/refund_client.py [--host H] [--port P] call OP '{"order_id":"ord_1"}'

`quickstart` runs the README's quick-start session (put the contract's order, preview, refund with a £5.00
cancellation fee, read it back) and checks the contract's worked example: refunded 4135, fee 500, tax 669,
tenders 2540 / 1595. It exits 0 when everything matches.
"""
import argparse
import itertools
import json
import socket
import sys

CONTRACT_ORDER = {
    "id": "ord_1", "event": "evt_1", "event_starts_at": "2026-12-01T19:00:00Z", "customer": "cus_9",
    "email": "a@example.com", "currency": "GBP", "channel": "online", "source": "paid", "parent": None,
    "frozen": False, "sync_pending": False, "booking_fee": 150,
    "lines": [{"id": "l1", "kind": "ticket", "ticket_type": "tt_ga", "price": 5000, "discount": 500, "tax": 750,
               "processing_fee": 135, "platform_fee": 99, "transferred": False, "claimed": False}],
    "tenders": [{"id": "t1", "method": "card", "amount": 3000, "gateway_ref": "pi_1"},
                {"id": "t2", "method": "wallet", "amount": 1884}],
}


class ProtocolError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class Client:
    """One connection; requests are sent one at a time and matched by id."""

    def __init__(self, host, port, token=None, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.ids = itertools.count(1)
        if token:
            self.call("auth", token=token)

    def call(self, op, **fields):
        request_id = next(self.ids)
        request = {"id": request_id, "op": op, **fields}
        self.sock.sendall(json.dumps(request, separators=(",", ":")).encode() + b"\n")
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("refundd closed the connection")
            response = json.loads(line)
            if response.get("id") != request_id:
                continue  # an event line or another request's answer
            if response.get("ok"):
                return response["result"]
            error = response.get("error", {})
            raise ProtocolError(error.get("code"), error.get("message"))

    def close(self):
        self.reader.close()
        self.sock.close()


def quickstart(client):
    def show(label, value):
        print(f"{label}: {json.dumps(value, sort_keys=True)}")

    order = client.call("order.put", order=CONTRACT_ORDER)
    show("order.put status", order["status"])
    preview = client.call("refund.preview", order_id="ord_1", method="original", fee={"order": 500},
                          reason="event_cancelled")
    show("refund.preview", {k: preview[k] for k in ("amount", "fee_retained", "tax")})
    refund = client.call("refund.create", order_id="ord_1", method="original", fee={"order": 500},
                         reason="event_cancelled", idempotency_key="quickstart-1")
    show("refund.create", {"id": refund["id"], "status": refund["status"], "amount": refund["amount"]})
    again = client.call("order.get", order_id="ord_1")
    show("order.get totals", again["totals"])
    receipt = client.call("refund.receipt", refund_id=refund["id"])
    print(receipt["text"])
    try:
        client.call("refund.create", order_id="ord_1", method="original", reason="event_cancelled")
        problems = ["a second refund of a fully refunded order was accepted"]
    except ProtocolError as error:
        print(f"second refund refused: {error}")
        problems = []
    expected = {"amount": 4135, "fee_retained": 500, "tax": 669}
    for key, value in expected.items():
        if refund[key] != value or preview[key] != value:
            problems.append(f"{key}: refund {refund[key]}, preview {preview[key]}, expected {value}")
    tenders = [t["amount"] for t in refund["transactions"]]
    if tenders != [2540, 1595]:
        problems.append(f"tenders {tenders}, expected [2540, 1595]")
    if again["status"] != "refunded":
        problems.append(f"order status {again['status']}, expected refunded")
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    print("quickstart ok" if not problems else "quickstart FAILED")
    return 0 if not problems else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7654)
    parser.add_argument("--token")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("quickstart")
    call = sub.add_parser("call")
    call.add_argument("op")
    call.add_argument("fields", nargs="?", default="{}")
    args = parser.parse_args()
    client = Client(args.host, args.port, args.token)
    try:
        if args.command == "quickstart":
            return quickstart(client)
        result = client.call(args.op, **json.loads(args.fields))
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    except ProtocolError as error:
        print(f"error {error}", file=sys.stderr)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
