//! A log writer that gathers lines in memory and writes them in large blocks, off the threads
//! that log.
//!
//! An access log writes a line per request; a write system call per line (or per 8 KiB of a
//! `BufWriter`) was most of what the access log cost a busy server. Lines here are appended to
//! one shared buffer (a short, uncontended lock and a copy; a few KiB of lines are gathered
//! in a small buffer first, see `STAGING`). A buffer that fills is queued for
//! the log's own thread, which writes it out — so a request never waits for the file system,
//! whose writes can take milliseconds (a journal commit, dirty-page throttling) — as Envoy's file
//! access logs do (a flushing thread, 1 s flush interval). That thread also
//! writes whatever gathered every `interval`; warnings and errors are written at once by the
//! thread that logs them (so that what matters is never held back), and everything when the
//! writer is flushed or dropped.
//!
//! When the log's thread falls behind (a slow disk) and `MAX_QUEUED` full buffers wait, the
//! thread that fills the next one writes the oldest itself: the log's backpressure, so that memory
//! stays bounded. A block the writer fails to take (a full disk) is dropped, and the first
//! failure is reported on stderr: a log must not grow without bound or stall the requests it
//! records.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Lines held before they are written out. Each full buffer costs the log's thread a wake-up
/// and two context switches (on a server pinned to one CPU, ~20 µs of its time) plus a write
/// system call, and the write streams the block through the CPU's caches. Against 256 KiB
/// blocks (`bench/together`, 8 rounds each, 2026-11-25), a server writing an access line
/// per call did 0.991, 0.996 and 1.006 of the calls per CPU-second with 64 KiB, 128 KiB and
/// 1 MiB (~5000 lines). At 10 MB of lines a second a block still goes out ten times a
/// second; a quieter log goes out every `interval`.
const CAPACITY: usize = 1024 * 1024;

/// Room past `CAPACITY` in each buffer, for the lines that fill it (the staged ones and the
/// next): a buffer grown by them (copied to a new allocation) and shrunk back after its write
/// (copied again) cost a busy server ~1 % of its CPU. Only a line longer than
/// `HEADROOM - STAGING` grows a buffer.
const HEADROOM: usize = 8 * 1024;

/// Lines gathered in a small buffer before they are moved into the large one, a few KiB at
/// a time. The large buffer is cold in the CPU's cache (each is written out, and another
/// filled, every few milliseconds), so every line copied straight into it missed the cache, and
/// the unlock after it — an atomic swap, which waits for the stores before it — waited for
/// those misses: ~0.05 µs per access line, most of what appending cost (perf). The small buffer
/// stays cached; moving a few KiB at once lets the CPU stream the cold stores.
const STAGING: usize = 4 * 1024;

/// Room in the staging buffer past `STAGING`, for a line formatted in place that crosses it
/// (an access line is ~200 bytes; a longer one grows the staging buffer once).
const STAGED_LINE: usize = 1024;

/// Full buffers that may wait for the log's thread before the thread filling the next one
/// writes them itself. With the one being filled and the spares kept, a log holds at most
/// about 5 MiB (usually two buffers: the one being filled and one spare).
const MAX_QUEUED: usize = 2;

/// Gathers log lines and writes them to `W` in blocks (see the module's documentation).
///
/// Cloning shares the buffer.
pub struct BufferedLog<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

struct Shared<W: Write> {
    lines: Mutex<Lines>,
    /// Taken while blocks are written, so blocks leave in the order they were filled.
    out: Mutex<W>,
    /// The flushing thread: woken when a buffer fills, and when the log is dropped (so that it
    /// ends at once). Unset if it could not be started.
    flusher: OnceLock<Thread>,
    /// Whether a failed write was reported already.
    failure_reported: AtomicBool,
}

/// The lines being gathered, the buffer being filled, the full ones waiting to be written, and
/// emptied ones to reuse: so that filling the log allocates nothing and touches no fresh pages.
struct Lines {
    /// The latest lines, less than `STAGING` bytes: they follow `filling`'s.
    staging: Vec<u8>,
    filling: Vec<u8>,
    /// Oldest first.
    full: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

/// What a write-out takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    /// The oldest full buffer (a thread that found too many waiting: one block for the one
    /// it queued, so that no thread ends up writing everyone's lines while they keep coming).
    Oldest,
    /// The full buffers (the log's thread, woken by one).
    Full,
    /// The full buffers and the lines gathered since (a flush).
    Everything,
}

