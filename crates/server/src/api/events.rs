//! `GET /api/v1/users/{user}/events`: a user's live events as Server-Sent
//! Events (SPEC 4b). What is published is decided in
//! `crate::service::events`; the bus that carries it between instances is
//! [`cache::EventBus`]. This serves one stream:
//!
//! - it starts with a `retry:` hint, then the events the client missed
//!   when it sent a `Last-Event-ID` the user's ring still covers;
//! - each user event carries its id (`epoch.n`); quote events carry none
//!   (a price is a latest value), and only the symbols the user holds or
//!   has triggers on pass, re-read after each of the user's events;
//! - a comment line goes out when the stream has been idle for the
//!   keep-alive interval, which keeps it open through balancers;
//! - it ends when the instance stops, or when the client fell so far
//!   behind that its queue filled (it reconnects and resumes).
//!
//! A client must read the state afresh (the summary, the notifications) on
//! every (re)connect: a `Last-Event-ID` older than the ring, or from before
//! the ring was made anew, replays nothing.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cache::{BusError, BusEvent, EventId, Resume, Subscription};
use engine::{Symbol, UserId};
use store::Reads;

use crate::api::users::{permitted_user, unknown_user};
use crate::auth::TokenOrSession;
use crate::error::ApiError;
use crate::service::events::watched_symbols;
use crate::state::AppState;

/// How long a browser waits before reconnecting a dropped stream.
const RETRY: Duration = Duration::from_secs(2);

pub async fn stream(
    State(state): State<AppState>,
    TokenOrSession(principal): TokenOrSession,
    user: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = permitted_user(&principal, user)?;
    let Some(loaded) = state.trading.reader().account(&user).await? else {
        return Err(unknown_user(&user));
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(EventId::parse);
    let subscription = state
        .trading
        .events()
        .bus()
        .subscribe(user.as_str(), last_seen)
        .await
        .map_err(refused)?;
    let live = Live {
        state: state.clone(),
        symbols: watched_symbols(&loaded.account),
        user,
        last_seen,
        replay: Vec::new(),
        subscription,
    };
    let events = futures::stream::unfold(live.start(), |mut live| async move {
        live.next()
            .await
            .map(|event| (Ok::<_, Infallible>(event), live))
    });
    let keepalive = KeepAlive::new()
        .interval(state.events.keepalive)
        .text("keepalive");
    let mut response = Sse::new(events).keep_alive(keepalive).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx: pass each event on at once rather than buffer the stream.
    response_headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn refused(error: BusError) -> ApiError {
    match error {
        BusError::UserLimit(_) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("{error}: close one (another tab?) first."),
        ),
        BusError::ServerLimit(_) => {
            ApiError::unavailable("too_many_streams", format!("{error}; try again later."))
        }
        BusError::Cache(cache) => ApiError::unavailable(
            "events_unavailable",
            format!("Live events are not available right now ({cache}); try again later."),
        ),
    }
}

/// One stream's state between events.
struct Live {
    state: AppState,
    user: UserId,
    /// The symbols whose quote events pass.
    symbols: BTreeSet<Symbol>,
    /// The newest user event sent: anything not newer is skipped (it may
    /// come both from the ring and from the bus).
    last_seen: Option<EventId>,
    /// Events to send before anything else, newest last.
    replay: Vec<Event>,
    subscription: Subscription,
}

impl Live {
    /// Queues the `retry:` hint and what the ring replays.
    fn start(mut self) -> Live {
        let mut first = vec![Event::default().retry(RETRY)];
        match std::mem::replace(&mut self.subscription.resume, Resume::Fresh) {
            Resume::Replay(missed) => {
                for event in missed {
                    if let Some(sse) = self.accept(event) {
                        first.push(sse);
                    }
                }
            }
            // The client's id means nothing to this ring: every event is new.
            Resume::Gap => self.last_seen = None,
            Resume::Fresh => {}
        }
        first.reverse();
        self.replay = first;
        self
    }

    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.replay.pop() {
            return Some(event);
        }
        let shutdown = self.state.shutdown.clone();
        loop {
            tokio::select! {
                () = shutdown.wait() => return None,
                event = self.subscription.events.recv() => {
                    let event = event?;
                    if let Some(sse) = self.accept(event) {
                        self.refresh_symbols().await;
                        return Some(sse);
                    }
                }
                quote = self.subscription.quotes.recv() => match quote {
                    Ok(quote) => {
                        let wanted = Symbol::parse(&quote.symbol)
                            .is_ok_and(|symbol| self.symbols.contains(&symbol));
                        if wanted {
                            return Some(Event::default().data(&*quote.data));
                        }
                    }
                    // Prices are latest values: skip to the newest.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    /// `event` as sent, unless it was sent already.
    fn accept(&mut self, event: BusEvent) -> Option<Event> {
        if self
            .last_seen
            .is_some_and(|last| last.epoch == event.id.epoch && event.id.n <= last.n)
        {
            return None;
        }
        self.last_seen = Some(event.id);
        Some(Event::default().id(event.id.to_string()).data(&*event.data))
    }

    /// The user's account changed: the symbols they hold or have triggers
    /// on may have too.
    async fn refresh_symbols(&mut self) {
        match self.state.trading.reader().account(&self.user).await {
            Ok(Some(loaded)) => self.symbols = watched_symbols(&loaded.account),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(%error, "could not re-read the symbols a stream watches");
            }
        }
    }
}
