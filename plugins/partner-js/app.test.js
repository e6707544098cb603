// Runs the transform natively in Node.js: `node --test`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { camelCase, transform } from './app.js';
import { Event, InvalidEvent, run } from './hookgate.js';

function check(hookType, expected) {
  const event = Event.fromJson(hookType, { shop_id: 's1', order: { line_items: [{ unit_price: 5 }] } });
  const outcome = run(transform, event, { companyId: 'c9' });
  if (expected === undefined) {
    assert.ok(outcome.dropped.includes(hookType), outcome.dropped);
    return;
  }
  const request = outcome.requests[0];
  const body = request.bodyJson();
  assert.equal(body.webHookType, expected);
  assert.equal(body.companyId, 'c9');
  assert.equal(body.shopId, 's1');
  assert.equal(body.data.order.lineItems[0].unitPrice, 5);
  assert.equal(request.headerValue('x-partner-webhook-type'), expected);
}

test('maps every partner type and drops the rest', () => {
  check('order_created', 'NEW_CONSUMER_ORDER');
  check('customer.updated', 'UPDATE_CONSUMER_USER');
  check('transaction.cancelled', 'CANCEL_TRANSACTION');
  check('UPDATE_PRODUCT', 'UPDATE_PRODUCT');
  check('order_removed', undefined);
});

test('camel-cases keys', () => {
  assert.equal(camelCase('line_items'), 'lineItems');
  assert.equal(camelCase('_private'), 'private');
  assert.equal(camelCase('already'), 'already');
});

test('refuses a payload that is not an object', () => {
  assert.throws(() => run(transform, Event.fromJson('order_created', [1, 2])), InvalidEvent);
});
