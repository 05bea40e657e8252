//! The supervisor's page: a wrong token refused, the right one let in, the
//! system's status and the users shown.

use crate::browser::Browser;
use crate::infra::unique;
use crate::journey::{register, sign_out};

pub async fn supervisor(browser: &Browser, token: &str) {
    // An account for the users table to show.
    let user = unique("listed_");
    register(browser, &user, "a long enough password").await;
    sign_out(browser).await;

    browser.goto("/admin").await;
    browser.wait_path("/admin/login").await;
    browser
        .send_supervisor_token("not-the-supervisor-token")
        .await;
    browser.wait_text("#token-error", "").await;
    assert!(!browser.exists(".signout").await, "not let in");
    browser.wait_path("/admin/login").await;

    browser.send_supervisor_token(token).await;
    browser.wait_path("/admin").await;
    browser.wait_text("h1", "Supervisor").await;
    browser.wait_text(".status-list", "Database").await;
    browser.wait_text("#users", &user).await;
    let shown = browser.text("#instance-title + .stat-value").await;
    assert_eq!(
        shown,
        browser.instance().await,
        "the page names its instance"
    );
    browser.shot("01-admin").await;
    sign_out(browser).await;
}
