//! Outcomes of calls, added up: HDR histograms of latency (answered OK and failed apart),
//! counts by gRPC status, per step and per second. Owned by the one task that drives the
//! load, so recording takes no lock.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use herald::Code;
use tokio::time::Instant;

/// Latencies are recorded in microseconds, 1 µs to 10 minutes, 3 significant digits.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// One finished call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// When it was due: sent, in a closed loop; scheduled, in an open loop.
    pub(crate) due: Instant,
    pub(crate) done: Instant,
    pub(crate) code: Code,
}

/// What calls of one part of a run (a step, a second, the whole) came to.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    pub(crate) ok: Histogram<u64>,
    pub(crate) failed: Histogram<u64>,
    pub(crate) codes: BTreeMap<&'static str, u64>,
    /// First due time and last answer seen.
    pub(crate) first: Option<Instant>,
    pub(crate) last: Option<Instant>,
}

/// Every tally of a run.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Where measurement starts: calls due earlier are warm-up.
    start: Instant,
    pub(crate) steps: Vec<Tally>,
    /// Calls answered OK *during* each step (by when the answer came, not when the call was
    /// due): a step's goodput. Answers after the last step count towards it.
    pub(crate) answered_ok: Vec<u64>,
    pub(crate) seconds: Vec<Tally>,
    pub(crate) warmup_calls: u64,
}

// === impl Tally ===

impl Tally {
    pub(crate) fn new() -> Tally {
        let histogram = || {
            Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid")
        };
        Tally {
            ok: histogram(),
            failed: histogram(),
            codes: BTreeMap::new(),
            first: None,
            last: None,
        }
    }

    fn add(&mut self, outcome: &Outcome) {
        let micros = outcome
            .done
            .saturating_duration_since(outcome.due)
            .as_micros();
        let micros = u64::try_from(micros).unwrap_or(u64::MAX);
        let histogram = if outcome.code == Code::Ok {
            &mut self.ok
        } else {
            &mut self.failed
        };
        histogram.saturating_record(micros.clamp(LOWEST_US, HIGHEST_US));
        *self.codes.entry(outcome.code.name()).or_default() += 1;
        self.first = Some(self.first.map_or(outcome.due, |f| f.min(outcome.due)));
        self.last = Some(self.last.map_or(outcome.done, |l| l.max(outcome.done)));
    }

    /// Adds `other` in.
    ///
    /// # Panics
    /// Never: both histograms have the same bounds.
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.ok.add(&other.ok).expect("histograms share bounds");
        self.failed
            .add(&other.failed)
            .expect("histograms share bounds");
        for (code, n) in &other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.first = [self.first, other.first].into_iter().flatten().min();
        self.last = [self.last, other.last].into_iter().flatten().max();
    }

    pub(crate) fn calls(&self) -> u64 {
        self.ok.len() + self.failed.len()
    }
}

// === impl Recorder ===

impl Recorder {
    pub(crate) fn new(start: Instant, steps: usize) -> Recorder {
        Recorder {
            start,
            steps: (0..steps.max(1)).map(|_| Tally::new()).collect(),
            answered_ok: vec![0; steps.max(1)],
            seconds: Vec::new(),
            warmup_calls: 0,
        }
    }

    /// Records `outcome` in the step it was due in (`due_step`), in the second it was due,
    /// and, when OK, as an answer of the step it came in (`done_step`).
    pub(crate) fn record(&mut self, due_step: usize, done_step: usize, outcome: &Outcome) {
        if outcome.due < self.start {
            self.warmup_calls += 1;
            return;
        }
        if let Some(tally) = self.steps.get_mut(due_step) {
            tally.add(outcome);
        }
        if outcome.code == Code::Ok
            && let Some(answered) = self.answered_ok.get_mut(done_step)
        {
            *answered += 1;
        }
        let second = outcome.due.duration_since(self.start).as_secs() as usize;
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Tally::new);
        }
        self.seconds[second].add(outcome);
    }

    /// All steps together.
    pub(crate) fn total(&self) -> Tally {
        let mut total = Tally::new();
        for step in &self.steps {
            total.merge(step);
        }
        total
    }

    pub(crate) fn start(&self) -> Instant {
        self.start
    }
}

/// The length of a tally's window: from the first call due to the last answer.
pub(crate) fn window(tally: &Tally) -> Duration {
    match (tally.first, tally.last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(start: Instant, due_ms: u64, latency_ms: u64, code: Code) -> Outcome {
        let due = start + Duration::from_millis(due_ms);
        Outcome {
            due,
            done: due + Duration::from_millis(latency_ms),
            code,
        }
    }

    #[test]
    fn tallies_by_step_second_and_code_and_skips_warmup() {
        let t0 = Instant::now();
        let start = t0 + Duration::from_secs(1);
        let mut recorder = Recorder::new(start, 2);
        recorder.record(0, 0, &outcome(t0, 500, 1, Code::Ok)); // warm-up
        recorder.record(0, 1, &outcome(t0, 1000, 2, Code::Ok));
        recorder.record(0, 1, &outcome(t0, 1999, 4, Code::ResourceExhausted));
        recorder.record(1, 1, &outcome(t0, 2500, 8, Code::Ok));
        assert_eq!(recorder.warmup_calls, 1);
        assert_eq!(recorder.steps[0].calls(), 2);
        assert_eq!(recorder.steps[0].ok.len(), 1);
        assert_eq!(recorder.steps[0].failed.len(), 1);
        assert_eq!(recorder.steps[1].calls(), 1);
        assert_eq!(recorder.answered_ok, [0, 2], "answered in the second step");
        assert_eq!(recorder.seconds.len(), 2);
        assert_eq!(recorder.seconds[0].calls(), 2);
        let total = recorder.total();
        assert_eq!(total.codes.get("OK"), Some(&2));
        assert_eq!(total.codes.get("RESOURCE_EXHAUSTED"), Some(&1));
        // OK latencies 2 ms and 8 ms, within the histogram's precision.
        assert!((total.ok.max() as i64 - 8000).abs() <= 8);
        assert!((total.ok.min() as i64 - 2000).abs() <= 2);
        assert_eq!(window(&total), Duration::from_millis(1508));
    }
}
