//! The client's bounded waiting: timeouts, retries, the deadline, hedging.

use std::time::Duration;

use engine::Money;
use quotes::server::QuoteServerConfig;
use quotes::{ClientConfig, Fetched, LatencyProfile, QuoteError, fixed_price};
use tokio::net::TcpListener;

use crate::helpers::{
    Act, RunningServer, Scripted, after, builtin, builtin_client, now, quick_config, symbol,
    tcp_client, user,
};

fn unavailable(error: QuoteError) -> (u32, u32, QuoteError) {
    match error {
        QuoteError::Unavailable {
            attempts,
            requests_sent,
            last,
        } => (attempts, requests_sent, *last),
        other => panic!("expected Unavailable, got {other}"),
    }
}

const GARBAGE: &str = "N/A,ABC,jsmith,1330546050315,key==\n";

#[tokio::test]
async fn gives_up_on_a_server_that_never_answers() {
    let server = Scripted::start(vec![now(Act::Stall)]).await;
    let config = ClientConfig {
        attempt_timeout: Duration::from_millis(100),
        attempts: 2,
        ..quick_config()
    };
    let error = fetch_abc(&server.address, config).await.unwrap_err();
    let (attempts, requests_sent, last) = unavailable(error);
    assert_eq!((attempts, requests_sent), (2, 2));
    assert!(
        matches!(last, QuoteError::Timeout(waited) if waited == Duration::from_millis(100)),
        "{last}"
    );
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn the_deadline_cuts_an_attempt_and_the_retries_short() {
    let server = Scripted::start(vec![now(Act::Stall)]).await;
    let config = ClientConfig {
        attempt_timeout: Duration::from_secs(60),
        attempts: 3,
        deadline: Duration::from_millis(200),
        ..quick_config()
    };
    let error = fetch_abc(&server.address, config).await.unwrap_err();
    let (attempts, requests_sent, last) = unavailable(error);
    assert_eq!((attempts, requests_sent), (1, 1));
    assert!(
        matches!(last, QuoteError::Timeout(waited) if waited <= Duration::from_millis(200)),
        "{last}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let error = fetch_abc(&address, quick_config()).await.unwrap_err();
    let message = error.to_string();
    let (attempts, requests_sent, last) = unavailable(error);
    assert_eq!((attempts, requests_sent), (3, 3));
    assert!(matches!(last, QuoteError::Connect(_)), "{last}");
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn always_faulty_is_unavailable_after_every_attempt() {
    let server = RunningServer::start(QuoteServerConfig {
        fault_rate: 1.0,
        ..QuoteServerConfig::default()
    })
    .await;
    let error = fetch_abc(&server.address, quick_config())
        .await
        .unwrap_err();
    let (attempts, requests_sent, last) = unavailable(error);
    assert_eq!((attempts, requests_sent), (3, 3));
    assert!(
        matches!(
            last,
            QuoteError::Garbage { .. }
                | QuoteError::WrongSymbol { .. }
                | QuoteError::WrongUser { .. }
                | QuoteError::Closed
        ),
        "{last}"
    );
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_builtin_source_validates_and_retries_like_tcp() {
    let core = builtin(QuoteServerConfig {
        fault_rate: 1.0,
        seed: 11,
        ..QuoteServerConfig::default()
    });
    let client = builtin_client(
        &core,
        ClientConfig {
            attempts: 4,
            ..quick_config()
        },
    );
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let (attempts, requests_sent, last) = unavailable(
            client
                .fetch(symbol("ABC"), &user("jsmith"))
                .await
                .unwrap_err(),
        );
        assert_eq!((attempts, requests_sent), (4, 4));
        kinds.insert(last.reason());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["closed", "garbage", "wrong_symbol", "wrong_user"]
    );
}

#[tokio::test]
async fn garbage_then_a_good_reply_succeeds_with_two_requests() {
    let server = Scripted::start(vec![now(Act::Send(GARBAGE.into())), now(Act::Quote)]).await;
    let fetched = fetch_abc(&server.address, quick_config()).await.unwrap();
    assert_eq!(fetched.price, Money::from_cents(5263));
    assert_eq!(fetched.requests_sent, 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_wrong_echo_or_a_hang_up_is_retried_too() {
    for bad in [
        "58.17,XYZ,jsmith,1330546050315,key==\n",
        "58.17,ABC,someone,1330546050315,key==\n",
        "",
    ] {
        let server = Scripted::start(vec![now(Act::Send(bad.into())), now(Act::Quote)]).await;
        let fetched = fetch_abc(&server.address, quick_config()).await.unwrap();
        assert_eq!(
            (fetched.price, fetched.requests_sent),
            (Money::from_cents(5263), 2),
            "{bad:?}"
        );
    }
}

/// One attempt only, so nothing but the hedge can bring the price.
fn hedging_config() -> ClientConfig {
    ClientConfig {
        attempt_timeout: Duration::from_secs(30),
        attempts: 1,
        deadline: Duration::from_secs(30),
        hedge_after: Some(Duration::from_millis(50)),
        ..quick_config()
    }
}

#[tokio::test]
async fn a_hedge_wins_when_the_first_request_stalls() {
    let server = Scripted::start(vec![now(Act::Stall), now(Act::Quote)]).await;
    let fetched = fetch_abc(&server.address, hedging_config()).await.unwrap();
    assert_eq!(fetched.price, Money::from_cents(5263));
    assert_eq!(fetched.requests_sent, 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn the_first_valid_reply_wins_not_the_first_reply() {
    // The hedge goes out at 50 ms; the first request's garbage arrives at
    // 500 ms, while the hedge is still out (its reply comes at ~850 ms). The
    // margins are wide so that a busy machine cannot reorder them.
    let server = Scripted::start(vec![
        after(500, Act::Send(GARBAGE.into())),
        after(800, Act::Quote),
    ])
    .await;
    let fetched = fetch_abc(&server.address, hedging_config()).await.unwrap();
    assert_eq!(
        (fetched.price, fetched.requests_sent),
        (Money::from_cents(5263), 2)
    );
}

#[tokio::test]
async fn an_attempt_fails_when_both_its_requests_fail() {
    // Garbage well after the hedge has gone out at 50 ms.
    let server = Scripted::start(vec![after(500, Act::Send(GARBAGE.into()))]).await;
    let (attempts, requests_sent, last) = unavailable(
        fetch_abc(&server.address, hedging_config())
            .await
            .unwrap_err(),
    );
    assert_eq!((attempts, requests_sent), (1, 2));
    assert!(matches!(last, QuoteError::Garbage { .. }), "{last}");
}

#[tokio::test(start_paused = true)]
async fn a_quick_reply_is_not_hedged() {
    let core = builtin(QuoteServerConfig::default());
    let fetched = builtin_client(&core, ClientConfig::default())
        .fetch(symbol("ABC"), &user("jsmith"))
        .await
        .unwrap();
    assert_eq!((fetched.requests_sent, core.replies_served()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn slow_legacy_replies_are_hedged_at_600_ms() {
    // Paused time: the latency draws are slept in virtual time, instantly.
    let core = builtin(QuoteServerConfig {
        latency: LatencyProfile::Legacy,
        seed: 3,
        ..QuoteServerConfig::default()
    });
    let client = builtin_client(&core, ClientConfig::default());
    let (mut hedged, fetches) = (0, 200);
    for _ in 0..fetches {
        let fetched = client.fetch(symbol("ABC"), &user("jsmith")).await.unwrap();
        assert_eq!(fetched.price, fixed_price(symbol("ABC")));
        match fetched.requests_sent {
            1 => assert!(fetched.latency < Duration::from_millis(600), "{fetched:?}"),
            2 => hedged += 1,
            _ => panic!("{fetched:?}"),
        }
    }
    // About 29% of legacy replies take longer than 600 ms.
    assert!((30..90).contains(&hedged), "{hedged} of {fetches} hedged");
}

/// `ABC` for `jsmith` from the quote server at `address`.
async fn fetch_abc(address: &str, config: ClientConfig) -> Result<Fetched, QuoteError> {
    tcp_client(address, config)
        .fetch(symbol("ABC"), &user("jsmith"))
        .await
}
