//! An annotated upload streamed to the client as it is written: the compute
//! thread writes into a [`ChannelWriter`] (chunks of [`CHUNK`] bytes through a
//! channel of a few chunks), the response body is the channel's other end. A client
//! that reads slowly slows the writer (it waits, up to the request's deadline); one
//! that goes away stops it. A failure after the first byte aborts the body, so the
//! client sees a truncated answer, never one that looks complete.

use axum::body::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Bytes per chunk sent to the client.
pub const CHUNK: usize = 64 << 10;
/// Chunks waiting in the channel at most.
const QUEUED: usize = 4;

/// Why the body was cut short, once it was.
type Failure = Arc<Mutex<Option<String>>>;

/// The writing end (a `Write` for the compute thread).
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    deadline: Instant,
    limit: Duration,
    runtime: tokio::runtime::Handle,
    failure: Failure,
    /// Set by [`ChannelWriter::finish`]; a writer dropped without it (a panic) cuts
    /// the body short.
    finished: bool,
}

/// The response body: the chunks written, then the end, or an error when the
/// writer recorded a failure.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    failure: Failure,
}

/// A writer and the body it feeds; writes fail past `deadline` (`limit` after the
/// request began), naming `--request-timeout-secs`. Call from the async side: the
/// writer keeps the current runtime's handle to wait for room in the channel.
pub fn channel(deadline: Instant, limit: Duration) -> (ChannelWriter, ChannelBody) {
    let (tx, rx) = mpsc::channel(QUEUED);
    let failure = Failure::default();
    let writer = ChannelWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
        deadline,
        limit,
        runtime: tokio::runtime::Handle::current(),
        failure: failure.clone(),
        finished: false,
    };
    (writer, ChannelBody { rx, failure })
}

impl ChannelWriter {
    /// End the body: cleanly after what was written, or cut short with the reason
    /// (the client sees the connection end before the body does). Recorded before the
    /// channel closes, so the body never ends cleanly by mistake.
    pub fn finish(mut self, outcome: Result<(), String>) {
        if let Err(reason) = outcome {
            self.fail(reason);
        }
        self.finished = true;
    }

    fn fail(&self, reason: String) {
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(reason);
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let late = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request took longer than {} s, the limit (--request-timeout-secs)",
                    self.limit.as_secs()
                ),
            )
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(left, self.tx.send(chunk)));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client closed the connection",
            )),
            Err(_) => Err(late()),
        }
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.fail("the annotation stopped before its end".into());
        }
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(http_body::Frame::data(chunk)))),
            Poll::Ready(None) => {
                let failure = self.failure.lock().ok().and_then(|mut f| f.take());
                Poll::Ready(failure.map(|reason| Err(io::Error::other(reason))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
