//! `slack`: order and customer events as a Slack incoming-webhook message
//! (`text` plus `blocks`).
//!
//! Wording comes from config templates with `{field}` placeholders filled
//! from the payload (dotted paths reach nested fields: `{customer.email}`):
//! `template.<hook type>` for one type, else `template.order` or
//! `template.customer` for the family, else a built-in default. Other event
//! families are dropped. Optional config: `channel`, `username`.

use hookgate_sdk::serde_json::{Map, Value, json};
use hookgate_sdk::{Config, Error, Event, Outcome, Plugin, Request, export_plugin};

const DEFAULT_ORDER: &str = "Order {id} ({event}): {total} {currency}";
const DEFAULT_CUSTOMER: &str = "Customer {email} ({event})";

/// The plugin.
#[derive(Debug)]
pub struct Slack;

impl Plugin for Slack {
    fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
        let (family, default) = if event.hook_type.starts_with("order") {
            ("order", DEFAULT_ORDER)
        } else if event.hook_type.starts_with("customer") {
            ("customer", DEFAULT_CUSTOMER)
        } else {
            return Ok(Outcome::drop(format!(
                "slack posts no `{}` events",
                event.hook_type
            )));
        };
        let payload = event.json()?;
        let template = config
            .get(&format!("template.{}", event.hook_type))
            .or_else(|| config.get(&format!("template.{family}")))
            .unwrap_or_else(|| default.to_owned());
        let text = render(&template, &payload, &event.hook_type);
        let mut message = Map::new();
        message.insert("text".into(), json!(text));
        message.insert(
            "blocks".into(),
            json!([
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("`{}` · event {}", event.hook_type, event.id)}]},
            ]),
        );
        for key in ["channel", "username"] {
            if let Some(value) = config.get(key) {
                message.insert(key.into(), json!(value));
            }
        }
        Ok(Outcome::deliver(Request::json(&message)?))
    }
}

/// Fills `{path}` placeholders from `payload`; `{event}` is the hook type.
/// A missing field renders as `?`; `{{` and `}}` are literal braces.
fn render(template: &str, payload: &Value, hook_type: &str) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            let path = &tail[1..end];
            out.push_str(&lookup(payload, path, hook_type));
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn lookup(payload: &Value, path: &str, hook_type: &str) -> String {
    if path == "event" {
        return hook_type.to_owned();
    }
    match path.split('.').try_fold(payload, |v, key| v.get(key)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".to_owned(),
        Some(other) => other.to_string(),
    }
}

export_plugin!(Slack);

#[cfg(test)]
mod tests {
    use super::*;
    use hookgate_sdk::testing::Harness;

    fn text(harness: &Harness, hook_type: &str, payload: Value) -> String {
        let outcome = harness
            .run::<Slack>(Event::from_json(hook_type, &payload))
            .outcome
            .expect("transform");
        let body = outcome.requests()[0].body_json().expect("json");
        assert_eq!(body["blocks"][0]["text"]["text"], body["text"]);
        body["text"].as_str().expect("text").to_owned()
    }

    #[test]
    fn default_and_configured_templates() {
        let order =
            json!({"id": "o-1", "total": 12.5, "currency": "EUR", "customer": {"email": "a@b.c"}});
        assert_eq!(
            text(&Harness::new(), "order_created", order.clone()),
            "Order o-1 (order_created): 12.5 EUR"
        );
        let h = Harness::new()
            .config("template.order", "{event}: {customer.email} paid {total}")
            .config("template.order_cancelled", "Cancelled {id} {{sad}}");
        assert_eq!(
            text(&h, "order_updated", order.clone()),
            "order_updated: a@b.c paid 12.5"
        );
        assert_eq!(text(&h, "order_cancelled", order), "Cancelled o-1 {sad}");
        assert_eq!(
            text(&Harness::new(), "customer.created", json!({"name": "x"})),
            "Customer ? (customer.created)"
        );
    }

    #[test]
    fn channel_and_drop() {
        let h = Harness::new().config("channel", "#orders");
        let outcome = h
            .run::<Slack>(Event::from_json("order_created", &json!({})))
            .outcome
            .expect("ok");
        assert_eq!(
            outcome.requests()[0].body_json().expect("json")["channel"],
            "#orders"
        );
        let dropped = h
            .run::<Slack>(Event::from_json("merchant.updated", &json!({})))
            .outcome;
        assert!(matches!(dropped, Ok(Outcome::Drop(_))));
    }

    #[test]
    fn unbalanced_braces_are_kept() {
        assert_eq!(render("a { b } c {", &json!({}), "t"), "a ? c {");
        assert_eq!(render("}x", &json!({}), "t"), "}x");
    }
}
