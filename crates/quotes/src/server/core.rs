//! The server's logic, free of sockets: request text in, reply line and
//! delay out. The TCP server and the client's in-process source both run it,
//! so the two paths differ only in transport.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use engine::{Money, Symbol};

use super::fault::Fault;
use crate::clock::wall_clock_ms;
use crate::price::{RandomWalk, fixed_price};
use crate::prng::Prng;
use crate::protocol::{QuoteReply, parse_request};
use crate::{LatencyProfile, lock};

/// How the server prices a symbol.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum PriceMode {
    /// [`fixed_price`]: never changes, so runs are reproducible.
    #[default]
    Fixed,
    /// A [`RandomWalk`] per symbol, one step per quote served.
    Walk { seed: u64 },
}

#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct QuoteServerConfig {
    pub mode: PriceMode,
    pub latency: LatencyProfile,
    /// The probability, from 0 to 1, that a reply is faulty (garbage, or no
    /// reply at all), as the legacy server's sometimes were.
    pub fault_rate: f64,
    /// Seeds the latency, fault and cryptokey draws.
    pub seed: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, thiserror::Error)]
#[error("the quote server's fault rate must be between 0 and 1, not {0}")]
pub struct InvalidFaultRate(pub f64);

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// How long to wait before replying (or hanging up).
    pub delay: Duration,
    /// The reply line, line ending included; `None` means hang up without a
    /// reply (one of the faults).
    pub reply: Option<String>,
}

/// The quote server, minus the network.
#[derive(Debug)]
pub struct QuoteServerCore {
    latency: LatencyProfile,
    fault_rate: f64,
    prices: Prices,
    /// One generator for latency, faults and keys. Requests race for it, so
    /// which request gets which draw is not reproducible under concurrency;
    /// prices, which must be, have generators of their own.
    prng: Mutex<Prng>,
    replies_served: AtomicU64,
}

#[derive(Debug)]
enum Prices {
    Fixed,
    Walk {
        seed: u64,
        walks: Mutex<HashMap<Symbol, RandomWalk>>,
    },
}

impl Prices {
    fn next(&self, symbol: Symbol) -> Money {
        match self {
            Prices::Fixed => fixed_price(symbol),
            Prices::Walk { seed, walks } => lock(walks)
                .entry(symbol)
                .or_insert_with(|| RandomWalk::new(*seed, symbol))
                .next_price(),
        }
    }
}

/// 40 random bytes: 56 base64 characters ending in `==`, the shape of the
/// legacy server's keys.
const CRYPTOKEY_BYTES: usize = 40;

impl QuoteServerCore {
    pub fn new(config: QuoteServerConfig) -> Result<QuoteServerCore, InvalidFaultRate> {
        if !(0.0..=1.0).contains(&config.fault_rate) {
            return Err(InvalidFaultRate(config.fault_rate));
        }
        let prices = match config.mode {
            PriceMode::Fixed => Prices::Fixed,
            PriceMode::Walk { seed } => Prices::Walk {
                seed,
                walks: Mutex::new(HashMap::new()),
            },
        };
        Ok(QuoteServerCore {
            latency: config.latency,
            fault_rate: config.fault_rate,
            prices,
            prng: Mutex::new(Prng::seed_from(config.seed)),
            replies_served: AtomicU64::new(0),
        })
    }

    /// Answers one raw request line. A request that is not `SYMBOL,userid`
    /// gets an `error:` line at once; any other gets a quote (or, at the
    /// fault rate, garbage) after the latency profile's delay.
    pub fn respond(&self, request: &str) -> Response {
        let (symbol, user) = match parse_request(request) {
            Ok(parsed) => parsed,
            Err(why) => {
                return Response {
                    delay: Duration::ZERO,
                    reply: Some(format!("error: {why}\n")),
                };
            }
        };
        // Every well-formed request moves the walk, faulty reply or not, so
        // a symbol's prices depend only on how often it was asked for.
        let price = self.prices.next(symbol);
        let (delay, fault, cryptokey) = {
            let mut prng = lock(&self.prng);
            let delay = self.latency.sample(&mut prng);
            let fault = (prng.unit() < self.fault_rate).then(|| Fault::pick(&mut prng));
            let mut key = [0u8; CRYPTOKEY_BYTES];
            prng.fill(&mut key);
            (delay, fault, BASE64.encode(key))
        };
        let quote = QuoteReply {
            price,
            symbol,
            user: user.to_string(),
            timestamp_ms: wall_clock_ms(),
            cryptokey,
        };
        let reply = match fault {
            None => Some(quote.to_line()),
            Some(fault) => fault.corrupt(&quote),
        };
        if reply.is_some() {
            self.replies_served.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("quote_server_replies_total").increment(1);
        }
        Response { delay, reply }
    }

