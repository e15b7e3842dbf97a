//! What load to offer, and when each call is due.

use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

use crate::cli::BenchArgs;

/// The load a run offers.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    /// `callers` each send a call when their last one ends, until `stop`.
    Closed { callers: usize, stop: Stop },
    /// Calls sent on schedule: each step `rate` calls per second for `step`.
    Open { rates: Vec<f64>, step: Duration },
}

/// When a closed loop stops sending.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    After(u64),
    At(Duration),
}

/// The due times of an open loop's calls, segment after segment.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// (start, calls per second, end) of each segment: the warm-up, then the steps.
    segments: Vec<(Instant, f64, Instant)>,
    current: usize,
    /// Calls of the current segment already handed out.
    handed_out: u64,
}

// === impl Plan ===

impl Plan {
    /// The plan `args` ask for.
    ///
    /// # Errors
    /// Rates, durations or counts that are not positive.
    pub(crate) fn from_args(args: &BenchArgs) -> anyhow::Result<Plan> {
        let duration = match args.duration {
            Some(d) if !(d.is_finite() && d > 0.0) => bail!("--duration must be positive"),
            Some(d) => Some(Duration::from_secs_f64(d)),
            None => None,
        };
        if !args.rate.is_empty() {
            if let Some(bad) = args.rate.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
                bail!("--rate must be positive calls per second, not {bad}");
            }
            return Ok(Plan::Open {
                rates: args.rate.clone(),
                step: duration.unwrap_or(Duration::from_secs(10)),
            });
        }
        if args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let stop = match (args.requests, duration) {
            (Some(0), _) => bail!("--requests must be at least 1"),
            (Some(n), _) => Stop::After(n),
            (None, Some(d)) => Stop::At(d),
            (None, None) => Stop::At(Duration::from_secs(10)),
        };
        Ok(Plan::Closed {
            callers: args.concurrency,
            stop,
        })
    }

    /// The measured part's length, when known in advance (for the progress bar).
    pub(crate) fn length(&self) -> Option<Duration> {
        match self {
            Plan::Closed {
                stop: Stop::At(d), ..
            } => Some(*d),
            Plan::Closed { .. } => None,
            Plan::Open { rates, step } => Some(*step * steps(rates)),
        }
    }

    /// The rate of each step (`None` for a closed loop's one step).
    pub(crate) fn step_rates(&self) -> Vec<Option<f64>> {
        match self {
            Plan::Closed { .. } => vec![None],
            Plan::Open { rates, .. } => rates.iter().copied().map(Some).collect(),
        }
    }

    /// The step a call due at `due` belongs to, measuring from `start`.
    pub(crate) fn step_of(&self, start: Instant, due: Instant) -> usize {
        match self {
            Plan::Closed { .. } => 0,
            Plan::Open { rates, step } => {
                let elapsed = due.saturating_duration_since(start);
                let index = (elapsed.as_nanos() / step.as_nanos().max(1)) as usize;
                index.min(rates.len().saturating_sub(1))
            }
        }
    }
}

fn steps(rates: &[f64]) -> u32 {
    u32::try_from(rates.len()).unwrap_or(u32::MAX)
}

// === impl Schedule ===

impl Schedule {
    /// Calls from `start`: the first step's rate during `warmup` (not measured), then each
    /// step in turn, the first at `start + warmup`.
    pub(crate) fn new(start: Instant, warmup: Duration, rates: &[f64], step: Duration) -> Self {
        let mut segments = Vec::with_capacity(rates.len() + 1);
        let mut at = start;
        let warmup_rate = rates.first().copied().unwrap_or(1.0);
        for (rate, length) in std::iter::once((warmup_rate, warmup))
            .chain(rates.iter().map(|r| (*r, step)))
            .filter(|(_, length)| !length.is_zero())
        {
            segments.push((at, rate, at + length));
            at += length;
        }
        Schedule {
            segments,
            current: 0,
            handed_out: 0,
        }
    }

    /// When the next call is due, without taking it; `None` when the schedule is over.
    pub(crate) fn peek(&mut self) -> Option<Instant> {
        loop {
            let (start, rate, end) = *self.segments.get(self.current)?;
            // Computed from the segment's start, not added up call by call: no drift.
            let due = start + Duration::from_secs_f64(self.handed_out as f64 / rate);
            if due < end {
                return Some(due);
            }
            self.current += 1;
            self.handed_out = 0;
        }
    }

    /// Takes the call `peek` showed.
    pub(crate) fn take(&mut self) {
        self.handed_out += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spaces_calls_by_rate_and_steps_on() {
        let start = Instant::now();
        let mut schedule = Schedule::new(
            start,
            Duration::from_millis(100),
            &[10.0, 100.0],
            Duration::from_secs(1),
        );
        let mut dues = Vec::new();
        while let Some(due) = schedule.peek() {
            schedule.take();
            dues.push(due - start);
        }
        // Warm-up at 10/s for 100 ms (1 call), 1 s at 10/s, 1 s at 100/s.
        assert_eq!(dues.len(), 1 + 10 + 100);
        assert_eq!(dues[0], Duration::ZERO);
        assert_eq!(dues[1], Duration::from_millis(100));
        assert_eq!(dues[2], Duration::from_millis(200));
        assert_eq!(dues[11], Duration::from_millis(1100));
        assert_eq!(dues[12], Duration::from_millis(1110));
        assert!(dues.iter().all(|d| *d < Duration::from_millis(2100)));
    }

    #[test]
    fn steps_of_due_times() {
        let plan = Plan::Open {
            rates: vec![1.0, 2.0, 3.0],
            step: Duration::from_secs(2),
        };
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_millis(s);
        assert_eq!(plan.step_of(start, at(0)), 0);
        assert_eq!(plan.step_of(start, at(1999)), 0);
        assert_eq!(plan.step_of(start, at(2000)), 1);
        assert_eq!(plan.step_of(start, at(5999)), 2);
        assert_eq!(plan.step_of(start, at(9000)), 2);
        assert_eq!(plan.length(), Some(Duration::from_secs(6)));
    }
}
