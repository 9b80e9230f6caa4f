//! Log output: `logging.format = "text"` (ANSI colour only on a terminal) or `"json"` (one JSON
//! object a line, for collectors), filtered by `TONGZHENG_LOG`. The JSON formatter is ours: a
//! small `FormatEvent` with span fields kept as JSON, so no extra crate is needed.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::clock::Clock;
use crate::config::{LogFormat, LoggingConfig};

/// The target of the per-request access line.
pub const ACCESS_TARGET: &str = "tongzheng::access";

/// Whether colour codes may be written: stdout is a terminal and `NO_COLOR` is unset.
pub fn ansi_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The level filter: `TONGZHENG_LOG`, else `info`.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_env("TONGZHENG_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

/// A subscriber writing `format` lines to `writer`, filtered by `filter`.
pub fn subscriber<W>(format: LogFormat, ansi: bool, filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.with_ansi(false).fmt_fields(JsonFields).event_format(JsonLines).finish()),
    }
}

/// Installs the process's subscriber on stdout; a second call keeps the first.
pub fn init(config: &LoggingConfig) {
    let s = subscriber(config.format, ansi_wanted(), env_filter(), std::io::stdout);
    let _ = tracing::subscriber::set_global_default(s);
}

/// Collects an event's or span's fields into a JSON map (numbers and booleans stay typed).
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}

/// Span fields, stored as a JSON object text in the span's extensions.
struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut map = Map::new();
        fields.record(&mut JsonVisitor(&mut map));
        write!(writer, "{}", Value::Object(map))
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        let mut map = match serde_json::from_str::<Value>(&current.fields) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        fields.record(&mut JsonVisitor(&mut map));
        current.fields = Value::Object(map).to_string();
        Ok(())
    }
}

/// One JSON object a line: `ts` (RFC 3339, UTC, milliseconds), `level`, `target`, `message`,
/// the event's other fields, and `span` (the fields of the spans it happened in, outermost first,
/// inner ones winning).
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("ts".into(), Value::String(timestamp(Clock::system().now_ms())));
        line.insert("level".into(), Value::String(meta.level().as_str().to_owned()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        if let Some(m) = fields.remove("message") {
            line.insert("message".into(), m);
        }
        let mut span = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for s in scope.from_root() {
                let ext = s.extensions();
                if let Some(Ok(Value::Object(m))) =
                    ext.get::<FormattedFields<N>>().map(|f| serde_json::from_str::<Value>(&f.fields))
                {
                    span.extend(m);
                }
            }
        }
        if !span.is_empty() {
            line.insert("span".into(), Value::Object(span));
        }
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// `ms` (unix milliseconds) as `2026-12-05T01:02:03.456Z`.
fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(format: LogFormat, ansi: bool, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let b = buf.clone();
        let s = subscriber(format, ansi, EnvFilter::new("trace"), move || b.clone());
        tracing::subscriber::with_default(s, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    // Operators' log collectors read one JSON object per line (issue 14).
    #[test]
    fn json_lines_carry_message_fields_and_span() {
        let out = lines(LogFormat::Json, false, || {
            let span = tracing::info_span!("request", id = "req-1", method = "GET");
            let _g = span.enter();
            tracing::warn!(receiver = "https://rp.example/bc", attempts = 3_u64, ok = false, "delivery failed");
        });
        let line: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "delivery failed");
        assert_eq!(line["receiver"], "https://rp.example/bc");
        assert_eq!(line["attempts"], 3);
        assert_eq!(line["ok"], false);
        assert_eq!(line["span"]["id"], "req-1");
        assert_eq!(line["span"]["method"], "GET");
        assert!(line["ts"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{line}");
        assert_eq!(out.lines().count(), 1);
    }

    // No colour codes in files: ANSI off means none in the text format, and JSON never has any.
    #[test]
    fn no_ansi_unless_asked() {
        let text = lines(LogFormat::Text, false, || tracing::info!(field = 1, "plain"));
        assert!(text.contains("plain") && !text.contains('\u{1b}'), "{text:?}");
        let json = lines(LogFormat::Json, true, || tracing::info!("plain"));
        assert!(!json.contains('\u{1b}'), "{json:?}");
        let coloured = lines(LogFormat::Text, true, || tracing::info!("plain"));
        assert!(coloured.contains('\u{1b}'), "ANSI on when asked (a terminal): {coloured:?}");
    }

    #[test]
    fn timestamps_are_utc_millis() {
        assert_eq!(timestamp(1_764_896_523_456), "2025-12-05T01:02:03.456Z");
    }
}
