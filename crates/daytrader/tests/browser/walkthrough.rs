//! What a first walk through the pages found, each fixed and shown here in
//! Chromium: a commit after expiry says the order expired; a SELL of a
//! symbol not held says so; a 64-character user name fits a phone and the
//! supervisor's users table; "Triggers fired" counts a trigger that fires
//! as it is armed; the "change price" box starts at the trigger price.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::infra::unique;
use crate::journey::{add_funds, dollars, place, price_cents, register, sign_out, typed, usd};

pub async fn walkthrough(browser: &Browser, token: &str) {
    let fired_before = triggers_fired(browser, token).await;

    // The longest user name there is: 64 characters, nowhere to break.
    let mut user = unique("long_");
    while user.len() < 64 {
        user.push('x');
    }
    register(browser, &user, "a long enough password").await;
    add_funds(browser, usd(2000), usd(2000)).await;

    // A buy left to expire in this tab while the rest happens in another.
    let shares = place(browser, "buy", "ABC", usd(500)).await;
    let placed = Instant::now();
    browser.save_form("staleCommit", "#pending-buy form").await;
    let driver = browser.driver();
    let trade_tab = driver.window().await.unwrap();
    let other_tab = driver.new_tab().await.unwrap();
    driver.switch_to_window(other_tab).await.unwrap();

    sell_of_a_symbol_not_held(browser).await;
    change_price_box(browser).await;
    arm_a_trigger_that_fires_at_once(browser).await;
    browser
        .fits_a_phone(&["/", "/trade", "/triggers", "/history", "/notifications"])
        .await;
    driver.close_window().await.unwrap();
    driver.switch_to_window(trade_tab).await.unwrap();

    commit_after_expiry(browser, shares, placed).await;
    sign_out(browser).await;

    let fired_after = supervisor_sees(browser, token, &user).await;
    assert!(
        fired_after > fired_before,
        "a trigger that fired as it was armed is counted: {fired_before} before, \
         {fired_after} after"
    );
}

/// A SELL of a symbol the trader holds none of: the refusal says so.
async fn sell_of_a_symbol_not_held(browser: &Browser) {
    browser.goto("/trade").await;
    browser.send_order("sell", "XYZ", "1000.00").await;
    let said = browser
        .wait_text("main", "You hold no shares of XYZ to sell.")
        .await;
    assert!(!said.contains("does not sell one share"), "{said}");
    browser.shot("01-sell-not-held").await;
}

/// An armed trigger's "change price" box starts at its price.
async fn change_price_box(browser: &Browser) {
    let qrs = price_cents("QRS");
    browser.goto("/triggers").await;
    browser.set_trigger_amount("buy", "QRS", "300.00").await;
    let below = (qrs - 1).max(1);
    browser.arm_trigger("buy", "QRS", &typed(below)).await;
    browser
        .wait_text("#trigger-buy-QRS", &format!("Armed at {}", dollars(below)))
        .await;
    browser.goto("/triggers").await;
    let shown = browser.el("#price-buy-QRS").await.value().await.unwrap();
    assert_eq!(
        shown.as_deref(),
        Some(typed(below).as_str()),
        "the change-price box starts at the trigger price"
    );
    browser.shot("02-change-price").await;
}

/// A buy trigger armed at or above the price fires as it is armed.
async fn arm_a_trigger_that_fires_at_once(browser: &Browser) {
    let wlk = price_cents("WLK");
    browser.goto("/triggers").await;
    browser.set_trigger_amount("buy", "WLK", "400.00").await;
    browser.arm_trigger("buy", "WLK", &typed(wlk + 100)).await;
    browser.wait_text(".alert-success", "WLK").await;
    assert!(
        !browser.exists("#trigger-buy-WLK").await,
        "the trigger fired and is gone"
    );
}

/// The commit of an order that expired: the server expires it on time and
/// the live page drops it by itself; a commit sent anyway (here, the form
/// as it was before the expiry, as a page without script still shows it)
/// is told the order expired.
async fn commit_after_expiry(browser: &Browser, shares: i64, placed: Instant) {
    let expiry = Duration::from_secs(61);
    if let Some(left) = expiry.checked_sub(placed.elapsed()) {
        tokio::time::sleep(left).await;
    }
    browser.wait_text("#pending-buy", "No buy is waiting").await;
    browser
        .post_saved_form("staleCommit", "button[value=commit]")
        .await;
    let said = browser
        .wait_text("#pending-buy .alert-error", "expired at")
        .await;
    assert!(
        said.contains(&format!("Your buy of {shares} ABC")) && said.contains("nothing was bought"),
        "{said}"
    );
    browser
        .wait_text(
            "#cash",
            &dollars(usd(2000) - usd(300) - usd(400) + leftover_of_wlk()),
        )
        .await;
    browser.shot("03-commit-after-expiry").await;
}

/// What the WLK trigger's $400.00 left in cash after buying whole shares
/// at the current price.
fn leftover_of_wlk() -> i64 {
    let price = price_cents("WLK");
    usd(400) - usd(400) / price * price
}

/// Signs in as the supervisor and adds up "Triggers fired" over the three
/// instances (the figure is each instance's own); signs out.
async fn triggers_fired(browser: &Browser, token: &str) -> u64 {
    browser.supervisor_sign_in(token).await;
    let fired = fired_per_instance(browser).await.values().sum();
    sign_out(browser).await;
    fired
}

/// What the supervisor sees of `user` (a 64-character name): the users
/// table keeps its columns in view and shows the whole name on hover, on a
/// desktop and on a phone. Answers "Triggers fired" over the instances.
async fn supervisor_sees(browser: &Browser, token: &str, user: &str) -> u64 {
    browser.supervisor_sign_in(token).await;
    let fired = fired_per_instance(browser).await.values().sum();
    let cell = browser
        .el(&format!("#users .user-name[title='{user}']"))
        .await;
    assert_eq!(cell.text().await.unwrap(), user, "the whole name is there");
    let fits = browser
        .driver()
        .execute(
            "const wrap = document.querySelector('#users').closest('.table-wrap');\
             const name = document.querySelector('#users .user-name[title=\"' + arguments[0] + '\"]');\
             return [wrap.scrollWidth <= wrap.clientWidth, name.scrollWidth > name.clientWidth];",
            vec![serde_json::json!(user)],
        )
        .await
        .and_then(|r| r.convert::<(bool, bool)>())
        .unwrap();
    assert_eq!(
        fits,
        (true, true),
        "the table fits its card; the long name is cut with an ellipsis"
    );
    browser.shot("04-admin-long-name").await;
    browser.fits_a_phone(&["/admin"]).await;
    sign_out(browser).await;
    fired
}

/// "Triggers fired" as each instance shows it, reloading /admin until the
/// balancer has sent it to all three.
async fn fired_per_instance(browser: &Browser) -> BTreeMap<String, u64> {
    let mut seen = BTreeMap::new();
    for _ in 0..30 {
        browser.goto("/admin").await;
        let instance = browser.instance().await;
        let fired = browser
            .driver()
            .execute(
                "for (const dt of document.querySelectorAll('dt')) {\
                   if (dt.textContent.trim() === 'Triggers fired') \
                     return dt.nextElementSibling.textContent.trim();\
                 }\
                 return null;",
                Vec::new(),
            )
            .await
            .and_then(|r| r.convert::<String>())
            .unwrap_or_else(|e| panic!("no Triggers fired on the admin page: {e}"));
        seen.insert(instance, fired.parse().unwrap());
        if seen.len() == 3 {
            return seen;
        }
    }
    panic!("the balancer never reached all three instances: {seen:?}");
}
