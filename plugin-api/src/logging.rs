//! Carries a library's log events and panic reports to the host.
//!
//! A driver library links its own copy of `tracing`, which cannot see the
//! host's subscriber. At load time the host hands the library a
//! [`LogSink`]; this module installs a subscriber in the library's copy of
//! `tracing` that formats each event and passes it to that sink.

use std::any::Any;
use std::fmt::{self, Write as _};
use std::panic;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Once, RwLock};

use abi_stable::std_types::RStr;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::abi::{LogSink, level};
use crate::runtime::LAST_PANIC_LOCATION;

static SINK: RwLock<Option<LogSink>> = RwLock::new(None);
static MAX_LEVEL: AtomicU8 = AtomicU8::new(level::OFF);
static SUBSCRIBER_INSTALLED: Once = Once::new();

/// The `install_logger` entry of the root module.
pub(crate) extern "C" fn install(sink: LogSink, max_level: u8) {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    MAX_LEVEL.store(max_level.min(level::TRACE), Ordering::Relaxed);
    SUBSCRIBER_INSTALLED.call_once(|| {
        // Fails only if the driver installed its own global subscriber, in
        // which case its choice stands.
        let _ = tracing::subscriber::set_global_default(Forwarder);
    });
}

fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => level::ERROR,
        Level::WARN => level::WARN,
        Level::INFO => level::INFO,
        Level::DEBUG => level::DEBUG,
        Level::TRACE => level::TRACE,
    }
}

fn send(level: u8, target: &str, message: &str) -> bool {
    let sink = *SINK.read().unwrap_or_else(|p| p.into_inner());
    match sink {
        Some(sink) if level <= MAX_LEVEL.load(Ordering::Relaxed) => {
            (sink.log)(level, RStr::from_str(target), RStr::from_str(message));
            true
        }
        Some(_) => true,
        None => false,
    }
}

/// A minimal subscriber: events are formatted and forwarded; spans are not
/// tracked (their ids are all the same), which keeps the library side small.
struct Forwarder;

impl Subscriber for Forwarder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The host may change the level later, so ask `enabled` each time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_number(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = EventText::default();
        event.record(&mut text);
        let metadata = event.metadata();
        send(
            level_number(metadata.level()),
            metadata.target(),
            &text.finish(),
        );
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Collects an event's message and fields as `message key=value ...`.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
}

impl EventText {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(self.fields.trim_start());
        }
        self.message
    }
}

impl Visit for EventText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// Replaces the library's panic hook: the panic's location is kept for the
/// error the caller receives, and the report goes to the host's log instead
/// of the library's stderr.
pub(crate) fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let fallback = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            LAST_PANIC_LOCATION.with(|last| *last.borrow_mut() = location.clone());
            let message = format!(
                "driver panicked at {}: {}",
                location.as_deref().unwrap_or("an unknown location"),
                payload_text(info.payload())
            );
            if !send(level::ERROR, "panic", &message) {
                fallback(info);
            }
        }));
    });
}

/// The message of a panic payload (`panic!` makes a `&str` or a `String`).
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
