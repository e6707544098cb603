//! A plugin that misbehaves on request, for the sandbox tests. Config
//! `mode` picks how: `panic`, `loop`, `hog` (allocate without end),
//! `big-output` (`size` bytes), `reserved-header` (`header` name), `fail`,
//! `invalid`, `counter` (reports how many events this instance has seen),
//! `log` (logs the event's body as a warning, then echoes it), or anything
//! else to echo the event.

use hookgate_sdk::{Config, Error, Event, Outcome, Plugin, Request, export_plugin, log};
use std::sync::atomic::{AtomicU64, Ordering};

static SEEN: AtomicU64 = AtomicU64::new(0);

/// The plugin.
#[derive(Debug)]
pub struct Misbehave;

impl Plugin for Misbehave {
    fn transform(event: Event, config: &Config) -> Result<Outcome, Error> {
        let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        match config.get_or("mode", "echo").as_str() {
            "panic" => panic!("misbehave was told to panic"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "big-output" => {
                let size: usize = config
                    .get_or("size", "2000000")
                    .parse()
                    .unwrap_or(2_000_000);
                Ok(Outcome::deliver(Request::new(
                    vec![b'x'; size],
                    "text/plain",
                )))
            }
            "reserved-header" => Ok(Outcome::deliver(
                Request::new(event.body, "application/json")
                    .header(config.get_or("header", "Authorization"), "Bearer stolen"),
            )),
            "fail" => Err(Error::failed(
                config.get_or("message", "misbehave was told to fail"),
            )),
            "invalid" => Err(Error::invalid("misbehave finds every event invalid")),
            // Busy for `ms` milliseconds, then an echo: work that a
            // deadline cuts or lets finish.
            "sleep" => {
                let ms: u64 = config.get_or("ms", "100").parse().unwrap_or(100);
                let started = std::time::Instant::now();
                while started.elapsed() < std::time::Duration::from_millis(ms) {
                    std::hint::spin_loop();
                }
                Ok(Outcome::deliver(Request::new(
                    event.body,
                    event.content_type,
                )))
            }
            "log" => {
                log::warn(&String::from_utf8_lossy(&event.body));
                log::info("logged the body");
                Ok(Outcome::deliver(Request::new(
                    event.body,
                    event.content_type,
                )))
            }
            "counter" => Ok(Outcome::deliver(Request::new(
                seen.to_string(),
                "text/plain",
            ))),
            _ => {
                log::info(&format!("echo {}", event.id));
                Ok(Outcome::deliver(Request::new(
                    event.body,
                    event.content_type,
                )))
            }
        }
    }
}

export_plugin!(Misbehave);
