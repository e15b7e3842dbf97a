//! The live limits: compiled against the server's methods, swapped atomically when the file
//! changes (polled) or on SIGHUP. A bad file keeps the old limits, and is logged, counted and
//! kept for the admin endpoint. Requests in flight keep the limits they started with.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::contract::MethodContract;
use crate::limits::config::{ConfigError, LimitsConfig};
use crate::limits::policy::Compiled;

/// How often the file is looked at: well within the second a change must apply in.
const POLL: Duration = Duration::from_millis(250);

/// Where a server's limits come from.
#[derive(Clone, Debug)]
pub struct Limits {
    file: Option<PathBuf>,
    config: LimitsConfig,
}

/// The state of a server's limits, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsStatus {
    /// The file watched, if any.
    pub file: Option<PathBuf>,
    /// Reloads applied since start.
    pub reloads: u64,
    /// Reloads refused since start (the previous limits stayed).
    pub failures: u64,
    /// Why the last refused reload was refused; cleared by the next good one.
    pub last_error: Option<String>,
}

/// The limits a running server applies.
#[derive(Debug)]
pub(crate) struct LiveLimits {
    methods: Vec<&'static MethodContract>,
    current: ArcSwap<Compiled>,
    file: Option<PathBuf>,
    reloads: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

// === impl Limits ===

impl Limits {
    /// Limits from a file, read (and checked) now and watched while the server runs.
    ///
    /// # Errors
    /// The file is unreadable or invalid.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Limits, ConfigError> {
        let path = path.into();
        let config = LimitsConfig::from_file(&path)?;
        Ok(Limits {
            file: Some(path),
            config,
        })
    }

    /// Fixed limits.
    pub fn from_config(config: LimitsConfig) -> Limits {
        Limits { file: None, config }
    }
}

// === impl LiveLimits ===

impl LiveLimits {
    /// Everyone allowed, nothing limited.
    pub(crate) fn allow_all(methods: Vec<&'static MethodContract>) -> Arc<LiveLimits> {
        let compiled = Compiled::allow_all(&methods);
        Arc::new(Self::with(methods, compiled, None))
    }

    /// `limits` for `methods`; watches the file, if any, from a background task.
    ///
    /// # Errors
    /// The limits name services or methods the server does not serve.
    pub(crate) fn start(
        limits: Limits,
        methods: Vec<&'static MethodContract>,
    ) -> Result<Arc<LiveLimits>, String> {
        let compiled = Compiled::new(&limits.config, &methods)?;
        let live = Arc::new(Self::with(methods, compiled, limits.file.clone()));
        if let Some(file) = limits.file {
            tokio::spawn(watch(file, Arc::downgrade(&live)));
        }
        Ok(live)
    }

    fn with(
        methods: Vec<&'static MethodContract>,
        compiled: Compiled,
        file: Option<PathBuf>,
    ) -> LiveLimits {
        LiveLimits {
            methods,
            current: ArcSwap::from_pointee(compiled),
            file,
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The limits new requests get.
    pub(crate) fn current(&self) -> Arc<Compiled> {
        self.current.load_full()
    }

    pub(crate) fn status(&self) -> LimitsStatus {
        LimitsStatus {
            file: self.file.clone(),
            reloads: self.reloads.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }

    /// Re-reads the file: applies it if valid, else keeps the current limits.
    fn reload(&self, text: &str) {
        let Some(file) = &self.file else { return };
        let origin = file.display().to_string();
        let result = LimitsConfig::parse(text, &origin)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                Compiled::new(&config, &self.methods).map_err(|e| format!("{origin}: {e}"))
            });
        match result {
            Ok(compiled) => {
                self.current.store(Arc::new(compiled));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = None;
                }
                tracing::info!(file = %origin, "limits reloaded");
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "limits file refused; keeping the previous limits");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(error);
                }
            }
        }
    }
}

/// Polls the file for changes, and re-reads it on SIGHUP even when unchanged.
async fn watch(file: PathBuf, live: Weak<LiveLimits>) {
    let mut last = std::fs::read_to_string(&file).ok();
    let mut ticker = tokio::time::interval(POLL);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = match hangup.as_mut() {
            Some(hangup) => tokio::select! {
                _ = ticker.tick() => false,
                _ = hangup.recv() => true,
            },
            None => {
                ticker.tick().await;
                false
            }
        };
        #[cfg(not(unix))]
        let forced = {
            ticker.tick().await;
            false
        };
        let Some(live) = live.upgrade() else { return };
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) => {
                if forced {
                    live.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(file = %file.display(), %error, "cannot read the limits file");
                }
                continue;
            }
        };
        if forced || last.as_deref() != Some(text.as_str()) {
            live.reload(&text);
            last = Some(text);
        }
    }
}
