//! The live desk: one trader in two browsers, each held by a different
//! instance, and pages that change without a reload.
//!
//! - The first browser goes through the balancer; the second is opened on
//!   instance web1 itself, and the command the first makes is made on
//!   web2 itself, so the event has to cross from one instance to another.
//! - A new price of a held symbol, fetched by the first browser, shows on
//!   the second's quote card.
//! - A pending buy left alone expires: both browsers (the second on its
//!   dashboard, the first on the trade page, through the balancer's
//!   long-lived stream) show the notification badge, the order gone and
//!   the cash back, while the trader does nothing.
//!
//! Each page is marked with a value in its window at the start of a step;
//! the value still being there at the end proves the page was updated in
//! place, not reloaded.

use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::infra::unique;
use crate::journey::{add_funds, dollars, place, price_cents, register, sign_in, typed, usd};

/// How long a price is fresh in the quote cache (SPEC: 60 s).
const QUOTE_LIFE: Duration = Duration::from_secs(60);
/// How long a pending order waits for its commit (SPEC: 60 s).
const ORDER_LIFE: Duration = Duration::from_secs(60);
/// Margin on both: a fetch after QUOTE_LIFE + MARGIN is a new one.
const MARGIN: Duration = Duration::from_secs(2);

/// The instances of the cluster, each on a port of its own (the base's
/// port + 1, + 2, ...; see scripts/cluster).
pub struct Instances {
    pub web1: String,
    pub web2: String,
}

pub async fn live(first: &Browser, instances: &Instances) {
    let user = unique("live_");
    let password = "correct horse battery";

    // The trader opens an account and buys ABC, through the balancer.
    register(first, &user, password).await;
    add_funds(first, usd(10000), usd(10000)).await;
    let abc = price_cents("ABC");
    let bought = place(first, "buy", "ABC", usd(1000)).await;
    // ABC's price was fetched by now: it is stale from QUOTE_LIFE later.
    let abc_fetched = Instant::now();
    first.click("#pending-buy button[value=commit]").await;
    first
        .wait_text(".alert-success", &format!("Bought {bought} ABC"))
        .await;
    let cash = usd(10000) - bought * abc;

    // The same trader in a second browser, served by web1 alone.
    let second = Browser::start("live-second", instances.web1.clone())
        .await
        .expect("a second browser starts where the first did");
    second.goto("/login").await;
    sign_in(&second, &user, password).await;
    second.wait_path("/").await;
    assert_eq!(second.instance().await, "web1");
    second.wait_text("#cash", &dollars(cash)).await;
    second.wait_text("#holdings", "ABC").await;
    mark(&second).await;

    // (c) A new price of ABC, fetched by the first browser once the old one
    // is stale, shows on the second's quote card. First, so that no pending
    // order can expire while the price grows stale.
    second.goto("/quote?symbol=ABC").await;
    let before = second.text("#quote").await;
    mark(&second).await;
    sleep_until(abc_fetched + QUOTE_LIFE + MARGIN).await;
    first.goto("/quote?symbol=ABC").await;
    first.wait_text("#quote-price", &dollars(abc)).await;
    let as_of = as_of(&first.text("#quote").await);
    assert!(
        !before.contains(&as_of),
        "a new price was fetched ({as_of}), not the one shown before: {before}"
    );
    second.wait_text("#quote", &as_of).await;
    assert_marked(&second, "a new price of a held symbol").await;
    second.shot("02-new-price").await;

    // (a) A buy placed on web2 shows on web1's page: its pending order, the
    // cash it holds back.
    second.goto("/").await;
    second.wait_text("#holdings", "ABC").await;
    mark(&second).await;
    let def = price_cents("DEF");
    let placed = Instant::now();
    first
        .driver()
        .goto(format!("{}/trade", instances.web2).as_str())
        .await
        .unwrap();
    assert_eq!(first.instance().await, "web2");
    let shares = place_here(first, "DEF", usd(500)).await;
    let held = shares * def;
    second.wait_text("#pending", &format!("{shares}")).await;
    second.wait_text("#pending", "DEF").await;
    second.wait_text("#cash", &dollars(cash - held)).await;
    second.wait_text("#reserved", &dollars(held)).await;
    assert_marked(&second, "a command made on another instance").await;
    second.shot("01-pending-arrived").await;

    // (b) The trader leaves the buy alone: it expires on time, and both
    // pages say so without a reload: the second's dashboard, the first's
    // trade page (through the balancer).
    second.goto("/").await;
    second.wait_text("#pending", "DEF").await;
    first.goto("/trade").await;
    first.wait_text("#pending-buy .order-shares", "DEF").await;
    for browser in [first, &second] {
        assert!(
            !browser.exists("[data-live=unread] .pill").await,
            "no notification yet"
        );
        mark(browser).await;
    }
    sleep_until(placed + ORDER_LIFE).await;
    for browser in [&second, first] {
        browser.wait_text("[data-live=unread] .pill", "1").await;
        browser.wait_text("#cash", &dollars(cash)).await;
    }
    second.wait_text("#pending", "Nothing is waiting").await;
    second.wait_text("#reserved", "$0.00").await;
    second.wait_text("main .feed", "Order expired").await;
    first.wait_text("#pending-buy", "No buy is waiting").await;
    for browser in [first, &second] {
        assert_marked(browser, "an order expiring while the trader waits").await;
    }
    second.shot("03-expired").await;
    first.shot("trade-expired").await;
}

/// Places a buy of `symbol` from the trade page the browser shows (on
/// whichever instance it was opened), and waits for it to be pending.
async fn place_here(browser: &Browser, symbol: &str, cents: i64) -> i64 {
    let shares = cents / price_cents(symbol);
    browser.send_order("buy", symbol, &typed(cents)).await;
    browser
        .wait_text("#pending-buy .order-shares", &format!("{shares} {symbol}"))
        .await;
    shares
}

/// The "as of" time a quote card shows.
fn as_of(card: &str) -> String {
    card.lines()
        .find_map(|line| line.strip_prefix("Price as of "))
        .unwrap_or_else(|| panic!("the quote card says when its price is from: {card}"))
        .to_owned()
}

async fn sleep_until(moment: Instant) {
    tokio::time::sleep_until(moment.into()).await;
}

/// Leaves a value in the page's window: a reload would lose it.
async fn mark(browser: &Browser) {
    browser.script("window.liveMark = 'still here';").await;
}

async fn assert_marked(browser: &Browser, what: &str) {
    let mark = browser
        .driver()
        .execute("return window.liveMark || null;", Vec::new())
        .await
        .and_then(|r| r.convert::<Option<String>>())
        .unwrap();
    assert_eq!(
        mark.as_deref(),
        Some("still here"),
        "the page was updated in place after {what}, not reloaded"
    );
}