thread_local! {
    /// Whether this thread is writing a block out: an event the writer itself logs is then
    /// only appended, never written (the output lock is held).
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Where herald writes whole lines itself (the access log's, `observe/access_log.rs`).
pub(crate) trait LineSink: Send + Sync {
    /// Appends the one complete line `write` puts at the end of the buffer it is given
    /// (written out with the others, as a tracing event's line): formatted in place, where
    /// a line made elsewhere would be copied once more. `write` runs under the log's lock.
    fn append_with(&self, write: &mut dyn FnMut(&mut Vec<u8>));
}

/// One line's writer, from [`BufferedLog::make_writer`].
pub struct LineWriter<'a, W: Write + Send + 'static> {
    shared: &'a Shared<W>,
    /// Warnings and errors are written out as soon as their line is complete.
    urgent: bool,
}

// === impl BufferedLog ===

impl<W: Write + Send + 'static> BufferedLog<W> {
    /// Buffers lines for `out`, writing them at least every `interval` (1 ms at least).
    pub fn new(out: W, interval: Duration) -> BufferedLog<W> {
        let shared = Shared::new(out);
        let weak = Arc::downgrade(&shared);
        let interval = interval.max(Duration::from_millis(1));
        // A thread of its own: the writer serves code outside any runtime (and the process's
        // global logger outlives every runtime). It stops once the writer is dropped.
        let spawned = std::thread::Builder::new()
            .name("herald-log-flush".into())
            .spawn(move || flush_every(&weak, interval));
        match spawned {
            Ok(handle) => {
                let _ = shared.flusher.set(handle.thread().clone());
            }
            // Lines still go out when a buffer fills (written by the thread that filled it),
            // on warnings and on flush.
            Err(e) => eprintln!(
                "herald: no log flushing thread ({e}); lines are written when a buffer fills"
            ),
        }
        BufferedLog { shared }
    }

    /// Writes out every line gathered so far.
    ///
    /// # Errors
    /// The underlying writer failed.
    pub fn flush(&self) -> io::Result<()> {
        self.shared.flush()
    }

    /// The buffer, for lines herald writes without a tracing event.
    pub(crate) fn sink(&self) -> Arc<dyn LineSink> {
        self.shared.clone()
    }
}

impl<W: Write + Send + 'static> Clone for BufferedLog<W> {
    fn clone(&self) -> Self {
        BufferedLog {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<W: Write + Send + 'static> std::fmt::Debug for BufferedLog<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedLog").finish_non_exhaustive()
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for BufferedLog<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

fn new_buffer() -> Vec<u8> {
    Vec::with_capacity(CAPACITY + HEADROOM)
}

/// Writes `shared`'s full buffers when woken, and everything every `interval`, until it is
/// gone (its drop wakes this thread).
fn flush_every<W: Write>(shared: &Weak<Shared<W>>, interval: Duration) {
    let mut flushed = Instant::now();
    loop {
        std::thread::park_timeout(interval.saturating_sub(flushed.elapsed()));
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let take = if flushed.elapsed() >= interval {
            flushed = Instant::now();
            Take::Everything
        } else {
            Take::Full
        };
        // A failure is reported once by `write_out`; the next block tries again. A writer
        // that panics loses its block, not the log's thread: lines keep going out.
        let wrote =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.write_out(take)));
        if wrote.is_err() && !shared.failure_reported.swap(true, Ordering::Relaxed) {
            eprintln!("herald: the log's writer panicked; its block was dropped (reported once)");
        }
    }
}

// === impl Shared ===

impl<W: Write> Shared<W> {
    /// The log's state, with no thread yet.
    fn new(out: W) -> Arc<Shared<W>> {
        Arc::new(Shared {
            lines: Mutex::new(Lines {
                staging: Vec::with_capacity(STAGING + STAGED_LINE),
                filling: new_buffer(),
                full: VecDeque::with_capacity(MAX_QUEUED + 1),
                spare: vec![new_buffer()],
            }),
            out: Mutex::new(out),
            flusher: OnceLock::new(),
            failure_reported: AtomicBool::new(false),
        })
    }

    fn lines(&self) -> MutexGuard<'_, Lines> {
        // A panic while appending leaves at worst a partial line: keep logging.
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, line: &[u8]) -> io::Result<()> {
        let queued = {
            let mut lines = self.lines();
            if lines.staging.len() + line.len() < STAGING {
                lines.staging.extend_from_slice(line);
                return Ok(());
            }
            lines.unstage();
            lines.filling.extend_from_slice(line);
            match lines.queue_if_full() {
                Some(queued) => queued,
                None => return Ok(()),
            }
        };
        self.queued(queued)
    }

    /// Appends the line `write` adds to the staged ones (a line longer than the staging
    /// buffer's room grows it once).
    fn append_in_place(&self, write: &mut dyn FnMut(&mut Vec<u8>)) -> io::Result<()> {
        let queued = {
            let mut lines = self.lines();
            write(&mut lines.staging);
            if lines.staging.len() < STAGING {
                return Ok(());
            }
            lines.unstage();
            match lines.queue_if_full() {
                Some(queued) => queued,
                None => return Ok(()),
            }
        };
        self.queued(queued)
    }

    /// After a buffer was queued (`queued` now wait): the log's thread is woken, or when too
    /// many wait, this thread writes the oldest.
    fn queued(&self, queued: usize) -> io::Result<()> {
        match self.flusher.get() {
            Some(flusher) if queued <= MAX_QUEUED => {
                flusher.unpark();
                Ok(())
            }
            // The log's thread is behind (or missing): this thread waits for the output.
            _ => self.write_out(Take::Oldest),
        }
    }

    fn flush(&self) -> io::Result<()> {
        if WRITING.get() {
            // The writer logged while writing: its lines go out with the next block.
            return Ok(());
        }
        self.write_out(Take::Everything)
    }

    /// Writes the full buffers, oldest first (only the oldest with `Take::Oldest`), and with
    /// `Take::Everything` the lines gathered since (once: lines appended meanwhile wait for
    /// the next write-out).
    ///
    /// The output lock is taken first and the buffers' only to take one and to hand it back
    /// emptied: blocks leave in the order they were filled, and no thread waits for the output
    /// while holding the buffers — which a writer that logs needs, from whatever thread it
    /// runs on. The first failure is returned (and reported once); the blocks after it are
    /// still tried.
    fn write_out(&self, take: Take) -> io::Result<()> {
        let mut writer = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut take_filling = take == Take::Everything;
        let most = if take == Take::Oldest { 1 } else { usize::MAX };
        let mut result = Ok(());
        for _ in 0..most {
            let Some(mut block) = self.next_block(&mut take_filling) else {
                break;
            };
            let outcome = {
                let _writing = Writing::start();
                writer.write_all(&block).and_then(|()| writer.flush())
            };
            if let Err(e) = outcome {
                if !self.failure_reported.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "herald: cannot write the log ({e}); {} bytes of lines dropped \
                         (reported once)",
                        block.len()
                    );
                }
                if result.is_ok() {
                    result = Err(e);
                }
            }
            block.clear();
            // A block grown past the usual size (by a huge line) is not kept.
            block.shrink_to(CAPACITY + HEADROOM);
            let mut lines = self.lines();
            // As many as can wait, and the one being filled: more were made only by threads
            // queuing at the same moment.
            if lines.spare.len() <= MAX_QUEUED {
                lines.spare.push(block);
            }
        }
        result
    }

    /// The oldest full buffer; else, once if `take_filling`, the one being filled.
    fn next_block(&self, take_filling: &mut bool) -> Option<Vec<u8>> {
        let mut lines = self.lines();
        if let Some(full) = lines.full.pop_front() {
            return Some(full);
        }
        if !std::mem::take(take_filling) {
            return None;
        }
        lines.unstage();
        if lines.filling.is_empty() {
            return None;
        }
        let next = lines.spare.pop().unwrap_or_else(new_buffer);
        Some(std::mem::replace(&mut lines.filling, next))
    }
}

