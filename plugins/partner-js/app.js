// `partner` in JavaScript: maps Hookgate events to the partner system's
// webhook format (`webHookType` names such as `NEW_CONSUMER_ORDER`,
// camelCase fields, epoch-millisecond `created`). The same plugin as
// `plugins/partner` (Rust) and `plugins/partner-py`; a test holds the three
// to the same bytes.
//
// Hook types the partner does not take are dropped. Config: `companyId`
// (optional) is copied into every request.

import { InvalidEvent, Outcome, Request } from './hookgate.js';

// Our hook type → the partner's `webHookType`. The one place to edit.
export const WEBHOOK_TYPES = {
  order_created: 'NEW_CONSUMER_ORDER',
  order_updated: 'UPDATE_CONSUMER_ORDER',
  'customer.created': 'NEW_CONSUMER_SIGNUP',
  'customer.updated': 'UPDATE_CONSUMER_USER',
  'member.created': 'NEW_MEMBER',
  'member.updated': 'UPDATE_MEMBER',
  'transaction.created': 'CREATE_TRANSACTION',
  'transaction.updated': 'UPDATE_TRANSACTION',
  'transaction.cancelled': 'CANCEL_TRANSACTION',
  'transaction.completed': 'COMPLETE_TRANSACTION',
  'product.updated': 'UPDATE_PRODUCT',
};

/** The partner's name for `hookType`; partner names map to themselves. */
export function partnerType(hookType) {
  if (Object.hasOwn(WEBHOOK_TYPES, hookType)) return WEBHOOK_TYPES[hookType];
  return Object.values(WEBHOOK_TYPES).includes(hookType) ? hookType : undefined;
}

export function transform(event, config) {
  const webHookType = partnerType(event.hookType);
  if (webHookType === undefined) {
    return Outcome.drop(`the partner takes no \`${event.hookType}\` events`);
  }
  const payload = event.json();
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new InvalidEvent('the payload must be a JSON object');
  }
  const data = camelCaseKeys(payload);
  const body = {
    id: event.id,
    webHookType,
    companyId: config.get('companyId'),
    shopId: Object.hasOwn(data, 'shopId') ? data.shopId : null,
    created: event.occurredAtMs,
    data,
  };
  return Outcome.deliver(Request.json(body).header('x-partner-webhook-type', webHookType));
}

/** Renames every object key from snake_case to camelCase, recursively. */
export function camelCaseKeys(value) {
  if (Array.isArray(value)) return value.map(camelCaseKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k.includes('_') ? camelCase(k) : k, camelCaseKeys(v)]),
    );
  }
  return value;
}

/** `line_items` → `lineItems`: underscores dropped, each word after the
 * first capitalized (only its first letter). */
export function camelCase(key) {
  const [first = '', ...rest] = key.split('_').filter((word) => word !== '');
  return first + rest.map(capitalize).join('');
}

function capitalize(word) {
  const head = word.codePointAt(0) > 0xffff ? 2 : 1;
  return word.slice(0, head).toUpperCase() + word.slice(head);
}
