//! The quote server over TCP, with the client talking to it.

use std::time::Duration;

use engine::Money;
use quotes::server::{PriceMode, QuoteServerConfig};
use quotes::{LatencyProfile, QuoteError, fixed_price};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{RunningServer, quick_config, symbol, tcp_client, user};

/// Sends raw bytes, ends the request side, and reads all the server says
/// before it closes.
async fn exchange_raw(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 512];
    // A server that leaves part of an over-long request unread closes with
    // a reset, which may end the read with an error after its reply.
    while let Ok(read @ 1..) = stream.read(&mut chunk).await {
        reply.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(reply).unwrap()
}

#[tokio::test]
async fn serves_fixed_prices_over_tcp() {
    let server = RunningServer::start(QuoteServerConfig::default()).await;
    let client = tcp_client(&server.address, quick_config());
    for (text, cents) in [("ABC", 5263), ("XYZ", 5376), ("a", 1912)] {
        let fetched = client.fetch(symbol(text), &user("jsmith")).await.unwrap();
        assert_eq!(fetched.price, Money::from_cents(cents));
        assert_eq!(fetched.symbol, symbol(text));
        assert_eq!(fetched.user, "jsmith");
        assert_eq!(fetched.requests_sent, 1);
        assert_eq!(fetched.cryptokey.len(), 56);
        assert!(fetched.quote_server_time_ms > 1_700_000_000_000);
    }
    assert_eq!(server.core.replies_served(), 3);
    server.stop().await;
}

#[tokio::test]
async fn serves_many_connections_at_once() {
    let server = RunningServer::start(QuoteServerConfig {
        mode: PriceMode::Walk { seed: 1 },
        ..QuoteServerConfig::default()
    })
    .await;
    let client = tcp_client(&server.address, quick_config());
    let symbols = ["A", "B", "C", "D", "E"];
    let fetches = (0..50).map(|i| {
        let client = client.clone();
        let symbol = symbol(symbols[i % symbols.len()]);
        tokio::spawn(async move { client.fetch(symbol, &user(&format!("u{i}"))).await })
    });
    for fetch in fetches.collect::<Vec<_>>() {
        let fetched = fetch.await.unwrap().unwrap();
        assert_eq!(fetched.requests_sent, 1);
    }
    assert_eq!(server.core.replies_served(), 50);
    server.stop().await;
}

#[tokio::test]
async fn answers_a_malformed_request_with_one_error_line() {
    let server = RunningServer::start(QuoteServerConfig::default()).await;
    let long = vec![b'A'; 1000];
    for request in [
        &b"hello world\n"[..],
        b"ABCD,jsmith\n",
        b"ABC,js mith\r\n",
        b"ABC,\xff\xfe\n",
        b",\n",
        &long,
    ] {
        let reply = exchange_raw(&server.address, request).await;
        assert!(reply.starts_with("error: "), "{request:?} -> {reply:?}");
        assert!(
            reply.ends_with('\n') && reply.matches('\n').count() == 1,
            "{reply:?}"
        );
    }
    // A request without a line ending, then end of input, is still a request.
    let reply = exchange_raw(&server.address, b"abc,jsmith").await;
    assert!(reply.starts_with("52.63,ABC,jsmith,"), "{reply:?}");
    assert_eq!(server.core.replies_served(), 1);
    server.stop().await;
}

#[tokio::test]
async fn hangs_up_on_a_client_that_connects_and_goes() {
    let server = RunningServer::start(QuoteServerConfig::default()).await;
    drop(TcpStream::connect(&server.address).await.unwrap());
    // Still serving afterwards.
    let fetched = tcp_client(&server.address, quick_config())
        .fetch(symbol("S"), &user("u"))
        .await
        .unwrap();
    assert_eq!(fetched.price, fixed_price(symbol("S")));
    server.stop().await;
}

#[tokio::test]
async fn stops_accepting_on_shutdown_but_finishes_replies_in_progress() {
    // Legacy latency, so the reply is still being delayed when shutdown comes.
    let server = RunningServer::start(QuoteServerConfig {
        latency: LatencyProfile::Legacy,
        ..QuoteServerConfig::default()
    })
    .await;
    let address = server.address.clone();
    let core = std::sync::Arc::clone(&server.core);
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"ABC,jsmith\n").await.unwrap();
    // The server has priced the request once the counter moves; its reply
    // now waits out the latency.
    while core.replies_served() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("52.63,ABC,jsmith,"), "{reply:?}");
    let refused = tcp_client(
        &address,
        quotes::ClientConfig {
            attempts: 1,
            ..quick_config()
        },
    )
    .fetch(symbol("ABC"), &user("jsmith"))
    .await
    .unwrap_err();
    match refused {
        QuoteError::Unavailable { last, .. } => {
            assert!(matches!(*last, QuoteError::Connect(_)), "{last}")
        }
        other => panic!("{other}"),
    }
}
