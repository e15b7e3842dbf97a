//! One round of one case: a fresh connection, the streams, a measured window inside them.
//!
//! The streams ask the server for `SETTLE + seconds + TAIL` of messages. The window opens
//! `SETTLE` after the streams start (the connection's handshakes and the first round trips
//! are behind it) and closes `TAIL` before the server stops sending, so every byte counted
//! arrives at full speed. The client then reads each stream to its end and checks its status.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::BoxError;
use crate::client::{Ask, Connection};

const SETTLE: Duration = Duration::from_millis(500);
const TAIL: Duration = Duration::from_millis(250);
/// How long after the server should have stopped the client waits for the streams' ends.
const GRACE: Duration = Duration::from_secs(10);
/// Clock ticks per second of /proc's CPU times.
const TICKS_PER_SECOND: f64 = 100.0;

/// A running server.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) port: u16,
    /// Its process, whose CPU time is read from /proc.
    pub(crate) pid: u32,
    /// The client's TLS configuration when the server speaks mutual TLS.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

/// What a round asks of the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) streams: usize,
    pub(crate) message_size: u32,
    /// The measured window's length.
    pub(crate) seconds: f64,
}

/// What one round of one case saw.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    /// Messages completed inside the window, over all streams.
    pub(crate) messages: u64,
    pub(crate) message_size: u32,
    pub(crate) window: f64,
    /// The server process's user + system time over the window ÷ its length (1.0: one core).
    pub(crate) server_cpu: f64,
    /// The same for this process, the client.
    pub(crate) client_cpu: f64,
    /// CPU time other programs used over the window, as a share of all the machine's CPUs
    /// (machine-wide user + nice + system time less the server's and the client's).
    pub(crate) other_cpu: f64,
    /// Time the hypervisor gave to someone else, as a share of all the machine's CPUs.
    pub(crate) steal_cpu: f64,
    pub(crate) negotiated: Option<String>,
}

/// Machine-wide CPU times, from /proc/stat.
struct Machine {
    /// User + nice + system time of all CPUs, in clock ticks.
    busy: u64,
    steal: u64,
    cpus: usize,
}

// === impl Measured ===

impl Measured {
    /// Payload bytes per second, in MB (10^6 bytes).
    pub(crate) fn mb_per_s(&self) -> f64 {
        self.messages as f64 * f64::from(self.message_size) / self.window / 1e6
    }

    pub(crate) fn messages_per_s(&self) -> f64 {
        self.messages as f64 / self.window
    }
}

// === impl Machine ===

impl Machine {
    fn read() -> Result<Machine, BoxError> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let total = stat.lines().next().ok_or("empty /proc/stat")?;
        let fields: Vec<u64> = total
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let field = |i: usize| fields.get(i).copied().ok_or("short /proc/stat");
        Ok(Machine {
            busy: field(0)? + field(1)? + field(2)?,
            steal: field(7).unwrap_or(0),
            cpus: stat
                .lines()
                .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
                .count()
                .max(1),
        })
    }
}

/// Runs one round against `target`.
pub(crate) async fn run(target: &Target, shape: &Shape) -> Result<Measured, BoxError> {
    let connection = Arc::new(Connection::open(target.port, target.tls.as_ref()).await?);
    let seconds = Duration::from_secs_f64(shape.seconds);
    let duration = SETTLE + seconds + TAIL;
    let ask = Ask {
        message_size: shape.message_size,
        duration_ms: duration.as_millis() as u64,
        timeout_ms: (duration + GRACE).as_millis() as u64,
    };
    let start = Instant::now() + SETTLE;
    let end = start + seconds;
    let window = (start.into_std(), end.into_std());
    let mut streams = JoinSet::new();
    for _ in 0..shape.streams {
        let connection = connection.clone();
        streams.spawn(async move { connection.stream(ask, window).await });
    }

    tokio::time::sleep_until(start).await;
    let server_before = cpu_ticks(&target.pid.to_string())?;
    let client_before = cpu_ticks("self")?;
    let machine_before = Machine::read()?;
    tokio::time::sleep_until(end).await;
    let server_cpu = cpu_ticks(&target.pid.to_string())? - server_before;
    let client_cpu = cpu_ticks("self")? - client_before;
    let machine = Machine::read()?;

    let mut messages = 0;
    let deadline = end + TAIL + GRACE;
    while let Some(stream) = tokio::time::timeout_at(deadline, streams.join_next())
        .await
        .map_err(|_| "the streams did not end in time")?
    {
        let counted = stream??;
        if counted.in_window == 0 {
            return Err(format!(
                "a stream delivered no message inside the window ({} in all)",
                counted.total
            )
            .into());
        }
        messages += counted.in_window;
    }
    let capacity = TICKS_PER_SECOND * shape.seconds * machine.cpus as f64;
    Ok(Measured {
        messages,
        message_size: shape.message_size,
        window: shape.seconds,
        server_cpu: server_cpu as f64 / TICKS_PER_SECOND / shape.seconds,
        client_cpu: client_cpu as f64 / TICKS_PER_SECOND / shape.seconds,
        other_cpu: machine
            .busy
            .saturating_sub(machine_before.busy + server_cpu + client_cpu)
            as f64
            / capacity,
        steal_cpu: (machine.steal - machine_before.steal) as f64 / capacity,
        negotiated: connection.negotiated.clone(),
    })
}

/// User + system CPU time of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: &str) -> Result<u64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After "pid (comm) " come the fields from the third on; utime and stime are the 14th
    // and 15th.
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .ok_or("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, BoxError> {
        Ok(fields.get(i).ok_or("short /proc stat")?.parse()?)
    };
    Ok(field(11)? + field(12)?)
}
