//! Accounts on the pages: a sign-in that returns to the page asked for,
//! registration in plain words with a one-time welcome, refused forms that
//! a reload does not send again, the tokens page naming the real site,
//! wrong passwords that slow a guesser without locking the owner out, the
//! supervisor's one-time sign-in link for an account made through the API,
//! and a password change.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::Http;
use crate::infra::unique;
use crate::journey::{register, sign_in, sign_out};

const PASSWORD: &str = "a long enough password";

pub async fn accounts(browser: &Browser, token: &str) {
    let user = unique("acct_");
    registration_speaks_plainly_and_welcomes_once(browser, &user).await;
    refused_forms_are_not_sent_again(browser).await;
    the_tokens_page_names_the_site(browser).await;
    sign_out(browser).await;
    signing_in_returns_to_the_page_asked_for(browser, &user).await;
    sign_out(browser).await;
    wrong_passwords_only_slow_the_owner(browser, &user).await;
    sign_out(browser).await;
    a_sign_in_link_then_a_password_change(browser, token).await;
}

async fn registration_speaks_plainly_and_welcomes_once(browser: &Browser, user: &str) {
    browser.goto("/register").await;
    browser.wait_text("label[for=user]", "User name").await;
    // The allowed characters, in the engine's own words.
    browser
        .wait_text("#user-hint", "letters, digits, '_', '.' and '-'")
        .await;
    browser.fill("#user", "not a name!").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#confirm", PASSWORD).await;
    browser
        .click("form[action='/register'] button[type=submit]")
        .await;
    browser
        .wait_text("#user-error", "A user name is 1 to 64 characters")
        .await;
    let kept = browser.el("#user").await.value().await.unwrap();
    assert_eq!(kept.as_deref(), Some("not a name!"), "the name is kept");
    let password = browser.el("#password").await.value().await.unwrap();
    assert_eq!(password.as_deref(), Some(""), "a password is never kept");
    browser.shot("01-register-refused").await;

    register(browser, user, PASSWORD).await;
    browser
        .wait_text(".alert-success", &format!("Welcome, {user}!"))
        .await;
    browser.shot("02-welcome").await;
    browser.goto("/").await;
    browser.wait_text(".topbar .who", user).await;
    assert!(
        !browser.exists(".alert-success").await,
        "the welcome is shown once"
    );
    let page = browser.text("main").await;
    assert!(!page.contains("Welcome"), "no second welcome: {page}");
}

/// A refused form comes back by a redirect: the page shown is a GET, so a
/// reload sends nothing again and the refusal, shown once, is gone.
async fn refused_forms_are_not_sent_again(browser: &Browser) {
    browser.goto("/trade").await;
    browser.send_order("buy", "ABC", "100.00").await;
    browser.wait_text("#buy-amount-error", "is available").await;
    browser.wait_path("/trade").await;
    let kept = browser.el("#buy-amount").await.value().await.unwrap();
    assert_eq!(kept.as_deref(), Some("100.00"), "the amount is kept");
    browser.shot("03-refused-buy").await;
    browser.driver().refresh().await.unwrap();
    browser.wait_text("h1", "Trade").await;
    assert!(
        !browser.exists("#buy-amount-error").await,
        "a reload shows the page, not the refusal again"
    );
    browser.wait_text("#pending-buy", "No buy is waiting").await;

    browser.goto("/triggers").await;
    browser
        .click("form[action='/triggers/buy/amount'] button[type=submit]")
        .await;
    browser.wait_path("/triggers").await;
    browser
        .wait_text(".field-error", "Enter a stock symbol")
        .await;
}

async fn the_tokens_page_names_the_site(browser: &Browser) {
    browser.goto("/tokens").await;
    browser.fill("#token-name", "curl").await;
    browser
        .click("form[action='/tokens'] button[type=submit]")
        .await;
    let example = browser.wait_text("#new-token pre", "curl").await;
    assert!(
        example.contains(&format!("{}/api/v1/users/", browser.base)),
        "the example names the site as the trader reached it: {example}"
    );
    browser.shot("04-token-example").await;
}

async fn signing_in_returns_to_the_page_asked_for(browser: &Browser, user: &str) {
    browser.goto("/history").await;
    browser.wait_path("/login").await;
    sign_in(browser, user, PASSWORD).await;
    browser.wait_path("/history").await;
    browser.wait_text(".topbar .who", user).await;
}

async fn wrong_passwords_only_slow_the_owner(browser: &Browser, user: &str) {
    // Someone guesses until sign-ins of the name must wait (after three
    // free failures); how long depends on how fast the guesses came.
    let mut said = String::new();
    for _ in 0..8 {
        browser.goto("/login").await;
        sign_in(browser, user, "somebody else guessing").await;
        said = browser.wait_text("#login-error", "").await;
        if said.contains("try again in") {
            break;
        }
    }
    let seconds: u64 = said
        .split("try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a wait is announced: {said:?}"));
    assert!(seconds <= 60, "a short wait, not a lock-out: {said}");
    browser.shot("05-sign-in-waits").await;
    // Once it has passed, the owner is in.
    tokio::time::sleep(Duration::from_millis(seconds * 1000 + 300)).await;
    sign_in(browser, user, PASSWORD).await;
    browser.wait_path("/").await;
    browser.wait_text(".topbar .who", user).await;
}

async fn a_sign_in_link_then_a_password_change(browser: &Browser, token: &str) {
    // A workload's user: made through the API, with no password.
    let user = unique("api_");
    let body = json!({"command": "ADD", "user": user, "amount": "25.00"});
    let added = Http::new(browser.base.clone())
        .request(
            Method::POST,
            "/api/v1/commands",
            Some(token),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text());

    browser.supervisor_sign_in(token).await;
    browser.fill("#link-user", &user).await;
    browser
        .click("form[action='/admin/sign-in-links'] button[type=submit]")
        .await;
    browser.wait_text("#link-title", &user).await;
    let link = browser.el("#link").await.value().await.unwrap().unwrap();
    browser.shot("06-sign-in-link").await;
    let path = link
        .strip_prefix(&browser.base)
        .unwrap_or_else(|| panic!("the link names the site: {link}"))
        .to_owned();
    sign_out(browser).await;

    browser.goto(&path).await;
    browser.wait_text("h1", "Set your password").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#confirm", PASSWORD).await;
    browser.click("main form button[type=submit]").await;
    browser.wait_path("/").await;
    browser
        .wait_text(".alert-success", "Your password is set")
        .await;
    browser.wait_text(".topbar .who", &user).await;
    // Used once, the link is gone.
    browser.goto(&path).await;
    browser.wait_text("h1", "no longer works").await;
    browser.shot("07-link-used").await;

    browser.goto("/account/password").await;
    browser.fill("#current", "not my password").await;
    browser.fill("#password", "another long password").await;
    browser.fill("#confirm", "another long password").await;
    browser.click("main form button[type=submit]").await;
    browser
        .wait_text("#current-error", "not your current password")
        .await;
    browser.wait_path("/account/password").await;
    browser.fill("#current", PASSWORD).await;
    browser.fill("#password", "another long password").await;
    browser.fill("#confirm", "another long password").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_path("/").await;
    browser
        .wait_text(".alert-success", "other sessions are signed out")
        .await;
    browser.shot("08-password-changed").await;
    browser.fits_a_phone(&["/account/password"]).await;
    sign_out(browser).await;
    sign_in(browser, &user, "another long password").await;
    browser.wait_path("/").await;
    browser.wait_text(".topbar .who", &user).await;
    sign_out(browser).await;
}