// === impl Lines ===

impl Lines {
    /// Queues the buffer being filled once it is full (not while this thread writes a block
    /// out: its lines wait for the next one), taking a spare in its place: how many wait.
    fn queue_if_full(&mut self) -> Option<usize> {
        if self.filling.len() < CAPACITY || WRITING.get() {
            return None;
        }
        let next = self.spare.pop().unwrap_or_else(new_buffer);
        let full = std::mem::replace(&mut self.filling, next);
        self.full.push_back(full);
        Some(self.full.len())
    }

    /// Moves the staged lines to the buffer being filled.
    fn unstage(&mut self) {
        self.filling.extend_from_slice(&self.staging);
        self.staging.clear();
    }
}

/// Marks this thread as writing a block out while alive, also when the writer panics.
struct Writing;

impl Writing {
    fn start() -> Writing {
        WRITING.set(true);
        Writing
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.set(false);
    }
}

impl<W: Write> Drop for Shared<W> {
    fn drop(&mut self) {
        let lines = self.lines.get_mut().unwrap_or_else(|e| e.into_inner());
        lines.unstage();
        let out = self.out.get_mut().unwrap_or_else(|e| e.into_inner());
        for block in lines.full.iter().chain([&lines.filling]) {
            let _ = out.write_all(block);
        }
        let _ = out.flush();
        if let Some(thread) = self.flusher.get() {
            thread.unpark();
        }
    }
}