    /// Quote replies produced so far, faulty ones included (they cost the
    /// client as much); `error:` replies and hang-ups are not counted.
    pub fn replies_served(&self) -> u64 {
        self.replies_served.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QuoteError;
    use crate::protocol::parse_reply;

    fn core(config: QuoteServerConfig) -> QuoteServerCore {
        QuoteServerCore::new(config).unwrap()
    }

    fn abc() -> Symbol {
        Symbol::parse("ABC").unwrap()
    }

    #[test]
    fn serves_fixed_prices_that_pass_validation() {
        let server = core(QuoteServerConfig::default());
        for _ in 0..3 {
            let response = server.respond("abc,jsmith\n");
            assert_eq!(response.delay, Duration::ZERO);
            let reply = parse_reply(&response.reply.unwrap(), abc(), "jsmith").unwrap();
            assert_eq!(reply.price, Money::from_cents(5263));
            assert_eq!(reply.cryptokey.len(), 56);
            assert!(reply.cryptokey.ends_with("=="), "{}", reply.cryptokey);
            assert!((wall_clock_ms() - reply.timestamp_ms).abs() < 60_000);
        }
        assert_eq!(server.replies_served(), 3);
    }

    #[test]
    fn keys_differ_between_replies() {
        let server = core(QuoteServerConfig::default());
        let key = |r: Response| {
            parse_reply(&r.reply.unwrap(), abc(), "u")
                .unwrap()
                .cryptokey
        };
        assert_ne!(key(server.respond("ABC,u")), key(server.respond("ABC,u")));
    }

    #[test]
    fn refuses_malformed_requests_with_an_error_line() {
        let server = core(QuoteServerConfig::default());
        for request in [
            "",
            "\n",
            "ABC",
            "ABCD,u",
            "ABC,",
            "ABC,a b",
            "ABC,u,extra",
            "\u{fffd},u",
        ] {
            let response = server.respond(request);
            let reply = response.reply.unwrap();
            assert!(
                reply.starts_with("error: ") && reply.ends_with('\n'),
                "{request:?}: {reply:?}"
            );
            assert_eq!(reply.matches('\n').count(), 1);
        }
        assert_eq!(server.replies_served(), 0);
    }

    #[test]
    fn walks_per_symbol_from_the_fixed_price() {
        let config = QuoteServerConfig {
            mode: PriceMode::Walk { seed: 9 },
            ..QuoteServerConfig::default()
        };
        let prices = |server: &QuoteServerCore, request: &str, n: usize| -> Vec<Money> {
            (0..n)
                .map(|_| {
                    let (symbol, user) = parse_request(request).unwrap();
                    parse_reply(
                        &server.respond(request).reply.unwrap(),
                        symbol,
                        user.as_str(),
                    )
                    .unwrap()
                    .price
                })
                .collect()
        };
        let server = core(config);
        let abc = prices(&server, "ABC,u", 20);
        assert_eq!(abc[0], fixed_price(self::abc()));
        assert!(abc.windows(2).all(|w| w[0] != w[1]), "{abc:?}");
        // Another server with the same seed, with other symbols interleaved,
        // quotes ABC the same way.
        let other = core(config);
        prices(&other, "XYZ,v", 7);
        assert_eq!(prices(&other, "ABC,w", 20), abc);
    }

    #[test]
    fn latency_follows_the_profile() {
        let server = core(QuoteServerConfig {
            latency: LatencyProfile::Legacy,
            ..QuoteServerConfig::default()
        });
        let delays: Vec<Duration> = (0..50).map(|_| server.respond("ABC,u").delay).collect();
        assert!(
            delays
                .iter()
                .all(|d| (Duration::from_millis(10)..=Duration::from_secs(4)).contains(d))
        );
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn a_fault_rate_of_one_gives_every_kind_of_garbage() {
        let server = core(QuoteServerConfig {
            fault_rate: 1.0,
            seed: 5,
            ..QuoteServerConfig::default()
        });
        let (mut garbage, mut wrong_symbol, mut wrong_user, mut hangups) = (0, 0, 0, 0);
        for _ in 0..600 {
            match server.respond("ABC,jsmith\n").reply {
                None => hangups += 1,
                Some(line) => match parse_reply(&line, abc(), "jsmith") {
                    Err(QuoteError::Garbage { .. }) => garbage += 1,
                    Err(QuoteError::WrongSymbol { .. }) => wrong_symbol += 1,
                    Err(QuoteError::WrongUser { .. }) => wrong_user += 1,
                    other => panic!("a fault passed validation: {line:?} -> {other:?}"),
                },
            }
        }
        // Six kinds, three of them garbage, each about 100 times in 600.
        assert!((200..400).contains(&garbage), "{garbage}");
        for count in [wrong_symbol, wrong_user, hangups] {
            assert!((50..150).contains(&count), "{count}");
        }
        assert_eq!(server.replies_served(), 600 - hangups);
    }

    #[test]
    fn a_fault_rate_of_zero_never_faults() {
        let server = core(QuoteServerConfig::default());
        for _ in 0..1000 {
            assert!(parse_reply(&server.respond("ABC,u").reply.unwrap(), abc(), "u").is_ok());
        }
    }

    #[test]
    fn refuses_fault_rates_outside_zero_to_one() {
        for rate in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
            let config = QuoteServerConfig {
                fault_rate: rate,
                ..QuoteServerConfig::default()
            };
            assert!(QuoteServerCore::new(config).is_err(), "{rate}");
        }
    }
}
