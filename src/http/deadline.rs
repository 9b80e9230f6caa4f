//! Every request is answered within `server.request_deadline_ms` (JM-5: within 5 s), whatever
//! the store or a peer does. The handler runs on the connection's own task under the deadline;
//! past it the client gets 503 with `Retry-After` in the endpoint's error format
//! ([`super::error::deadline_exceeded`]), and the unfinished work moves to a task of its own and
//! finishes in the background rather than being cut off between two writes.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use axum::http::Uri;
use axum::response::Response;

use super::AppState;
use super::context::RequestCtx;

/// A request's handling, boxed so that it can move to a task of its own mid-way.
pub type Work<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How a request's handling ended, when it did not answer in time.
#[derive(Debug)]
enum Fault {
    /// The handler panicked (a bug); the panic's message.
    Panicked(String),
    /// The deadline passed first; the work goes on in the background.
    Late,
}

/// A request's handling (`work`, the route's future) made ready to run under [`run`]: it keeps
/// the request's record `ctx` current (a task-local) and stays in `span` even when it moves to
/// a task of its own, so its errors still carry the id and its pages the platform's name. Boxed
/// here, where the route's future is made, so that it is not copied again on its way (issue 13:
/// each future it was wrapped in or moved into copied its few hundred bytes).
pub fn prepare<F>(ctx: RequestCtx, span: tracing::Span, work: F) -> Work<Response>
where
    F: Future<Output = Result<Response, Infallible>> + Send + 'static,
{
    let work = async move {
        match work.await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    };
    Box::pin(super::context::scope(ctx, tracing::Instrument::instrument(work, span)))
}

/// Runs the rest of the request (`work`, for `uri`, from [`prepare`]) under the deadline;
/// `span` and `ctx` are the request's, current on the answers made here. Called by the one
/// request middleware (`edge`).
pub async fn run(state: &AppState, ctx: RequestCtx, span: tracing::Span, uri: Uri, work: Work<Response>) -> Response {
    let limit = Duration::from_millis(state.config.server.request_deadline_ms);
    let fault = match within(limit, work).await {
        Ok(resp) => return resp,
        Err(fault) => fault,
    };
    let _entered = span.enter();
    let path = uri.path();
    let answer = match fault {
        Fault::Panicked(e) => {
            tracing::error!(error = %e, %path, "request handler failed");
            super::error::internal
        }
        Fault::Late => {
            tracing::warn!(%path, limit_ms = limit.as_millis() as u64, "request deadline passed; answered 503");
            super::error::deadline_exceeded
        }
    };
    super::context::sync_scope(ctx, || answer(path))
}

/// Polls `work` in place until it ends or `limit` passes. Issue 13: no task per request (a
/// spawn, a wake-up and a join on every request before); only work that outlives this call
/// gets a task of its own ([`Unfinished`]). A panic is caught here, as the join used to catch
/// it, so it answers 500 instead of dropping the connection.
async fn within<T: Send + 'static>(limit: Duration, work: Work<T>) -> Result<T, Fault> {
    let mut timer = std::pin::pin!(tokio::time::sleep(limit));
    let mut pending = Unfinished(Some(work));
    std::future::poll_fn(|cx| {
        let Some(w) = pending.0.as_mut() else {
            return Poll::Ready(Err(Fault::Panicked("polled after its end".into())));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| w.as_mut().poll(cx))) {
            Ok(Poll::Ready(r)) => {
                pending.0 = None;
                return Poll::Ready(Ok(r));
            }
            Ok(Poll::Pending) => {}
            Err(panic) => {
                pending.0 = None;
                return Poll::Ready(Err(Fault::Panicked(panic_text(panic.as_ref()))));
            }
        }
        timer.as_mut().poll(cx).map(|()| Err(Fault::Late))
    })
    .await
}

/// Work begun and not finished. Dropped (the deadline passed, or the connection went away and
/// took the request's future with it), it is spawned to finish on its own: a request's writes
/// are never cut off half-way by the caller leaving, as when every handler ran as its own task.
struct Unfinished<T: Send + 'static>(Option<Work<T>>);

impl<T: Send + 'static> Drop for Unfinished<T> {
    fn drop(&mut self) {
        if let (Some(rest), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(rest);
        }
    }
}

/// A panic's message, when it has one.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn work_that_ends_in_time_is_its_answer() {
        let r = within(LIMIT, Box::pin(async { 7 })).await;
        assert_eq!(r.ok(), Some(7));
        let r = within(
            LIMIT,
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                8
            }),
        )
        .await;
        assert_eq!(r.ok(), Some(8));
    }

    // JM-5: past the deadline the caller is answered at once, and the work is not cut off
    // between two writes: it finishes in the background.
    // (Paused time: the clock moves only from timer to timer, so the order is certain.)
    #[tokio::test(start_paused = true)]
    async fn late_work_is_answered_and_still_finishes() {
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
        let work = Box::pin(async move {
            tokio::time::sleep(LIMIT * 3).await;
            let _ = done_tx.send("written");
        });
        assert!(matches!(within(LIMIT, work).await, Err(Fault::Late)));
        assert!(done_rx.try_recv().is_err(), "answered before the work ended");
        assert_eq!(done_rx.await.ok(), Some("written"));
    }

    // A request whose caller goes away (the connection closes, the HTTP/2 stream is reset)
    // still finishes its work: it is not cut off between two writes.
    #[tokio::test(start_paused = true)]
    async fn work_outlives_a_caller_that_goes_away() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let work = Box::pin(async move {
            tokio::time::sleep(LIMIT / 2).await;
            let _ = done_tx.send("written");
        });
        tokio::select! {
            r = within(LIMIT, work) => unreachable!("{r:?}"),
            () = tokio::time::sleep(LIMIT / 10) => {}
        }
        assert_eq!(done_rx.await.ok(), Some("written"));
    }

    // A bug in a handler is a 500 for its request, not a dropped connection or a dead worker.
    #[tokio::test]
    #[allow(clippy::panic)]
    async fn a_panic_is_caught_with_its_message() {
        let work: Work<()> = Box::pin(async {
            tokio::task::yield_now().await;
            panic!("handler bug");
        });
        match within(LIMIT, work).await {
            Err(Fault::Panicked(m)) => assert_eq!(m, "handler bug"),
            other => unreachable!("{other:?}"),
        }
    }
}