impl<W: Write + Send + 'static> LineSink for Shared<W> {
    fn append_with(&self, write: &mut dyn FnMut(&mut Vec<u8>)) {
        // As a tracing event's line: a failed write is not the request's problem.
        let _ = self.append_in_place(write);
    }
}

// === impl LineWriter ===

impl<W: Write + Send + 'static> std::fmt::Debug for LineWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter")
            .field("urgent", &self.urgent)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> Write for LineWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.shared.flush()
    }
}

impl<W: Write + Send + 'static> Drop for LineWriter<'_, W> {
    fn drop(&mut self) {
        if self.urgent && !WRITING.get() {
            let _ = self.shared.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each block written, as the underlying writer sees it.
    #[derive(Clone, Default)]
    struct Blocks(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Blocks {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("blocks").push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Blocks {
        fn count(&self) -> usize {
            self.0.lock().expect("blocks").len()
        }
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("blocks").concat()).expect("utf-8")
        }
    }

    /// Records blocks as `Blocks` does, after running `before` on each (which may fail it):
    /// the writers that log, append or fail from inside a write.
    struct Hooked<F>(Blocks, F);

    impl<F: FnMut(&[u8]) -> io::Result<()>> Write for Hooked<F> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            (self.1)(buf)?;
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn lines_are_held_until_flushed_then_written_as_one_block_in_order() {
        let blocks = Blocks::default();
        let log = BufferedLog::new(blocks.clone(), HOUR);
        for i in 0..100 {
            writeln!(log.make_writer(), "line {i}").expect("append");
        }
        assert_eq!(blocks.count(), 0, "nothing written before a flush");
        log.flush().expect("flush");
        assert_eq!(blocks.count(), 1);
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(blocks.text(), expected);
    }

    #[test]
    fn staged_lines_keep_their_place_before_a_line_too_long_to_stage() {
        let blocks = Blocks::default();
        let log = BufferedLog::new(blocks.clone(), HOUR);
        let long = format!("{}\n", "l".repeat(STAGING));
        for line in ["short 1\n", &long, "short 2\n"] {
            log.make_writer()
                .write_all(line.as_bytes())
                .expect("append");
        }
        {
            let lines = log.shared.lines();
            assert_eq!(lines.filling, format!("short 1\n{long}").as_bytes());
            assert_eq!(lines.staging, b"short 2\n");
        }
        log.flush().expect("flush");
        assert_eq!(blocks.text(), format!("short 1\n{long}short 2\n"));
    }

    /// Where the buffer being filled is: it moves when a full one is handed over.
    fn filling_at<W: Write + Send + 'static>(log: &BufferedLog<W>) -> usize {
        log.shared.lines().filling.as_ptr() as usize
    }

    /// Waits (at most 10 s) for `done`.
    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let waited = std::time::Instant::now();
        while !done() {
            assert!(waited.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logs_thread_while_the_appender_goes_on() {
        let blocks = Blocks::default();
        let writers = Arc::new(Mutex::new(Vec::new()));
        // Each write waits to be let through, and notes the thread it ran on.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let out = Hooked(blocks.clone(), {
            let writers = writers.clone();
            move |_: &[u8]| {
                let _ = released.recv_timeout(Duration::from_secs(10));
                let name = std::thread::current().name().map(str::to_owned);
                writers.lock().expect("writers").push(name);
                Ok(())
            }
        });
        let log = BufferedLog::new(out, HOUR);
        let line = [b'x'; 1000];
        let filling = || filling_at(&log);
        let first = filling();
        let mut appended = 0;
        while filling() == first {
            log.make_writer().write_all(&line).expect("append");
            appended += 1;
        }
        // The buffer was handed over once full, not before; the append that filled it
        // returned while the write waits.
        assert!((CAPACITY..CAPACITY + STAGING + line.len()).contains(&(appended * line.len())));
        assert_eq!(blocks.count(), 0);
        release.send(()).expect("release");
        wait_for("the full buffer is written", || blocks.count() == 1);
        assert_eq!(blocks.text().len(), appended * line.len());
        let writers = writers.lock().expect("writers").clone();
        assert_eq!(writers, [Some("herald-log-flush".to_owned())]);
    }

    #[test]
    fn a_writer_that_panics_on_the_logs_thread_loses_its_block_and_the_thread_goes_on() {
        let blocks = Blocks::default();
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let out = Hooked(blocks.clone(), {
            let writes = writes.clone();
            move |_: &[u8]| {
                assert!(
                    writes.fetch_add(1, Ordering::SeqCst) > 0,
                    "the first write panics"
                );
                Ok(())
            }
        });
        let log = BufferedLog::new(out, HOUR);
        // Appends lines of `byte` until they fill a block: how many it took.
        let fill = |byte: u8| {
            let mut line = [byte; 1000];
            line[999] = b'\n';
            let filling = || filling_at(&log);
            let first = filling();
            let mut lines = 0;
            while filling() == first {
                log.make_writer().write_all(&line).expect("append");
                lines += 1;
            }
            lines
        };
        fill(b'a');
        wait_for("the first write is tried", || {
            writes.load(Ordering::SeqCst) == 1
        });
        let lines = fill(b'b');
        wait_for("the next block is written", || blocks.count() == 1);
        let text = blocks.text();
        assert!(!text.contains('a'));
        assert_eq!(text.matches('b').count(), 999 * lines);
    }

    #[test]
    fn a_thread_held_back_by_the_backlog_writes_one_block_not_all_of_them() {
        // No log thread: nothing else writes.
        let blocks = Blocks::default();
        let shared = Shared::new(blocks.clone());
        for block in ["1\n", "2\n", "3\n"] {
            shared.lines().full.push_back(block.as_bytes().to_vec());
        }
        shared.write_out(Take::Oldest).expect("write");
        assert_eq!(blocks.text(), "1\n");
        assert_eq!(shared.lines().full.len(), 2);
        shared.write_out(Take::Full).expect("write");
        assert_eq!(blocks.text(), "1\n2\n3\n");
    }

    #[test]
    fn when_the_logs_thread_falls_behind_the_appender_waits_and_no_line_is_lost() {
        let blocks = Blocks::default();
        // No write finishes until the sender is dropped.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let out = Hooked(blocks.clone(), move |_: &[u8]| {
            let _ = released.recv_timeout(Duration::from_secs(10));
            Ok(())
        });
        let log = BufferedLog::new(out, HOUR);
        // Numbered lines of 1000 bytes: enough for three more buffers than may wait.
        let per_buffer = CAPACITY / 1000 + 1;
        let lines: Vec<String> = (0..per_buffer * (MAX_QUEUED + 3))
            .map(|i| format!("{i:0999}\n"))
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        let filler = {
            let (log, lines) = (log.clone(), lines.clone());
            std::thread::spawn(move || {
                for line in &lines {
                    log.make_writer()
                        .write_all(line.as_bytes())
                        .expect("append");
                }
                let _ = done.send(());
            })
        };
        wait_for("the buffers queue up", || {
            log.shared.lines().full.len() >= MAX_QUEUED
        });
        assert!(
            finished.recv_timeout(Duration::from_millis(200)).is_err(),
            "the appender waits for the output"
        );
        assert!(log.shared.lines().full.len() <= MAX_QUEUED + 1);
        drop(release);
        filler.join().expect("filler");
        log.flush().expect("flush");
        assert_eq!(blocks.text(), lines.concat());
    }

    #[test]
    fn filling_blocks_with_lines_reallocates_no_buffer_and_a_huge_lines_growth_is_undone() {
        let blocks = Blocks::default();
        // Where each written block lies in memory.
        let written = Arc::new(Mutex::new(Vec::new()));
        let out = Hooked(blocks.clone(), {
            let written = written.clone();
            move |block: &[u8]| {
                written
                    .lock()
                    .expect("written")
                    .push(block.as_ptr() as usize);
                Ok(())
            }
        });
        let log = BufferedLog::new(out, HOUR);
        let mut line = [b'x'; 999];
        line[998] = b'\n';
        // Each buffer filled, in order: lines are appended until a sixth one is being filled
        // (the lines that cross CAPACITY are where a buffer without headroom would grow).
        let filling = || filling_at(&log);
        let mut filled = vec![filling()];
        while filled.len() < 6 {
            log.make_writer().write_all(&line).expect("append");
            if filling() != filled[filled.len() - 1] {
                filled.push(filling());
            }
        }
        wait_for("five blocks are written", || blocks.count() == 5);
        assert_eq!(
            *written.lock().expect("written"),
            filled[..5],
            "each block is written from the buffer it was filled in"
        );

        let huge = vec![b'y'; CAPACITY + 2 * HEADROOM];
        log.make_writer().write_all(&huge).expect("append");
        wait_for("the huge line is written", || blocks.count() == 6);
        // Waits for the log's thread to hand the buffer back.
        log.flush().expect("flush");
        let lines = log.shared.lines();
        let buffers: Vec<&Vec<u8>> = [&lines.filling]
            .into_iter()
            .chain(&lines.spare)
            .chain(&lines.full)
            .collect();
        assert!(buffers.len() <= MAX_QUEUED + 2, "{} buffers", buffers.len());
        for buffer in buffers {
            assert_eq!(buffer.capacity(), CAPACITY + HEADROOM);
        }
    }

    #[test]
    fn warnings_go_out_at_once_with_the_lines_before_them() {
        let blocks = Blocks::default();
        let log = BufferedLog::new(blocks.clone(), HOUR);
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink)
            .with_max_level(Level::INFO)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first");
            assert_eq!(blocks.count(), 0, "info waits");
            tracing::warn!("second");
        });
        let text = blocks.text();
        assert!(
            text.contains("first")
                && text.contains("second")
                && text.find("first") < text.find("second"),
            "{text}"
        );
    }

    #[test]
    fn the_background_thread_writes_within_the_interval_and_stops_with_the_log() {
        let blocks = Blocks::default();
        let log = BufferedLog::new(blocks.clone(), Duration::from_millis(20));
        writeln!(log.make_writer(), "soon").expect("append");
        let waited = std::time::Instant::now();
        while blocks.count() == 0 {
            assert!(waited.elapsed() < Duration::from_secs(5), "not flushed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(blocks.text(), "soon\n");
        let weak = Arc::downgrade(&log.shared);
        drop(log);
        // The thread holds the log only while it flushes, then lets it go for good (and is
        // woken by the drop rather than sleeping out its interval).
        let dropped = std::time::Instant::now();
        while weak.upgrade().is_some() {
            assert!(
                dropped.elapsed() < Duration::from_secs(5),
                "the thread keeps the log"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_writer_that_logs_does_not_deadlock_and_its_lines_follow() {
        let blocks = Blocks::default();
        // Logs a warning (to the thread's subscriber) from inside every write.
        let chatty = Hooked(blocks.clone(), |buf: &[u8]| {
            tracing::warn!("the writer took {} bytes", buf.len());
            Ok(())
        });
        let log = BufferedLog::new(chatty, HOUR);
        let (done, finished) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(sink.clone())
                .without_time()
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!("first");
                sink.flush().expect("flush");
                sink.flush().expect("flush");
            });
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("no deadlock");
        let text = blocks.text();
        assert!(text.contains("first"), "{text}");
        assert!(text.contains("the writer took"), "{text}");
    }

    #[test]
    fn blocks_reuse_the_buffer_and_carry_only_their_own_lines() {
        let blocks = Blocks::default();
        let log = BufferedLog::new(blocks.clone(), HOUR);
        for line in ["a", "b", "c"] {
            writeln!(log.make_writer(), "{line}").expect("append");
            log.flush().expect("flush");
        }
        assert_eq!(blocks.count(), 3);
        assert_eq!(blocks.text(), "a\nb\nc\n");
    }

    #[test]
    fn a_writer_that_logs_while_another_thread_fills_the_buffer_does_not_deadlock() {
        let blocks = Blocks::default();
        // Appends a line to the log it writes for, slowly, from inside every write (and says
        // when a write begins).
        let cell = Arc::new(std::sync::OnceLock::<Weak<dyn LineSink>>::new());
        let (began, writing_began) = std::sync::mpsc::channel::<()>();
        let echoing = Hooked(blocks.clone(), {
            let cell = cell.clone();
            move |_: &[u8]| {
                let _ = began.send(());
                std::thread::sleep(Duration::from_millis(100));
                if let Some(log) = cell.get().and_then(Weak::upgrade) {
                    log.append_with(&mut |out| out.extend_from_slice(b"echo\n"));
                }
                Ok(())
            }
        });
        let log = BufferedLog::new(echoing, HOUR);
        let sink = log.sink();
        let _ = cell.set(Arc::downgrade(&sink));
        let (done, finished) = std::sync::mpsc::channel();
        // One thread writes a block (its writer appending as it goes) while another fills
        // the buffer and so waits for that write.
        let writing = {
            let (log, done) = (log.clone(), done.clone());
            std::thread::spawn(move || {
                writeln!(log.make_writer(), "first").expect("append");
                log.flush().expect("flush");
                let _ = done.send(());
            })
        };
        let filling = std::thread::spawn(move || {
            writing_began
                .recv_timeout(Duration::from_secs(10))
                .expect("the first block's write begins");
            let line = [b'x'; 1023];
            for _ in 0..=(CAPACITY / 1024) {
                sink.append_with(&mut |out| {
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                });
            }
            let _ = done.send(());
        });
        for _ in 0..2 {
            finished
                .recv_timeout(Duration::from_secs(10))
                .expect("no deadlock");
        }
        writing.join().expect("writer");
        filling.join().expect("filler");
        log.flush().expect("flush");
        let text = blocks.text();
        assert!(text.starts_with("first\n"), "{}", &text[..20]);
        assert!(text.contains("echo\n"));
        assert_eq!(text.matches('x').count(), 1023 * (CAPACITY / 1024 + 1));
    }

    #[test]
    fn a_failed_block_is_dropped_and_later_lines_still_go_out() {
        // Fails every write until told otherwise.
        let (blocks, failing) = (Blocks::default(), Arc::new(AtomicBool::new(true)));
        let out = Hooked(blocks.clone(), {
            let failing = failing.clone();
            move |_: &[u8]| match failing.load(Ordering::SeqCst) {
                true => Err(io::Error::other("disk full")),
                false => Ok(()),
            }
        });
        let log = BufferedLog::new(out, HOUR);
        writeln!(log.make_writer(), "lost").expect("append");
        assert!(log.flush().is_err());
        failing.store(false, Ordering::SeqCst);
        writeln!(log.make_writer(), "kept").expect("append");
        log.flush().expect("flush");
        assert_eq!(blocks.text(), "kept\n");
    }

    #[test]
    fn dropping_the_log_writes_what_is_left() {
        let blocks = Blocks::default();
        let log = BufferedLog::new(blocks.clone(), HOUR);
        writeln!(log.make_writer(), "last words").expect("append");
        drop(log);
        assert_eq!(blocks.text(), "last words\n");
    }
}
