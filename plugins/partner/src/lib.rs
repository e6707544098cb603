//! `partner`: maps Hookgate events to the partner system's webhook format
//! (`PartnerWebHook`: `webHookType` names such as `NEW_CONSUMER_ORDER`,
//! camelCase fields, epoch-millisecond `created`).
//!
//! Hook types the partner does not take are dropped. Config: `companyId`
//! (optional) is copied into every request.

use hookgate_sdk::serde_json::{Map, Value, json};
use hookgate_sdk::{Config, Error, Event, Outcome, Plugin, Request, export_plugin};

/// Our hook type → the partner's `webHookType`. The one place to edit.
const WEBHOOK_TYPES: &[(&str, &str)] = &[
    ("order_created", "NEW_CONSUMER_ORDER"),
    ("order_updated", "UPDATE_CONSUMER_ORDER"),
    ("customer.created", "NEW_CONSUMER_SIGNUP"),
    ("customer.updated", "UPDATE_CONSUMER_USER"),
    ("member.created", "NEW_MEMBER"),
    ("member.updated", "UPDATE_MEMBER"),
    ("transaction.created", "CREATE_TRANSACTION"),
    ("transaction.updated", "UPDATE_TRANSACTION"),
    ("transaction.cancelled", "CANCEL_TRANSACTION"),
    ("transaction.completed", "COMPLETE_TRANSACTION"),
    ("product.updated", "UPDATE_PRODUCT"),
];

/// The partner's name for `hook_type`; partner names map to themselves.
pub fn partner_type(hook_type: &str) -> Option<&'static str> {
    WEBHOOK_TYPES
        .iter()
        .find(|(ours, theirs)| *ours == hook_type || *theirs == hook_type)
        .map(|(_, theirs)| *theirs)
}

/// The plugin.
#[derive(Debug)]
pub struct Partner;

impl Plugin for Partner {
    fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
        let Some(web_hook_type) = partner_type(&event.hook_type) else {
            return Ok(Outcome::drop(format!(
                "the partner takes no `{}` events",
                event.hook_type
            )));
        };
        let Value::Object(payload) = event.json()? else {
            return Err(Error::invalid("the payload must be a JSON object"));
        };
        let data = camel_case_keys(Value::Object(payload));
        let body = json!({
            "id": event.id,
            "webHookType": web_hook_type,
            "companyId": config.get("companyId"),
            "shopId": data.get("shopId").cloned().unwrap_or(Value::Null),
            "created": event.occurred_at_ms,
            "data": data,
        });
        Ok(Outcome::deliver(
            Request::json(&body)?.header("x-partner-webhook-type", web_hook_type),
        ))
    }
}

/// Renames every object key from snake_case to camelCase, recursively.
fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = if k.contains('_') { camel_case(&k) } else { k };
                    (key, camel_case_keys(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

export_plugin!(Partner);

#[cfg(test)]
mod tests {
    use super::*;
    use hookgate_sdk::testing::Harness;

    fn check(hook_type: &str, expected: Option<&str>) {
        let event = Event::from_json(
            hook_type,
            &json!({"shop_id": "s1", "order": {"line_items": [{"unit_price": 5}]}}),
        );
        let outcome = Harness::new()
            .config("companyId", "c9")
            .run::<Partner>(event)
            .outcome;
        match (outcome.expect("transform"), expected) {
            (Outcome::Deliver(requests), Some(ty)) => {
                let body = requests[0].body_json().expect("json");
                assert_eq!(body["webHookType"], ty);
                assert_eq!(body["companyId"], "c9");
                assert_eq!(body["shopId"], "s1");
                assert_eq!(body["data"]["order"]["lineItems"][0]["unitPrice"], 5);
                assert_eq!(requests[0].header_value("x-partner-webhook-type"), Some(ty));
            }
            (Outcome::Drop(reason), None) => assert!(reason.contains(hook_type), "{reason}"),
            (other, expected) => panic!("{hook_type}: got {other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn maps_every_partner_type_and_drops_the_rest() {
        check("order_created", Some("NEW_CONSUMER_ORDER"));
        check("customer.updated", Some("UPDATE_CONSUMER_USER"));
        check("member.updated", Some("UPDATE_MEMBER"));
        check("transaction.cancelled", Some("CANCEL_TRANSACTION"));
        check("UPDATE_PRODUCT", Some("UPDATE_PRODUCT"));
        check("order_removed", None);
        check("merchant.reinstall", None);
    }

    #[test]
    fn camel_cases_keys() {
        assert_eq!(camel_case("line_items"), "lineItems");
        assert_eq!(camel_case("_private"), "private");
        assert_eq!(camel_case("already"), "already");
    }

    #[test]
    fn refuses_a_payload_that_is_not_an_object() {
        let event = Event::from_json("order_created", &json!([1, 2]));
        let outcome = Harness::new().run::<Partner>(event).outcome;
        assert!(matches!(outcome, Err(Error::InvalidEvent(_))));
    }
}
