//! Log lines captured from `tracing`, for tests that check what is (or is never) logged.
//!
//! One global subscriber per test binary writes every event, with its thread id, to one buffer;
//! each test reads the lines of its own thread. A subscriber set per thread instead would race
//! with the other tests of the binary over `tracing`'s per-callsite interest cache, and lose
//! events now and then.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The log lines of the thread that called [`capture`].
#[derive(Clone)]
pub struct Captured {
    buffer: Buffer,
    thread: String,
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The lines this thread logged so far, at every level.
    pub fn text(&self) -> String {
        let all = String::from_utf8(self.buffer.0.lock().unwrap().clone()).unwrap();
        all.lines()
            .filter(|line| line.contains(&self.thread))
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

/// Starts capturing this thread's log lines (a `#[tokio::test]` runs its tasks on it).
pub fn capture() -> Captured {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    let buffer = BUFFER
        .get_or_init(|| {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_thread_ids(true)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            buffer
        })
        .clone();
    Captured {
        buffer,
        thread: thread_label(),
    }
}

/// This thread's id as the fmt subscriber prints it: `ThreadId(02)`, two digits at least.
fn thread_label() -> String {
    let debug = format!("{:?}", std::thread::current().id());
    let number: u64 = debug
        .trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .expect("a thread id is a number");
    format!("ThreadId({number:02}) ")
}
