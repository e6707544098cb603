"""Runs the transform natively in CPython: `python -m unittest`."""

import unittest

import hookgate
from app import camel_case, transform
from hookgate import Event, InvalidEvent


class PartnerTest(unittest.TestCase):
    def check(self, hook_type, expected):
        event = Event.from_json(hook_type, {"shop_id": "s1", "order": {"line_items": [{"unit_price": 5}]}})
        outcome = hookgate.run(transform, event, {"companyId": "c9"})
        if expected is None:
            self.assertIn(hook_type, outcome.dropped)
            return
        request = outcome.requests[0]
        body = request.body_json()
        self.assertEqual(body["webHookType"], expected)
        self.assertEqual(body["companyId"], "c9")
        self.assertEqual(body["shopId"], "s1")
        self.assertEqual(body["data"]["order"]["lineItems"][0]["unitPrice"], 5)
        self.assertEqual(request.header_value("x-partner-webhook-type"), expected)

    def test_maps_every_partner_type_and_drops_the_rest(self):
        self.check("order_created", "NEW_CONSUMER_ORDER")
        self.check("customer.updated", "UPDATE_CONSUMER_USER")
        self.check("transaction.cancelled", "CANCEL_TRANSACTION")
        self.check("UPDATE_PRODUCT", "UPDATE_PRODUCT")
        self.check("order_removed", None)

    def test_camel_cases_keys(self):
        self.assertEqual(camel_case("line_items"), "lineItems")
        self.assertEqual(camel_case("_private"), "private")
        self.assertEqual(camel_case("already"), "already")

    def test_refuses_a_payload_that_is_not_an_object(self):
        with self.assertRaises(InvalidEvent):
            hookgate.run(transform, Event.from_json("order_created", [1, 2]))


if __name__ == "__main__":
    unittest.main()
