//! The quote client: bounded waiting, retries and hedged requests around a
//! server that can be slow and can send garbage.

use std::pin::pin;
use std::time::Duration;

use engine::{Money, Symbol, UserId};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::protocol::{QuoteReply, parse_reply, request_line};
use crate::{QuoteError, QuoteSource};

/// What each request to the quote service costs the business.
pub const COST_PER_REQUEST_CENTS: u64 = 5;

/// How long the client waits, and how often it tries again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// One request's limit, connect and reply together. The legacy server's
    /// slowest replies take about 4 s, so 4.5 s gives up only on a request
    /// that is not coming.
    pub attempt_timeout: Duration,
    /// Attempts before giving up; at least one is always made. An attempt
    /// fails on a timeout, a connection error or an invalid reply.
    pub attempts: u32,
    /// The pause before the next attempt, so that a server that refuses
    /// connections is not hammered.
    pub backoff: Duration,
    /// The whole fetch's limit, retries included: a command waits at most
    /// this long for a price.
    pub deadline: Duration,
    /// If an attempt has no valid reply this long after it started, a second
    /// request is sent alongside and the first valid reply of the two wins.
    /// `None` never hedges.
    pub hedge_after: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            attempt_timeout: Duration::from_millis(4500),
            attempts: 3,
            backoff: Duration::from_millis(100),
            deadline: Duration::from_secs(10),
            // Just past the legacy server's mean of ~560 ms. About 29% of its
            // replies are slower (see `LatencyProfile::Legacy`), so hedging
            // there costs ~29% more requests (5 cents each) but turns a
            // reply that would have taken up to 4 s into the faster of two;
            // with a 60 s cache per symbol, fetches are rare enough that the
            // shorter tail is worth it.
            hedge_after: Some(Duration::from_millis(600)),
        }
    }
}

/// A quote actually fetched from the quote service: what the audit log's
/// `quoteServer` entry records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub price: Money,
    pub symbol: Symbol,
    pub user: String,
    /// The quote server's own timestamp of the quote (Unix ms).
    pub quote_server_time_ms: i64,
    pub cryptokey: String,
    /// How long the whole fetch took, retries included.
    pub latency: Duration,
    /// Requests sent for this quote, hedges and retries included: each one
    /// costs [`COST_PER_REQUEST_CENTS`].
    pub requests_sent: u32,
}

/// Fetches quotes from a [`QuoteSource`].
#[derive(Clone, Debug)]
pub struct QuoteClient {
    source: QuoteSource,
    config: ClientConfig,
}

impl QuoteClient {
    pub fn new(source: QuoteSource, config: ClientConfig) -> QuoteClient {
        QuoteClient { source, config }
    }

    /// How long it waits: a shared cache sizes its fetch locks from the
    /// deadline.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Fetches a validated quote, within the configured deadline. When every
    /// attempt has failed, or the deadline has passed, the error is
    /// [`QuoteError::Unavailable`] carrying the last failure.
    pub async fn fetch(&self, symbol: Symbol, user: &UserId) -> Result<Fetched, QuoteError> {
        let started = Instant::now();
        let mut requests_sent = 0;
        let outcome = self
            .attempts(symbol, user, started, &mut requests_sent)
            .await;
        let latency = started.elapsed();
        metrics::histogram!("quote_fetch_seconds").record(latency.as_secs_f64());
        match outcome {
            Ok(reply) => Ok(Fetched {
                price: reply.price,
                symbol: reply.symbol,
                user: reply.user,
                quote_server_time_ms: reply.timestamp_ms,
                cryptokey: reply.cryptokey,
                latency,
                requests_sent,
            }),
            Err((attempts, last)) => {
                let error = QuoteError::Unavailable {
                    attempts,
                    requests_sent,
                    last: Box::new(last),
                };
                metrics::counter!("quote_request_errors_total", "reason" => error.reason())
                    .increment(1);
                tracing::warn!(%symbol, %error, "quote fetch failed");
                Err(error)
            }
        }
    }

    /// Attempt after attempt until one succeeds, the attempts run out or the
    /// deadline passes; on failure, how many attempts were made and the last
    /// error.
    async fn attempts(
        &self,
        symbol: Symbol,
        user: &UserId,
        started: Instant,
        requests_sent: &mut u32,
    ) -> Result<QuoteReply, (u32, QuoteError)> {
        let deadline = started + self.config.deadline;
        let request = request_line(symbol, user);
        let mut attempt = 1;
        loop {
            let error = match self
                .attempt(&request, symbol, user, deadline, requests_sent)
                .await
            {
                Ok(reply) => return Ok(reply),
                Err(error) => error,
            };
            let resume = Instant::now() + self.config.backoff;
            if attempt >= self.config.attempts || resume >= deadline {
                return Err((attempt, error));
            }
            sleep_until(resume).await;
            attempt += 1;
        }
    }

    /// One attempt: a request, plus a hedge if the request is slow. It fails
    /// only when every request it sent has failed.
    async fn attempt(
        &self,
        request: &str,
        symbol: Symbol,
        user: &UserId,
        deadline: Instant,
        requests_sent: &mut u32,
    ) -> Result<QuoteReply, QuoteError> {
        let mut in_flight = FuturesUnordered::new();
        in_flight.push(self.request(request, symbol, user, deadline));
        count_request(requests_sent);
        let hedge_at = self.config.hedge_after.map(|delay| Instant::now() + delay);
        let mut hedge = pin!(sleep_until(hedge_at.unwrap_or(deadline)));
        let mut hedged = hedge_at.is_none();
        loop {
            tokio::select! {
                Some(outcome) = in_flight.next() => match outcome {
                    Ok(reply) => return Ok(reply),
                    // The other request may still bring a valid reply.
                    Err(_) if !in_flight.is_empty() => {}
                    Err(error) => return Err(error),
                },
                () = &mut hedge, if !hedged => {
                    hedged = true;
                    in_flight.push(self.request(request, symbol, user, deadline));
                    count_request(requests_sent);
                }
            }
        }
    }

    /// One request, validated, within the per-attempt timeout (cut short by
    /// the fetch's deadline).
    async fn request(
        &self,
        request: &str,
        symbol: Symbol,
        user: &UserId,
        deadline: Instant,
    ) -> Result<QuoteReply, QuoteError> {
        let sent_at = Instant::now();
        let give_up = deadline.min(sent_at + self.config.attempt_timeout);
        let outcome = match timeout_at(give_up, self.source.exchange(request)).await {
            Ok(exchanged) => exchanged.and_then(|line| parse_reply(&line, symbol, user.as_str())),
            Err(_) => Err(QuoteError::Timeout(
                give_up.saturating_duration_since(sent_at),
            )),
        };
        if let Err(error) = &outcome {
            metrics::counter!("quote_request_errors_total", "reason" => error.reason())
                .increment(1);
            tracing::debug!(%symbol, %error, "quote request failed");
        }
        outcome
    }
}

/// Counted when a request is sent, whatever becomes of it: a request the
/// hedge made redundant was paid for all the same.
fn count_request(requests_sent: &mut u32) {
    *requests_sent += 1;
    metrics::counter!("quote_requests_total").increment(1);
    metrics::counter!("quote_cost_cents_total").increment(COST_PER_REQUEST_CENTS);
}
