//! A deadline for a whole request body.
//!
//! The HTTP layer bounds how long a client may take to send a request's
//! head, and [`crate::app::BODY_READ_TIMEOUT`] how long its body may go
//! without a byte arriving; neither bounds a body trickled a byte at a
//! time, just fast enough, which would hold a connection (and a task) for
//! as long as its client likes. This bounds the whole of it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Sleep;

/// A body that fails once `deadline` has passed since it was made (when
/// the request's head had arrived) and it is still not read to its end.
pub struct DeadlineBody {
    inner: Body,
    deadline: Duration,
    expires: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    pub fn new(deadline: Duration, inner: Body) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline,
            expires: Box::pin(tokio::time::sleep(deadline)),
        }
    }
}

/// The error a body read past its deadline ends with.
#[derive(Debug, thiserror::Error)]
#[error("the body took longer than {0:?} to arrive")]
pub struct BodyDeadlineExceeded(Duration);

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyDeadlineExceeded(
                this.deadline,
            )))));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(body: DeadlineBody) -> Result<Bytes, axum::Error> {
        axum::body::to_bytes(Body::new(body), usize::MAX).await
    }

    #[tokio::test]
    async fn a_body_still_arriving_at_its_deadline_fails() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let trickled = Body::from_stream(tokio_stream_of(receiver));
        let body = DeadlineBody::new(Duration::from_millis(200), trickled);
        let writer = tokio::spawn(async move {
            // A byte every 50 ms: never idle for long, done only after 5 s.
            for _ in 0..100 {
                if sender.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let error = read(body).await.expect_err("cut off");
        assert!(error.to_string().contains("longer than 200ms"), "{error}");
        writer.abort();

        let whole = DeadlineBody::new(Duration::from_secs(10), Body::from("quick"));
        assert_eq!(read(whole).await.unwrap(), "quick");
    }

    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
