//! What a trader sees when something is refused: each refusal where it
//! belongs, in words, and nothing changed.

use crate::browser::Browser;
use crate::infra::unique;
use crate::journey::{add_funds, dollars, place, price_cents, register, sign_in, sign_out, usd};

pub async fn refusals(browser: &Browser) {
    wrong_password(browser).await;
    insufficient_funds(browser).await;
    commit_with_nothing_pending(browser).await;
    form_without_csrf_token(browser).await;
}

/// A wrong password: the login page again, the error on it, the name kept.
async fn wrong_password(browser: &Browser) {
    let user = unique("careless_");
    register(browser, &user, "the right password").await;
    sign_out(browser).await;
    sign_in(browser, &user, "not the password").await;
    browser
        .wait_text("#login-error", "do not match an account")
        .await;
    browser.wait_path("/login").await;
    let kept = browser.el("#user").await.value().await.unwrap();
    assert_eq!(kept.as_deref(), Some(user.as_str()), "the name is kept");
    assert!(
        !browser.exists(".signout").await,
        "not signed in after a wrong password"
    );
    browser.instance().await;
    browser.shot("01-wrong-password").await;
    // The right one still works.
    sign_in(browser, &user, "the right password").await;
    browser.wait_path("/").await;
    browser.wait_text(".topbar .who", &user).await;
    sign_out(browser).await;
}

/// A buy for more than the cash: the refusal next to the amount, the
/// amount kept, nothing pending, no cash taken.
async fn insufficient_funds(browser: &Browser) {
    register(browser, &unique("poor_"), "a long enough password").await;
    add_funds(browser, usd(50), usd(50)).await;
    browser.goto("/trade").await;
    browser.send_order("buy", "ABC", "5000.00").await;
    let shares = usd(5000) / price_cents("ABC");
    let error = browser
        .wait_text("#buy-amount-error", "but only $50.00 is available")
        .await;
    assert!(error.contains(&format!("Buying {shares} ABC")), "{error}");
    let field = browser.el("#buy-amount").await;
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    let described = field.attr("aria-describedby").await.unwrap().unwrap();
    assert!(
        described.contains("buy-amount-error"),
        "the field is tied to its error: {described}"
    );
    assert_eq!(
        field.value().await.unwrap().as_deref(),
        Some("5000.00"),
        "the amount is kept to correct"
    );
    browser.wait_text("#pending-buy", "No buy is waiting").await;
    browser.wait_text("#cash", "$50.00").await;
    browser.instance().await;
    browser.shot("02-insufficient-funds").await;
    sign_out(browser).await;
}

/// A commit from a second tab after the first one committed: nothing is
/// pending any more, and the page says so in words.
async fn commit_with_nothing_pending(browser: &Browser) {
    register(browser, &unique("twotabs_"), "a long enough password").await;
    add_funds(browser, usd(1000), usd(1000)).await;
    let shares = place(browser, "buy", "ABC", usd(500)).await;
    let driver = browser.driver();
    let first = driver.window().await.unwrap();
    let second = driver.new_tab().await.unwrap();
    driver.switch_to_window(second.clone()).await.unwrap();
    browser.goto("/trade").await;
    browser
        .wait_text("#pending-buy .order-shares", &format!("{shares} ABC"))
        .await;
    // This tab's commit form as it stands, to post once the other tab has
    // committed: a page without script keeps showing it.
    browser.save_form("staleCommit", "#pending-buy form").await;

    driver.switch_to_window(first).await.unwrap();
    browser.click("#pending-buy button[value=commit]").await;
    browser
        .wait_text(".alert-success", &format!("Bought {shares} ABC"))
        .await;
    let cash = usd(1000) - shares * price_cents("ABC");
    browser.wait_text("#cash", &dollars(cash)).await;

    driver.switch_to_window(second).await.unwrap();
    // The live page has dropped the order by itself; its old form, posted
    // anyway, is told in words.
    browser.wait_text("#pending-buy", "No buy is waiting").await;
    browser
        .post_saved_form("staleCommit", "button[value=commit]")
        .await;
    browser
        .wait_text("#pending-buy .alert-error", "There is no pending buy")
        .await;
    browser.wait_text("#cash", &dollars(cash)).await;
    browser.shot("03-nothing-pending").await;
    driver.close_window().await.unwrap();
    let left = driver.windows().await.unwrap();
    driver.switch_to_window(left[0].clone()).await.unwrap();
    sign_out(browser).await;
}

/// A form without its CSRF token is refused, and nothing changes.
async fn form_without_csrf_token(browser: &Browser) {
    let user = unique("forged_");
    register(browser, &user, "a long enough password").await;
    add_funds(browser, usd(10), usd(10)).await;
    browser.fill("#funds-amount", "777.00").await;
    browser
        .script("document.querySelector(\"form[action='/funds'] input[name=csrf]\").remove();")
        .await;
    assert!(
        !browser
            .exists("form[action='/funds'] input[name=csrf]")
            .await
    );
    browser
        .click("form[action='/funds'] button[type=submit]")
        .await;
    browser.wait_text("h1", "This form was refused").await;
    browser.wait_text("main", "Nothing was changed").await;
    // The refusal keeps the trader's header: who is signed in, the menu.
    browser.wait_text(".signout .who", &user).await;
    assert!(browser.exists("nav a[href='/trade']").await);
    browser.instance().await;
    browser.shot("04-no-csrf-token").await;
    browser.goto("/").await;
    browser.wait_text("#cash", "$10.00").await;
    let activity = browser.text("#activity").await;
    assert!(!activity.contains("777"), "nothing was added: {activity}");
    sign_out(browser).await;
}
