//! Bounds on request bodies: a deadline (hyper's header read timeout ends at the request head,
//! so a client that sent a head and then stalled mid-body held its connection, and a task, for
//! ever), a size checked on the declared length, and a cap on the bodies buffered at once.

use std::error::Error as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::BoxError;
use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// The most a request body may hold: axum's default, set on the router too, so that the early
/// check on `Content-Length` and axum's as the bytes come agree.
pub const LIMIT: usize = 2 << 20;

/// The most request bodies read at once: each is buffered whole (up to 2 MiB) before it is
/// used, so slow or stalled uploads hold at most 128 MiB between them, where 400 of them held
/// 842 MB. Others wait their turn.
pub const MAX_BODY_READS: usize = 64;

/// A body whose `Content-Length` is over [`LIMIT`].
#[derive(Debug, thiserror::Error)]
#[error("the request body is declared {0} bytes long, over 2 MiB")]
pub struct Declared(u64);

/// The longest body refused unread that is then read and dropped: a client that sends its body
/// without waiting for `100 Continue` is still writing it when the 413 comes, and if the server
/// closed at once, the client would fail on the write and never read the 413. Past this, it
/// would fail anyway: the connection closes at once.
const LINGER: u64 = 4 * LIMIT as u64;

/// A request body read within [`LIMIT`] and [`MAX_BODY_READS`]: one declared over the limit
/// fails at its first read (413 at once, where the server used to wait for the body, then
/// answer 408), and reading waits for one of `reads`' permits, held until the body ends.
///
/// The wait for a turn is the server's, not the client's: [`TimedBody`] inside starts its clock
/// only when the turn has come.
pub struct BoundedBody {
    inner: axum::body::Body,
    turn: Turn,
}

enum Turn {
    Idle(Arc<Semaphore>),
    Waiting(Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>),
    /// Reading, with the permit when it took one (an empty body takes none).
    Reading(Option<OwnedSemaphorePermit>),
    /// Refused unread for the length it declared.
    Refused(u64),
}

impl BoundedBody {
    pub fn new(inner: axum::body::Body, reads: Arc<Semaphore>) -> Self {
        BoundedBody {
            inner,
            turn: Turn::Idle(reads),
        }
    }
}

impl Body for BoundedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match &mut this.turn {
                Turn::Idle(reads) => {
                    let declared = this.inner.size_hint().lower();
                    if declared > LIMIT as u64 {
                        this.turn = Turn::Refused(declared);
                        return Poll::Ready(Some(Err(Declared(declared).into())));
                    }
                    this.turn = if this.inner.is_end_stream() {
                        Turn::Reading(None)
                    } else {
                        Turn::Waiting(Box::pin(reads.clone().acquire_owned()))
                    };
                }
                // The semaphore is never closed; if it were, it would bound nothing.
                Turn::Waiting(acquire) => {
                    this.turn = Turn::Reading(ready!(acquire.as_mut().poll(cx)).ok());
                }
                Turn::Reading(permit) => {
                    let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
                    // Whole or failed: the next body may be read.
                    if !matches!(frame, Some(Ok(_))) {
                        permit.take();
                    }
                    return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
                }
                Turn::Refused(declared) => {
                    return Poll::Ready(Some(Err(Declared(*declared).into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for BoundedBody {
    /// Reads and drops a body refused unread that the client may be sending anyway, up to
    /// [`LINGER`] bytes and within the body timeout, so that the client reads its 413. (One that
    /// asked with `Expect: 100-continue` is not told to continue once the 413 is answered.)
    fn drop(&mut self) {
        use futures_util::StreamExt as _;
        let Turn::Refused(declared) = self.turn else {
            return;
        };
        if declared > LINGER {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut body = std::mem::take(&mut self.inner).into_data_stream();
        runtime.spawn(async move { while let Some(Ok(_)) = body.next().await {} });
    }
}

/// The body did not arrive whole in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received whole within {0:?}")]
pub struct BodyTimeout(Duration);

/// A request body that fails with [`BodyTimeout`] once it has kept the server waiting for
/// `limit` in all. The clock starts at the first wait, not at the head, so that a delay fault
/// or a slow handler ahead of the read does not count against the client.
pub struct TimedBody<B> {
    inner: B,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        TimedBody {
            inner,
            limit,
            deadline: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(limit).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Marks every 408 `Connection: close`, as RFC 9110 (§15.5.9) asks: the connection closes after
/// it anyway (the body it timed out on was not read to its end, or a fault sent it), and the
/// header tells the client not to send its next request there.
pub async fn close_after_timeout(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        (response.headers_mut()).insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Why a body over [`LIMIT`] is refused, saying what to do: axum's own text ("length limit
/// exceeded") names neither the limit nor the way round it.
const TOO_LARGE: &str = "the request body is over 2 MiB; send it in several smaller requests";

/// The status and reason for a body that could not be read: 408 when it timed out (axum
/// would say 400), 413 over the size limit, declared or sent, otherwise axum's own.
pub fn rejection(e: &BytesRejection) -> (StatusCode, String) {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(timeout) = cause.downcast_ref::<BodyTimeout>() {
            return (StatusCode::REQUEST_TIMEOUT, timeout.to_string());
        }
        if let Some(declared) = cause.downcast_ref::<Declared>() {
            let reason = format!("{declared}; send it in several smaller requests");
            return (StatusCode::PAYLOAD_TOO_LARGE, reason);
        }
        source = cause.source();
    }
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE.to_owned()),
        status => (status, e.body_text()),
    }
}
