"""`partner` in Python: maps Hookgate events to the partner system's webhook
format (`webHookType` names such as `NEW_CONSUMER_ORDER`, camelCase fields,
epoch-millisecond `created`). The same plugin as `plugins/partner` (Rust)
and `plugins/partner-js`; a test holds the three to the same bytes.

Hook types the partner does not take are dropped. Config: `companyId`
(optional) is copied into every request.
"""

from hookgate import Config, Event, InvalidEvent, Outcome, Request

# Our hook type → the partner's `webHookType`. The one place to edit.
WEBHOOK_TYPES = {
    "order_created": "NEW_CONSUMER_ORDER",
    "order_updated": "UPDATE_CONSUMER_ORDER",
    "customer.created": "NEW_CONSUMER_SIGNUP",
    "customer.updated": "UPDATE_CONSUMER_USER",
    "member.created": "NEW_MEMBER",
    "member.updated": "UPDATE_MEMBER",
    "transaction.created": "CREATE_TRANSACTION",
    "transaction.updated": "UPDATE_TRANSACTION",
    "transaction.cancelled": "CANCEL_TRANSACTION",
    "transaction.completed": "COMPLETE_TRANSACTION",
    "product.updated": "UPDATE_PRODUCT",
}


def partner_type(hook_type: str):
    """The partner's name for `hook_type`; partner names map to themselves."""
    if hook_type in WEBHOOK_TYPES:
        return WEBHOOK_TYPES[hook_type]
    return hook_type if hook_type in WEBHOOK_TYPES.values() else None


def transform(event: Event, config: Config) -> Outcome:
    web_hook_type = partner_type(event.hook_type)
    if web_hook_type is None:
        return Outcome.drop(f"the partner takes no `{event.hook_type}` events")
    payload = event.json()
    if not isinstance(payload, dict):
        raise InvalidEvent("the payload must be a JSON object")
    data = camel_case_keys(payload)
    body = {
        "id": event.id,
        "webHookType": web_hook_type,
        "companyId": config.get("companyId"),
        "shopId": data.get("shopId"),
        "created": event.occurred_at_ms,
        "data": data,
    }
    return Outcome.deliver(Request.json(body).header("x-partner-webhook-type", web_hook_type))


def camel_case_keys(value):
    """Renames every object key from snake_case to camelCase, recursively."""
    if isinstance(value, dict):
        return {(camel_case(k) if "_" in k else k): camel_case_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_case_keys(v) for v in value]
    return value


def camel_case(key: str) -> str:
    """`line_items` → `lineItems`: underscores dropped, each word after the
    first capitalized (only its first letter)."""
    first, *rest = [word for word in key.split("_") if word] or [""]
    return first + "".join(word[0].upper() + word[1:] for word in rest)
