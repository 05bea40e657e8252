//! A trader's whole day through the balancer: open an account, sign out
//! and in, add funds, look up a quote, buy and commit, buy and cancel,
//! sell and commit, set and cancel a trigger, arm one that fires at once
//! and read its notification, read the history, download the audit log,
//! sign out.

use std::collections::BTreeSet;

use crate::browser::Browser;
use crate::helpers::{Http, assert_valid_log};
use crate::infra::unique;

/// The cluster's quote server prices in `fixed` mode:
/// 100 + (fnv1a_32(symbol) mod 9900) cents, for ever.
pub fn price_cents(symbol: &str) -> i64 {
    100 + i64::from(quotes::fnv1a_32(symbol.as_bytes()) % 9900)
}

/// Whole dollars, in cents.
pub const fn usd(dollars: i64) -> i64 {
    dollars * 100
}

/// Cents as the pages show them: `$1,234.56`.
pub fn dollars(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}

/// `$1234.56` without the sign or grouping, as typed into a form.
pub fn typed(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Opens an account from the register page; the browser is then signed
/// in, on the dashboard.
pub async fn register(browser: &Browser, user: &str, password: &str) {
    browser.goto("/register").await;
    browser.fill("#user", user).await;
    browser.fill("#password", password).await;
    browser.fill("#confirm", password).await;
    browser
        .click("form[action='/register'] button[type=submit]")
        .await;
    browser.wait_path("/").await;
    browser.wait_text(".topbar .who", user).await;
}

pub async fn sign_in(browser: &Browser, user: &str, password: &str) {
    browser.fill("#user", user).await;
    browser.fill("#password", password).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
}

pub async fn sign_out(browser: &Browser) {
    browser.click(".signout button[type=submit]").await;
    browser.wait_path("/login").await;
    browser.wait_text(".alert-success", "signed out").await;
}

pub async fn add_funds(browser: &Browser, cents: i64, cash_after: i64) {
    browser.goto("/").await;
    browser.fill("#funds-amount", &typed(cents)).await;
    browser
        .click("form[action='/funds'] button[type=submit]")
        .await;
    browser
        .wait_text(
            ".alert-success",
            &format!("Added {} to your cash.", dollars(cents)),
        )
        .await;
    browser.wait_text("#cash", &dollars(cash_after)).await;
}

/// Places a buy or sell from the trade page; it then waits in the page's
/// pending box.
pub async fn place(browser: &Browser, side: &str, symbol: &str, cents: i64) -> i64 {
    let shares = cents / price_cents(symbol);
    browser.goto("/trade").await;
    browser.send_order(side, symbol, &typed(cents)).await;
    browser
        .wait_text(
            ".alert-success",
            &format!("Your {side} of {shares} {symbol}"),
        )
        .await;
    browser
        .wait_text(
            &format!("#pending-{side} .order-shares"),
            &format!("{shares} {symbol}"),
        )
        .await;
    shares
}

pub async fn journey(browser: &Browser) {
    let user = unique("trader_");
    let password = "correct horse battery";
    let mut instances = BTreeSet::new();

    // Open an account: signed in at once, on the dashboard.
    browser.goto("/register").await;
    browser.wait_text("h1", "Open your trading account").await;
    instances.insert(browser.instance().await);
    browser.shot("01-register").await;
    register(browser, &user, password).await;
    browser.wait_text(".alert-success", &user).await;
    browser.wait_text("#cash", "$0.00").await;
    instances.insert(browser.instance().await);

    // Sign out, then in again.
    sign_out(browser).await;
    browser.shot("02-login").await;
    sign_in(browser, &user, password).await;
    browser.wait_path("/").await;
    browser.wait_text("h1", "Dashboard").await;
    instances.insert(browser.instance().await);

    add_funds(browser, usd(10000), usd(10000)).await;
    browser.shot("03-funded").await;
    let mut cash = usd(10000);

    // A quote, and from it the trade page with the symbol filled in.
    browser.click("nav a[href='/quote']").await;
    browser.fill("#quote-symbol", "ABC").await;
    browser
        .click("form[action='/quote'] button[type=submit]")
        .await;
    let abc = price_cents("ABC");
    browser.wait_text("#quote-price", &dollars(abc)).await;
    browser.wait_text("#quote-title", "ABC").await;
    instances.insert(browser.instance().await);
    browser.shot("04-quote").await;
    browser.click("#quote a.btn-buy").await;
    browser.wait_path("/trade").await;
    let filled = browser.el("#buy-symbol").await.value().await.unwrap();
    assert_eq!(
        filled.as_deref(),
        Some("ABC"),
        "the quote fills the symbol in"
    );

    // Buy, then commit.
    let bought = place(browser, "buy", "ABC", usd(2000)).await;
    browser.shot("05-pending-buy").await;
    browser.click("#pending-buy button[value=commit]").await;
    browser
        .wait_text(".alert-success", &format!("Bought {bought} ABC"))
        .await;
    browser.wait_text("#pending-buy", "No buy is waiting").await;
    cash -= bought * abc;
    browser.wait_text("#cash", &dollars(cash)).await;
    instances.insert(browser.instance().await);

    // A buy and a sell waiting at once: the dashboard shows both, with the
    // holdings.
    let waiting = place(browser, "buy", "XYZ", usd(500)).await;
    let sold = place(browser, "sell", "ABC", 2 * abc).await;
    assert_eq!(sold, 2);
    browser.wait_text("#pending-buy .order-shares", "XYZ").await;
    browser.shot("06-trade").await;
    browser.goto("/").await;
    browser.wait_text("#holdings", "ABC").await;
    browser.wait_text("main table", "XYZ").await;
    browser.wait_text("main table", "Sell").await;
    instances.insert(browser.instance().await);
    browser.shot("07-dashboard").await;

    // Cancel the buy: the cash comes back.
    browser.goto("/trade").await;
    browser.click("#pending-buy button[value=cancel]").await;
    browser
        .wait_text(
            ".alert-success",
            &format!("Cancelled the buy of {waiting} XYZ"),
        )
        .await;
    browser.wait_text("#cash", &dollars(cash)).await;

    // Commit the sell.
    browser.click("#pending-sell button[value=commit]").await;
    browser
        .wait_text(".alert-success", &format!("Sold {sold} ABC"))
        .await;
    cash += sold * abc;
    browser.wait_text("#cash", &dollars(cash)).await;
    browser
        .wait_text("#pending-sell", "No sell is waiting")
        .await;

    // A buy trigger set, armed below the price, then cancelled.
    let qrs = price_cents("QRS");
    browser.click("nav a[href='/triggers']").await;
    browser.set_trigger_amount("buy", "QRS", "300.00").await;
    browser
        .wait_text(".alert-success", "$300.00 is set aside to buy QRS")
        .await;
    let below = (qrs - 1).max(1);
    browser.arm_trigger("buy", "QRS", &typed(below)).await;
    browser
        .wait_text(".alert-success", "The buy trigger on QRS is armed")
        .await;
    browser
        .wait_text("#trigger-buy-QRS", &format!("Armed at {}", dollars(below)))
        .await;
    instances.insert(browser.instance().await);
    browser.shot("08-triggers").await;
    browser
        .click("#trigger-buy-QRS form[action='/triggers/buy/cancel'] button")
        .await;
    browser
        .wait_text(
            ".alert-success",
            "The buy trigger on QRS is cancelled; $300.00 is back in your cash.",
        )
        .await;
    assert!(
        !browser.exists("#trigger-buy-QRS").await,
        "the cancelled trigger is gone"
    );

    // A buy trigger at or above the price fires as it is armed, and tells
    // the trader so.
    let fir = price_cents("FIR");
    browser.set_trigger_amount("buy", "FIR", "400.00").await;
    browser.arm_trigger("buy", "FIR", &typed(fir)).await;
    let fired_shares = usd(400) / fir;
    browser
        .wait_text(
            ".alert-success",
            &format!("The buy trigger on FIR fired at once: {fired_shares} shares"),
        )
        .await;
    browser
        .wait_text("nav a[href='/notifications'] .pill", "1")
        .await;
    browser.click("nav a[href='/notifications']").await;
    browser.wait_text("#notifications", "FIR").await;
    browser.wait_text("#notifications .badge-info", "New").await;
    instances.insert(browser.instance().await);
    browser.shot("09-notifications").await;
    browser.goto("/").await;
    browser.wait_text("#holdings", "FIR").await;

    // The history has every command, in words, newest first.
    browser.click("nav a[href='/history']").await;
    for command in [
        "Add funds",
        "Commit buy",
        "Cancel buy",
        "Commit sell",
        "Set buy amount",
        "Set buy trigger",
        "Cancel buy trigger",
    ] {
        browser.wait_text("#history", command).await;
    }
    instances.insert(browser.instance().await);
    browser.shot("10-history").await;

    // The audit log, downloaded with the browser's own session.
    let cookie = browser.cookie("dt_session").await;
    let href = browser
        .el("a[href='/history/log.xml']")
        .await
        .attr("href")
        .await
        .unwrap();
    assert_eq!(href.as_deref(), Some("/history/log.xml"));
    let http = Http::new(browser.base.clone());
    let reply = http
        .try_request(
            hyper::Request::get(format!("{}/history/log.xml", browser.base))
                .header("cookie", format!("dt_session={cookie}"))
                .body(Default::default())
                .unwrap(),
        )
        .await
        .expect("the balancer answers");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let kind = reply.header("content-type").unwrap_or_default().to_owned();
    assert!(kind.contains("xml"), "an XML download, not {kind}");
    let xml = reply.text();
    assert!(xml.starts_with("<?xml"), "{}", &xml[..xml.len().min(200)]);
    assert!(xml.contains(&format!("<username>{user}</username>")));
    for command in ["ADD", "BUY", "COMMIT_BUY", "SELL", "COMMIT_SELL"] {
        assert!(
            xml.contains(&format!("<command>{command}</command>")),
            "the log has {command}"
        );
    }
    assert_eq!(
        xml.matches("<username>").count(),
        xml.matches(&format!("<username>{user}</username>")).count(),
        "only this trader's entries"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &xml).unwrap();
    assert_valid_log(file.path());

    // Pages came from more than one instance, on one session.
    assert!(
        instances.len() >= 2,
        "the balancer spreads pages over the instances: {instances:?}"
    );

    // A personal API token: its secret shown once, then listed by name.
    browser.click("nav a[href='/tokens']").await;
    browser.fill("#token-name", "laptop script").await;
    browser
        .click("form[action='/tokens'] button[type=submit]")
        .await;
    browser
        .wait_text("#new-token", "Your new token “laptop script”")
        .await;
    let secret = browser.el("#secret").await.value().await.unwrap();
    assert!(secret.is_some_and(|s| s.len() >= 20), "a secret to copy");
    browser
        .wait_text("#tokens .token-name", "laptop script")
        .await;
    instances.insert(browser.instance().await);
    browser.shot("11-tokens").await;

    // Every page works on a phone-sized screen.
    browser
        .fits_a_phone(&[
            "/",
            "/trade",
            "/triggers",
            "/quote?symbol=ABC",
            "/history",
            "/notifications",
            "/tokens",
        ])
        .await;

    // Sign out: the session is over.
    sign_out(browser).await;
    browser.goto("/").await;
    browser.wait_path("/login").await;
    browser.wait_text("h2", "Sign in").await;
}
