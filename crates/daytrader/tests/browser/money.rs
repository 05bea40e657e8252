//! The money view, exact to the cent on a known sequence of trades, and
//! the charts: the account value on the dashboard, the price on the quote
//! page; on a phone, the holdings keep Price and Value in view.
//!
//! ABC is 52.63 and AAA 6.10 for ever (the cluster's fixed quote server).

use crate::browser::Browser;
use crate::infra::unique;
use crate::journey::{add_funds, dollars, place, price_cents, register, usd};

/// Buys on the trade page and commits.
async fn buy(browser: &Browser, symbol: &str, cents: i64) -> i64 {
    let shares = place(browser, "buy", symbol, cents).await;
    browser.click("#pending-buy button[value=commit]").await;
    browser
        .wait_text(".alert-success", &format!("Bought {shares} {symbol}"))
        .await;
    shares
}

async fn sell(browser: &Browser, symbol: &str, cents: i64) -> i64 {
    let shares = place(browser, "sell", symbol, cents).await;
    browser.click("#pending-sell button[value=commit]").await;
    browser
        .wait_text(".alert-success", &format!("Sold {shares} {symbol}"))
        .await;
    shares
}

/// The cells of the holdings row of `symbol`.
async fn holding(browser: &Browser, symbol: &str) -> Vec<String> {
    let row = format!("#holdings tr[data-symbol='{symbol}']");
    browser.el(&row).await;
    browser.texts(&format!("{row} td")).await
}

pub async fn money(browser: &Browser) {
    let user = unique("money_");
    register(browser, &user, "correct horse battery").await;
    add_funds(browser, usd(1000), usd(1000)).await;
    let (abc, aaa) = (price_cents("ABC"), price_cents("AAA"));
    assert_eq!((abc, aaa), (5263, 610), "the fixed prices");

    // 3 ABC for 157.89, then 1 of them sold for 52.63: a third of the cost
    // goes with it. 8 AAA for 48.80.
    assert_eq!(buy(browser, "ABC", usd(200)).await, 3);
    assert_eq!(sell(browser, "ABC", usd(100)).await, 1);
    assert_eq!(buy(browser, "AAA", usd(50)).await, 8);

    browser.goto("/").await;
    browser.wait_text("#cash", &dollars(84_594)).await;
    assert_eq!(browser.text("#account-value").await, "$1,000.00");
    assert_eq!(browser.text("#realized-gain").await, "$0.00");
    // Symbol, shares, held back, average cost, price, value, gain.
    assert_eq!(
        holding(browser, "ABC").await,
        ["ABC", "2", "0", "$52.63", "$52.63", "$105.26", "$0.00"]
    );
    assert_eq!(
        holding(browser, "AAA").await,
        ["AAA", "8", "0", "$6.10", "$6.10", "$48.80", "$0.00"]
    );
    // The account value over time: a line through the deposit and trades.
    assert!(browser.exists("#value-chart svg polyline.chart-line").await);
    browser.shot("01-money-view").await;

    // The price chart of a symbol on the quote page.
    browser.goto("/quote?symbol=ABC").await;
    browser.wait_text("#quote-price", &dollars(abc)).await;
    assert!(browser.exists("#price-chart svg polyline.chart-line").await);
    browser.wait_text("#price-chart figcaption", "$52.63").await;
    browser.shot("02-price-chart").await;

    // On a phone: the page fits, and the holdings table does not need a
    // sideways scroll to show Price and Value.
    browser.fits_a_phone(&["/"]).await;
    browser
        .driver()
        .set_window_rect(0, 0, 390, 844)
        .await
        .unwrap();
    browser.goto("/").await;
    let (right, edge): (f64, f64) = browser
        .driver()
        .execute(
            "const wrap = document.querySelector('#holdings').closest('.table-wrap');\
             const value = document.querySelector('#holdings thead th:nth-child(6)');\
             return [value.getBoundingClientRect().right, \
                     Math.min(wrap.getBoundingClientRect().right, window.innerWidth)];",
            Vec::new(),
        )
        .await
        .and_then(|r| r.convert())
        .unwrap();
    assert!(
        right <= edge,
        "Price and Value in view at 390 px: Value ends at {right} px, the table's box at {edge} px"
    );
}
