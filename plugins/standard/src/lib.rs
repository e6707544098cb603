//! `standard`: the Standard Webhooks payload, `{id, type, timestamp, data}`.
//!
//! `data` is the event payload as posted; `timestamp` is when Hookgate
//! accepted the event (RFC 3339, UTC). Config `type_prefix` (optional) is
//! put before the hook type, e.g. `acme.` turns `order_created` into
//! `acme.order_created`.

use hookgate_sdk::serde_json::{Value, json};
use hookgate_sdk::{Config, Error, Event, Outcome, Plugin, Request, export_plugin};
use std::time::{Duration, UNIX_EPOCH};

/// The plugin.
#[derive(Debug)]
pub struct Standard;

impl Plugin for Standard {
    fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
        let data: Value = event.json()?;
        let at = UNIX_EPOCH + Duration::from_millis(event.occurred_at_ms);
        let payload = json!({
            "id": event.id,
            "type": format!("{}{}", config.get_or("type_prefix", ""), event.hook_type),
            "timestamp": humantime::format_rfc3339_millis(at).to_string(),
            "data": data,
        });
        Ok(Outcome::deliver(Request::json(&payload)?))
    }
}

export_plugin!(Standard);

#[cfg(test)]
mod tests {
    use super::*;
    use hookgate_sdk::testing::Harness;

    #[test]
    fn wraps_the_payload() {
        let event = Event::from_json("order_created", &json!({"orderId": 7}));
        let run = Harness::new()
            .config("type_prefix", "acme.")
            .run::<Standard>(event);
        let outcome = run.outcome.expect("transform");
        let body = outcome.requests()[0].body_json().expect("json body");
        assert_eq!(
            body,
            json!({
                "id": "evt_test",
                "type": "acme.order_created",
                "timestamp": "2023-11-14T22:13:20.000Z",
                "data": {"orderId": 7},
            })
        );
        assert_eq!(outcome.requests()[0].content_type, "application/json");
    }

    #[test]
    fn refuses_a_body_that_is_not_json() {
        let mut event = Event::from_json("order_created", &json!({}));
        event.body = b"not json".to_vec();
        let run = Harness::new().run::<Standard>(event);
        assert!(matches!(run.outcome, Err(Error::InvalidEvent(_))));
    }
}
