//! `fanout`: one event becomes one request per target, each tagged with
//! extra headers, to show the list outcome.
//!
//! Config `targets`: a comma-separated list (default `primary,audit`). Each
//! request carries the payload as `{target, event, data}` and the headers
//! `x-hookgate-target` and `x-fanout-index` (`1/2`, `2/2`, …).

use hookgate_sdk::serde_json::json;
use hookgate_sdk::{Config, Error, Event, Outcome, Plugin, Request, export_plugin, log};

/// The plugin.
#[derive(Debug)]
pub struct Fanout;

impl Plugin for Fanout {
    fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
        let data = event.json()?;
        let targets = config.get_or("targets", "primary,audit");
        let targets: Vec<&str> = targets
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if targets.is_empty() {
            return Ok(Outcome::drop("config `targets` names no target"));
        }
        log::debug(&format!(
            "fanning {} out to {} targets",
            event.id,
            targets.len()
        ));
        let requests = targets
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let body = json!({"target": target, "event": event.hook_type, "data": data});
                Ok(Request::json(&body)?
                    .header("x-hookgate-target", *target)
                    .header("x-fanout-index", format!("{}/{}", i + 1, targets.len())))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Outcome::Deliver(requests))
    }
}

export_plugin!(Fanout);

#[cfg(test)]
mod tests {
    use super::*;
    use hookgate_sdk::testing::Harness;

    #[test]
    fn one_request_per_target() {
        let event = Event::from_json("order_created", &json!({"n": 1}));
        let run = Harness::new()
            .config("targets", "crm, analytics ,audit")
            .run::<Fanout>(event);
        let outcome = run.outcome.expect("transform");
        let tags: Vec<_> = outcome
            .requests()
            .iter()
            .map(|r| {
                (
                    r.header_value("x-hookgate-target").unwrap_or(""),
                    r.header_value("x-fanout-index").unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            tags,
            [("crm", "1/3"), ("analytics", "2/3"), ("audit", "3/3")]
        );
        assert_eq!(
            outcome.requests()[1].body_json().expect("json")["data"]["n"],
            1
        );
        assert_eq!(run.logs.len(), 1);
    }

    #[test]
    fn no_targets_drops() {
        let event = Event::from_json("order_created", &json!({}));
        let run = Harness::new().config("targets", " , ").run::<Fanout>(event);
        assert!(matches!(run.outcome, Ok(Outcome::Drop(_))));
    }
}
