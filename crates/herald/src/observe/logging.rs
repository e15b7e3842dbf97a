//! Logs: one structured line per request (target `herald::access`), and a filter that can be
//! changed while the process runs (the admin endpoint's `/logging` uses [`LogControl`]).

use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use crate::observe::access_json::JsonLines;
use crate::observe::buffered_log::BufferedLog;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Reads and changes the process's log filter.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Arc<Mutex<String>>,
    /// Writes out buffered lines, when the writer buffers.
    flush: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// A log filter could not be parsed or installed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogError(String);

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` text, for people.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

// === impl LogControl ===

impl LogControl {
    /// Installs the process's logger on stderr with `filter` (`EnvFilter` syntax, e.g.
    /// `info,herald::access=warn`), each line written as it is made. For a busy server's
    /// access log, [`LogControl::install_buffered`] costs far less.
    ///
    /// # Errors
    /// The filter does not parse, or a logger is already installed.
    pub fn install(filter: &str, format: LogFormat) -> Result<LogControl, LogError> {
        Self::install_with_writer(filter, format, std::io::stderr)
    }

    /// As [`LogControl::install`], writing through `log`, a [`BufferedLog`] (over a file, or
    /// stderr): lines are written in blocks, at least every interval, warnings and errors at
    /// once. With [`LogFormat::Json`], access lines go straight into the buffer (no tracing
    /// event; same line, same filter). [`LogControl::flush`] writes out what is held; a
    /// server given this control ([`Builder::log_control`]) flushes at shutdown, and a
    /// process should flush before it exits.
    ///
    /// [`Builder::log_control`]: crate::server::Builder::log_control
    ///
    /// # Errors
    /// As [`LogControl::install`].
    pub fn install_buffered<W>(
        filter: &str,
        format: LogFormat,
        log: BufferedLog<W>,
    ) -> Result<LogControl, LogError>
    where
        W: std::io::Write + Send + 'static,
    {
        let flusher = log.clone();
        let sink = log.sink();
        let mut control = Self::install_with_writer(filter, format, log)?;
        // Only once the logger is this log: a failed install must not take the lines.
        if format == LogFormat::Json {
            crate::observe::access_log::write_directly_to(sink);
        }
        control.flush = Some(Arc::new(move || {
            if let Err(e) = flusher.flush() {
                eprintln!("herald: cannot write the log: {e}");
            }
        }));
        Ok(control)
    }

    /// As [`LogControl::install`], writing to `writer`.
    ///
    /// # Errors
    /// As [`LogControl::install`].
    pub fn install_with_writer<W>(
        filter: &str,
        format: LogFormat,
        writer: W,
    ) -> Result<LogControl, LogError>
    where
        W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        let parsed = EnvFilter::try_new(filter)
            .map_err(|e| LogError(format!("invalid log filter {filter:?}: {e}")))?;
        let (layer, handle) = reload::Layer::new(parsed);
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_target(true);
        let installed = match format {
            LogFormat::Text => tracing_subscriber::registry()
                .with(layer)
                .with(fmt)
                .try_init(),
            LogFormat::Json => tracing_subscriber::registry()
                .with(layer)
                .with(
                    fmt.fmt_fields(JsonLines::fields())
                        .event_format(JsonLines::new()),
                )
                .try_init(),
        };
        installed.map_err(|e| LogError(format!("a logger is already installed: {e}")))?;
        Ok(LogControl {
            handle,
            current: Arc::new(Mutex::new(filter.to_owned())),
            flush: None,
        })
    }

    /// Writes out the lines a buffered writer holds (nothing to do for other writers).
    pub fn flush(&self) {
        if let Some(flush) = &self.flush {
            flush();
        }
    }

    /// The filter in force.
    pub fn filter(&self) -> String {
        self.current.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Replaces the filter; takes effect on the next event.
    ///
    /// # Errors
    /// The filter does not parse (the old one stays).
    pub fn set(&self, filter: &str) -> Result<(), LogError> {
        let parsed = EnvFilter::try_new(filter)
            .map_err(|e| LogError(format!("invalid log filter {filter:?}: {e}")))?;
        self.handle
            .reload(parsed)
            .map_err(|e| LogError(format!("cannot change the log filter: {e}")))?;
        if let Ok(mut current) = self.current.lock() {
            *current = filter.to_owned();
        }
        tracing::callsite::rebuild_interest_cache();
        Ok(())
    }
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("filter", &self.filter())
            .finish()
    }
}
