//! The load itself: one task sends calls as the plan says and records each as it ends.
//!
//! Every call in flight is a future in one `FuturesUnordered`, polled by this task: no task
//! per call, no lock to record, and the generator costs one core at most (the benchmark
//! runner pins it to the core the server does not use).

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use herald::Context;
use herald::client::Channel;
use herald::codegen::{MethodContract, NoAppError};
use indicatif::ProgressBar;
use tokio::time::{Instant, MissedTickBehavior};

use crate::bench::plan::{Plan, Schedule, Stop};
use crate::bench::record::{Outcome, Recorder};

/// A call to make, over and over.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) channel: Channel,
    pub(crate) method: &'static MethodContract,
    pub(crate) request: Bytes,
    pub(crate) timeout: Duration,
}

/// How often the progress bar moves.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

// === impl Call ===

impl Call {
    async fn once(self, due: Instant) -> Outcome {
        let ctx = Context::background().with_timeout(self.timeout);
        let result = self
            .channel
            .unary_raw::<NoAppError>(&ctx, self.method, self.request)
            .await;
        Outcome {
            due,
            done: Instant::now(),
            code: result.err().map_or(herald::Code::Ok, |e| e.code()),
        }
    }
}

/// Runs `plan` from now, after `warmup`; returns every outcome recorded.
pub(crate) async fn run(
    call: &Call,
    plan: &Plan,
    warmup: Duration,
    max_in_flight: usize,
    progress: &ProgressBar,
) -> Recorder {
    let begin = Instant::now();
    let start = begin + warmup;
    let mut recorder = Recorder::new(start, plan.step_rates().len());
    let mut in_flight = FuturesUnordered::new();
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);

    match plan {
        Plan::Closed { callers, stop } => {
            // Calls sent once measuring started (a count stops only those).
            let mut measured: u64 = 0;
            loop {
                let sending = match stop {
                    Stop::After(n) => Instant::now() < start || measured < *n,
                    Stop::At(d) => Instant::now() < start + *d,
                };
                while sending && in_flight.len() < *callers {
                    let now = Instant::now();
                    if now >= start {
                        measured += 1;
                    }
                    in_flight.push(call.clone().once(now));
                    if matches!(stop, Stop::After(n) if measured >= *n) {
                        break;
                    }
                }
                if in_flight.is_empty() && !sending {
                    break;
                }
                tokio::select! {
                    Some(outcome) = in_flight.next() => recorder.record(0, 0, &outcome),
                    _ = ticks.tick() => show(progress, &recorder, plan),
                }
            }
        }
        Plan::Open { rates, step } => {
            let mut schedule = Schedule::new(begin, warmup, rates, *step);
            let mut wake = pin!(tokio::time::sleep_until(begin));
            loop {
                let now = Instant::now();
                let mut next = schedule.peek();
                while let Some(due) = next.filter(|d| *d <= now) {
                    if in_flight.len() >= max_in_flight {
                        break;
                    }
                    schedule.take();
                    in_flight.push(call.clone().once(due));
                    next = schedule.peek();
                }
                if next.is_none() && in_flight.is_empty() {
                    break;
                }
                let room = in_flight.len() < max_in_flight;
                if let Some(due) = next.filter(|_| room) {
                    wake.as_mut().reset(due);
                }
                tokio::select! {
                    Some(outcome) = in_flight.next() => {
                        let due_step = plan.step_of(start, outcome.due);
                        recorder.record(due_step, plan.step_of(start, outcome.done), &outcome);
                    }
                    () = &mut wake, if room && next.is_some() => {}
                    _ = ticks.tick() => show(progress, &recorder, plan),
                }
            }
        }
    }
    progress.finish_and_clear();
    recorder
}

fn show(progress: &ProgressBar, recorder: &Recorder, plan: &Plan) {
    let now = Instant::now();
    let start = recorder.start();
    if now < start {
        progress.set_message("warming up");
        return;
    }
    let elapsed = now - start;
    let (calls, ok) = recorder
        .steps
        .iter()
        .fold((0, 0), |(c, o), t| (c + t.calls(), o + t.ok.len()));
    match plan.length() {
        Some(length) => {
            progress.set_length(length.as_millis() as u64);
            progress.set_position((elapsed.as_millis() as u64).min(length.as_millis() as u64));
        }
        None => progress.set_position(calls),
    }
    let secs = elapsed.as_secs_f64().max(0.001);
    progress.set_message(format!(
        "{calls} calls, {} failed, {:.0} OK/s",
        calls - ok,
        ok as f64 / secs
    ));
}
