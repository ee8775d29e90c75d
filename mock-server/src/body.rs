//! A deadline on request bodies: hyper's header read timeout ends at the request head, so a
//! client that sent a head and then stalled mid-body held its connection (and a task) for ever.

use std::error::Error as _;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

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

/// Why a body over axum's default limit (2 MiB) is refused, saying what to do: axum's own text
/// ("length limit exceeded") names neither the limit nor the way round it.
const TOO_LARGE: &str = "the request body is over 2 MiB; send it in several smaller requests";

/// The status and reason for a body that could not be read: 408 when it timed out (axum
/// would say 400), 413 over the size limit, otherwise axum's own.
pub fn rejection(e: &BytesRejection) -> (StatusCode, String) {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(timeout) = cause.downcast_ref::<BodyTimeout>() {
            return (StatusCode::REQUEST_TIMEOUT, timeout.to_string());
        }
        source = cause.source();
    }
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE.to_owned()),
        status => (status, e.body_text()),
    }
}
