//! The web pages over plain HTTP, as a browser without script would use
//! them: forms with their CSRF tokens, a session cookie, escaping of
//! whatever a visitor types, one trader never reaching another's account,
//! and a change made on one instance seen on the very next page view on
//! another (sessions and page fragments in the shared Redis). The
//! WebDriver suite (`tests/browser`) covers the same pages in Chromium.

use hyper::Method;
use serde_json::json;

use crate::cluster::cluster;
use crate::helpers::{Http, Reply, spawn_app};
use crate::infra::unique;

const PASSWORD: &str = "correct horse battery";

/// One browser: a cookie jar of one cookie (the session) on top of the
/// test client, pointed at one instance or another.
pub struct Browser {
    http: Http,
    pub cookie: Option<String>,
    /// The client address a balancer would report (`X-Forwarded-For`).
    address: Option<String>,
}

impl Browser {
    pub fn new(http: Http) -> Browser {
        Browser {
            http,
            cookie: None,
            address: None,
        }
    }

    /// A browser at `address`, as a balancer in front would report it.
    fn at(http: Http, address: &str) -> Browser {
        Browser {
            address: Some(address.to_owned()),
            ..Browser::new(http)
        }
    }

    /// The same browser (same cookie) talking to another instance.
    fn on(&self, http: Http) -> Browser {
        Browser {
            http,
            cookie: self.cookie.clone(),
            address: self.address.clone(),
        }
    }

    /// The page a refused form was sent back to (post-redirect-get).
    async fn follow(&mut self, reply: Reply) -> Reply {
        assert_eq!(reply.status, 303, "a refusal redirects: {}", reply.text());
        let to = reply.header("location").expect("a location").to_owned();
        self.page(&to).await
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Reply {
        self.send_with(method, path, form, &[]).await
    }

    async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        form: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.http.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(address) = &self.address {
            request = request.header("x-forwarded-for", address);
        }
        let body = match form {
            Some(form) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                bytes::Bytes::from(form)
            }
            None => bytes::Bytes::new(),
        };
        let reply = self
            .http
            .try_request(request.body(http_body_util::Full::new(body)).unwrap())
            .await
            .expect("the instance answers");
        if let Some(set) = reply.header("set-cookie") {
            let pair = set.split(';').next().unwrap().to_owned();
            // An expired cookie (sign-out) empties the jar.
            self.cookie = (!set.contains("Max-Age=0")).then_some(pair);
        }
        reply
    }

    pub(crate) async fn page(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    /// The page as the live pages' script fetches it again after an event.
    async fn live_refresh(&mut self, path: &str) -> Reply {
        self.send_with(Method::GET, path, None, &[("x-daytrader-live", "1")])
            .await
    }

    /// Fills in the form whose action is `action` on the page at `page`
    /// (its hidden CSRF token and transaction number included) with
    /// `fields`, and posts it.
    async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let html = self.page(page).await.text();
        let mut pairs = hidden_fields(&html, action);
        pairs.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.post(action, &pairs).await
    }

    async fn post(&mut self, action: &str, pairs: &[(String, String)]) -> Reply {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.send(Method::POST, action, Some(body)).await
    }

    pub async fn register(&mut self, user: &str) {
        self.page("/register").await;
        let visitor = self
            .cookie
            .clone()
            .expect("a visitor's session for the form");
        let reply = self
            .submit(
                "/register",
                "/register",
                &[
                    ("user", user),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(reply.status, 303, "register {user}: {}", reply.text());
        let cookie = reply
            .header("set-cookie")
            .expect("a new session at sign-in");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        // A new session at sign-in: an id planted before is worth nothing.
        assert_ne!(
            self.cookie.as_ref(),
            Some(&visitor),
            "the session id changes"
        );
    }

    pub(crate) async fn add_funds(&mut self, amount: &str) -> Reply {
        self.submit("/", "/funds", &[("amount", amount)]).await
    }
}

/// The hidden inputs of the form posting to `action`.
fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posts to {action} on this page:\n{html}"));
    let form = &html[start..];
    let form = &form[..form.find("</form>").unwrap()];
    form.split("<input")
        .skip(1)
        .filter(|input| input.contains("type=\"hidden\""))
        .filter_map(|input| Some((attribute(input, "name")?, attribute(input, "value")?)))
        .collect()
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let rest = &tag[tag.find(&format!(" {name}=\""))? + name.len() + 3..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The supervisor's view of `user` through the API.
async fn cash(http: &Http, user: &str) -> String {
    let reply = http.get(&format!("/api/v1/users/{user}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["cash"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_write_on_one_instance_shows_on_the_next_page_view_on_another() {
    let Some(cluster) = cluster() else { return };
    let (one, two) = (
        cluster.instance("web-a", &[]),
        cluster.instance("web-b", &[]),
    );
    let user = unique("pc");
    let mut on_one = Browser::new(one.client());
    on_one.register(&user).await;
    assert_eq!(on_one.add_funds("100.00").await.status, 303);

    // The same session, on the other instance: the dashboard is rendered
    // there and its fragment kept in Redis.
    let mut on_two = on_one.on(two.client());
    let first = on_two.page("/").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.text().contains("$100.00"), "{}", first.text());
    assert!(
        first.text().contains("web-b"),
        "the footer names the instance"
    );

    // A change on the first instance; the second's very next view shows it.
    assert_eq!(on_one.add_funds("23.45").await.status, 303);
    let next = on_two.page("/").await;
    assert!(next.text().contains("$123.45"), "{}", next.text());
    assert_eq!(cash(&two, &user).await, "123.45");

    // Unchanged, the fragment is served from the cache.
    on_two.page("/").await;
    let metrics = two.get("/metrics").await.text();
    let hits: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("page_cache_hits_total") && l.contains("dashboard"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        hits >= 1.0,
        "no page cache hit on the second instance:\n{metrics}"
    );
}

#[tokio::test]
async fn a_live_refresh_updates_the_parts_and_leaves_the_message_for_the_page() {
    let app = spawn_app();
    let mut browser = Browser::new(app.client());
    let user = unique("live");
    browser.register(&user).await;
    // The page the message is meant for takes it (the welcome).
    browser.page("/").await;
    assert_eq!(browser.add_funds("100.00").await.status, 303);

    // The script's fetch, made while the browser is on its way to the
    // page: it has the new cash in its live parts, and no message.
    let refreshed = browser.live_refresh("/").await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    let html = refreshed.text();
    assert!(
        html.contains(&format!("data-live-user=\"{user}\"")),
        "the page names whose stream to hold:\n{html}"
    );
    assert!(
        html.contains("data-live=\"cash\">$100.00<"),
        "the cash is a live part:\n{html}"
    );
    assert!(html.contains("data-live=\"unread\""), "{html}");
    assert!(!html.contains("Added $100.00 to your cash."), "{html}");

    // The page itself still shows the message, once.
    let shown = browser.page("/").await.text();
    assert!(shown.contains("Added $100.00 to your cash."), "{shown}");
    let again = browser.page("/").await.text();
    assert!(!again.contains("Added $100.00 to your cash."), "{again}");

    // A refused form is left for the page view its redirect brings, too.
    let refused = browser
        .submit(
            "/trade",
            "/trade/buy",
            &[("symbol", "ABC"), ("amount", "5000.00")],
        )
        .await;
    assert_eq!(refused.status, 303, "{}", refused.text());
    let refreshed = browser.live_refresh("/trade").await.text();
    assert!(!refreshed.contains("value=\"5000.00\""), "{refreshed}");
    let shown = browser.follow(refused).await;
    assert!((400..500).contains(&shown.status), "{}", shown.text());
    assert!(
        shown.text().contains("value=\"5000.00\""),
        "the refused amount comes back:\n{}",
        shown.text()
    );
}

#[tokio::test]
async fn whatever_a_visitor_types_is_rendered_escaped() {
    let app = spawn_app();
    let mut browser = Browser::new(app.client());
    let user = unique("esc");
    browser.register(&user).await;
    let hostile = "<script>alert(\"x\")</script>'\"><img src=x onerror=alert(1)>";

    let quote = browser
        .page(&format!(
            "/quote?symbol={}",
            serde_urlencoded::to_string([("", hostile)]).unwrap()[1..].to_owned()
        ))
        .await;
    let funds = browser.add_funds(hostile).await;
    let funds = browser.follow(funds).await;
    assert!((400..500).contains(&funds.status), "{}", funds.text());
    let buy = browser
        .submit(
            "/trade",
            "/trade/buy",
            &[("symbol", hostile), ("amount", "10.00")],
        )
        .await;
    let buy = browser.follow(buy).await;
    let login = {
        let mut visitor = Browser::new(app.client());
        let refused = visitor
            .submit("/login", "/login", &[("user", hostile), ("password", "x")])
            .await;
        visitor.follow(refused).await
    };
    assert_eq!(login.status, 401, "{}", login.text());
    for (what, reply) in [
        ("quote", quote),
        ("funds", funds),
        ("buy", buy),
        ("login", login),
    ] {
        // Were anything to slip through, the page's policy runs no inline
        // script, and no other site may frame it.
        let policy = reply.header("content-security-policy").unwrap_or_default();
        assert!(policy.contains("script-src 'self'"), "{what}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{what}: {policy}"
        );
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        let text = reply.text();
        assert!(
            !text.contains("<script>alert"),
            "{what}: raw markup:\n{text}"
        );
        assert!(!text.contains("<img src=x"), "{what}: raw markup:\n{text}");
        assert!(
            text.contains("&lt;script&gt;") || text.contains("&#60;script&#62;"),
            "{what}: the input is not shown back, escaped:\n{text}"
        );
    }
    assert_eq!(cash(&app, &user).await, "0.00", "nothing changed");
}

#[tokio::test]
async fn a_form_without_its_sessions_csrf_token_changes_nothing() {
    let app = spawn_app();
    let user = unique("csrf");
    let mut alice = Browser::new(app.client());
    alice.register(&user).await;
    let html = alice.page("/").await.text();
    let mut fields = hidden_fields(&html, "/funds");
    fields.push(("amount".into(), "50.00".into()));

    let without: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let reply = alice.post("/funds", &without).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(
        reply.text().contains("Nothing was changed"),
        "{}",
        reply.text()
    );

    // Another session's token is no better.
    let mut mallory = Browser::new(app.client());
    mallory.register(&unique("m")).await;
    let theirs = hidden_fields(&mallory.page("/").await.text(), "/funds");
    let forged: Vec<_> = fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            "csrf" => (
                k.clone(),
                theirs.iter().find(|(n, _)| n == "csrf").unwrap().1.clone(),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert_eq!(alice.post("/funds", &forged).await.status, 403);
    assert_eq!(cash(&app, &user).await, "0.00");

    // The genuine form works, once: posted twice, it runs once.
    assert_eq!(alice.post("/funds", &fields).await.status, 303);
    assert_eq!(alice.post("/funds", &fields).await.status, 303);
    assert_eq!(cash(&app, &user).await, "50.00");
}

/// Whether `html` has the header of a signed-in `user`: the menu and the
/// sign-out form.
fn has_trader_menu(html: &str, user: &str) -> bool {
    html.contains("action=\"/logout\"")
        && html.contains("Sign out")
        && html.contains(&format!("Signed in as {user}"))
        && html.contains("href=\"/trade\"")
}

#[tokio::test]
async fn error_pages_keep_the_signed_in_traders_menu() {
    let app = spawn_app();
    let user = unique("err");
    let mut trader = Browser::new(app.client());
    trader.register(&user).await;

    // The supervisor's page, refused to a trader.
    let admin = trader.page("/admin").await;
    assert_eq!(admin.status, 403, "{}", admin.text());
    assert!(
        admin.text().contains("This page is for the supervisor"),
        "{}",
        admin.text()
    );
    assert!(has_trader_menu(&admin.text(), &user), "{}", admin.text());

    // A form without its CSRF token, refused.
    let refused = trader
        .post("/funds", &[("amount".into(), "5.00".into())])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("This form was refused"),
        "{}",
        refused.text()
    );
    assert!(
        has_trader_menu(&refused.text(), &user),
        "{}",
        refused.text()
    );

    // A page that is not there.
    let missing = trader.page("/static/0/nothing.css").await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        has_trader_menu(&missing.text(), &user),
        "{}",
        missing.text()
    );

    // The error page's sign-out form is the session's own: it works.
    let out = trader.submit("/admin", "/logout", &[]).await;
    assert_eq!(out.status, 303, "{}", out.text());
    assert_eq!(trader.page("/").await.header("location"), Some("/login"));

    // Without a session, the same errors still render, with no menu.
    let mut anonymous = Browser::new(app.client());
    let expired = anonymous
        .post("/funds", &[("amount".into(), "5.00".into())])
        .await;
    assert_eq!(expired.status, 403, "{}", expired.text());
    assert!(
        expired.text().contains("Your session has expired"),
        "{}",
        expired.text()
    );
    let missing = anonymous.page("/static/0/nothing.css").await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        missing.text().contains("There is no such file"),
        "{}",
        missing.text()
    );
    for page in [expired, missing] {
        let text = page.text();
        assert!(text.contains("<footer"), "the layout renders:\n{text}");
        assert!(!text.contains("action=\"/logout\""), "{text}");
        assert!(!text.contains("Sign out"), "{text}");
    }
}

#[tokio::test]
async fn one_traders_session_and_tokens_never_reach_another_account() {
    let app = spawn_app();
    let (alice_id, bob_id) = (unique("alice"), unique("bob"));
    let mut alice = Browser::new(app.client());
    alice.register(&alice_id).await;
    let mut bob = Browser::new(app.client());
    bob.register(&bob_id).await;
    assert_eq!(bob.add_funds("75.00").await.status, 303);

    // Alice's pages are hers: nothing of Bob's shows, whatever she asks.
    for path in [
        "/",
        "/history",
        "/notifications",
        "/trade",
        "/triggers",
        "/tokens",
    ] {
        let page = alice.page(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        assert!(!page.text().contains(&bob_id), "{path} shows Bob");
        // A user named in the query is refused or ignored, never obeyed.
        let asked = alice.page(&format!("{path}?user={bob_id}")).await;
        assert!(!asked.text().contains(&bob_id), "{path}?user= shows Bob");
    }
    let log = alice.page(&format!("/history/log.xml?user={bob_id}")).await;
    assert_eq!(log.status, 200);
    assert!(log.text().contains(&alice_id) && !log.text().contains(&bob_id));
    // The supervisor's pages are not a trader's.
    let admin = alice.page("/admin").await;
    assert!(
        admin.status == 303 || admin.status == 403,
        "{}",
        admin.status
    );
    assert_ne!(alice.page("/admin/log.xml").await.status, 200);

    // Alice's personal token acts for Alice only.
    let (secret, revoke) = make_token(&mut alice, "script").await;
    let api = app.client();
    let as_alice = |method, path: String, body: Option<serde_json::Value>| {
        let api = api.clone();
        let secret = secret.clone();
        async move {
            api.request(
                method,
                &path,
                Some(&secret),
                body.map(|b| ("application/json", b.to_string().into_bytes())),
            )
            .await
        }
    };
    let own = as_alice(Method::GET, format!("/api/v1/users/{alice_id}"), None).await;
    assert_eq!(own.status, 200, "{}", own.text());
    let theirs = as_alice(Method::GET, format!("/api/v1/users/{bob_id}"), None).await;
    assert_eq!(theirs.status, 403, "{}", theirs.text());
    let act = json!({"command": "ADD", "user": bob_id, "amount": "1.00", "transaction_num": 1});
    let acted = as_alice(Method::POST, "/api/v1/commands".into(), Some(act)).await;
    assert_eq!(acted.status, 403, "{}", acted.text());
    let global = as_alice(Method::GET, "/api/v1/log".into(), None).await;
    assert_eq!(global.status, 403, "{}", global.text());
    assert_eq!(
        cash(&app, &bob_id).await,
        "75.00",
        "Bob's account is untouched"
    );

    // Revoked, the token is worth nothing.
    let reply = alice.submit("/tokens", &revoke, &[]).await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let after = as_alice(Method::GET, format!("/api/v1/users/{alice_id}"), None).await;
    assert_eq!(after.status, 401, "{}", after.text());

    // Signed out, the old cookie opens nothing.
    let old = alice.cookie.clone();
    let reply = alice.submit("/", "/logout", &[]).await;
    assert_eq!(reply.status, 303);
    let mut stale = Browser {
        cookie: old,
        ..Browser::new(app.client())
    };
    let page = stale.page("/").await;
    assert_eq!(page.status, 303, "an ended session is sent to sign in");
    assert_eq!(page.header("location"), Some("/login"));
}

#[tokio::test]
async fn wrong_passwords_slow_the_guesser_but_never_lock_the_owner_out() {
    let app = spawn_app();
    let user = unique("pw");
    Browser::new(app.client()).register(&user).await;
    // A stranger guesses from one address; the owner signs in from another.
    let mut stranger = Browser::at(app.client(), "203.0.113.9");
    let mut owner = Browser::at(app.client(), "198.51.100.4");
    async fn try_password(browser: &mut Browser, user: &str, password: &str) -> Reply {
        let fields = [("user", user), ("password", password)];
        let reply = browser.submit("/login", "/login", &fields).await;
        if reply.status == 303 && reply.header("location") == Some("/") {
            return reply;
        }
        // Refused: back to the sign-in page, the name kept, the password not.
        let page = browser.follow(reply).await;
        assert!(
            page.text().contains("id=\"login-error\""),
            "{}",
            page.text()
        );
        assert!(page.text().contains(&format!("value=\"{user}\"")));
        assert!(
            !page.text().contains(password),
            "a password is never shown back"
        );
        page
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            try_password(&mut stranger, &user, "wrong password")
                .await
                .status,
        );
    }
    // Three free failures; the fourth makes the next try wait 1 s, and the
    // tries made while it runs are refused without being checked.
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    let waiting = try_password(&mut owner, &user, PASSWORD).await;
    assert_eq!(waiting.status, 429, "the name waits, from any address");
    assert!(
        waiting.text().contains("try again in 1 second."),
        "{}",
        waiting.text()
    );
    // The wait ends: no lock-out. Another failure doubles it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        try_password(&mut stranger, &user, "wrong again")
            .await
            .status,
        401
    );
    let waiting = try_password(&mut owner, &user, PASSWORD).await;
    assert!(
        waiting.text().contains("try again in 2 seconds."),
        "{}",
        waiting.text()
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let signed_in = try_password(&mut owner, &user, PASSWORD).await;
    assert_eq!(
        signed_in.status, 303,
        "the owner signs in after a short wait"
    );
    // A success clears the name's failures: three free ones again.
    let mut again = Browser::at(app.client(), "203.0.113.10");
    for _ in 0..3 {
        assert_eq!(try_password(&mut again, &user, "wrong").await.status, 401);
    }

    // One address guessing many names waits too, after ten free failures;
    // another address is not slowed by it.
    let mut sprayer = Browser::at(app.client(), "192.0.2.77");
    let names: Vec<String> = (0..12).map(|n| format!("{user}-{n}")).collect();
    let mut statuses = Vec::new();
    for name in &names {
        statuses.push(try_password(&mut sprayer, name, "guess").await.status);
    }
    assert_eq!(statuses[..11], [401; 11]);
    assert_eq!(statuses[11], 429, "the address waits");
    let mut elsewhere = Browser::at(app.client(), "192.0.2.78");
    assert_eq!(
        try_password(&mut elsewhere, &names[11], "guess")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn signing_in_returns_only_to_pages_on_this_site() {
    let app = spawn_app();
    let user = unique("next");
    let mut trader = Browser::new(app.client());
    trader.register(&user).await;
    trader.submit("/", "/logout", &[]).await;

    // A protected page sends a visitor to sign in, carrying where they were.
    let mut visitor = Browser::new(app.client());
    let sent = visitor.page("/trade?symbol=ABC").await;
    assert_eq!(sent.status, 303);
    assert_eq!(
        sent.header("location"),
        Some("/login?next=%2Ftrade%3Fsymbol%3DABC")
    );
    let login = "/login?next=%2Ftrade%3Fsymbol%3DABC";
    let fields = [("user", user.as_str()), ("password", PASSWORD)];
    // A wrong password keeps the way back.
    let refused = visitor
        .submit(
            login,
            "/login",
            &[("user", user.as_str()), ("password", "nope")],
        )
        .await;
    assert_eq!(refused.header("location"), Some(login));
    let back = visitor.submit(login, "/login", &fields).await;
    assert_eq!(back.status, 303, "{}", back.text());
    assert_eq!(back.header("location"), Some("/trade?symbol=ABC"));
    assert!(
        visitor
            .page("/trade?symbol=ABC")
            .await
            .text()
            .contains("value=\"ABC\"")
    );

    // Anything naming another site goes to the dashboard instead, whether
    // in the sign-in page's link or posted straight to the form.
    for evil in [
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "/\t/evil.example",
        "evil.example",
    ] {
        let query = serde_urlencoded::to_string([("next", evil)]).unwrap();
        let mut visitor = Browser::new(app.client());
        let page = visitor.page(&format!("/login?{query}")).await.text();
        assert!(!page.contains("name=\"next\""), "{evil}: {page}");
        let mut pairs = hidden_fields(&page, "/login");
        pairs.extend([
            ("user".to_owned(), user.clone()),
            ("password".to_owned(), PASSWORD.to_owned()),
            ("next".to_owned(), evil.to_owned()),
        ]);
        let signed_in = visitor.post("/login", &pairs).await;
        assert_eq!(signed_in.status, 303, "{evil}: {}", signed_in.text());
        assert_eq!(signed_in.header("location"), Some("/"), "{evil}");
    }
}

#[tokio::test]
async fn a_sign_in_link_gives_an_api_account_a_password_once() {
    let app = spawn_app();
    let user = unique("wl");
    // A workload's user: made by a first ADD through the API, no password.
    let added = app
        .command(json!({"command": "ADD", "user": user, "amount": "10.00"}))
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let mut supervisor = Browser::new(app.client());
    let signed_in = supervisor
        .submit(
            "/admin/login",
            "/admin/login",
            &[("token", crate::helpers::TOKEN)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());

    // An unknown name is refused on the admin page.
    let unknown = supervisor
        .submit("/admin", "/admin/sign-in-links", &[("user", "nobody-here")])
        .await;
    let unknown = supervisor.follow(unknown).await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown.text().contains("There is no account called"),
        "{}",
        unknown.text()
    );

    let issued = supervisor
        .submit("/admin", "/admin/sign-in-links", &[("user", &user)])
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let html = issued.text();
    let at = html.find("id=\"link\"").expect("the link is shown");
    let link = attribute(&html[at..], "value").unwrap();
    let path = link
        .strip_prefix(&app.url)
        .unwrap_or_else(|| panic!("the link names the site as it was reached: {link}"))
        .to_owned();

    // The trader sets a password with it and is signed in.
    let mut trader = Browser::new(app.client());
    let form = trader.page(&path).await;
    assert_eq!(form.status, 200, "{}", form.text());
    let short = trader
        .submit(&path, &path, &[("password", "short"), ("confirm", "short")])
        .await;
    assert!(
        trader
            .follow(short)
            .await
            .text()
            .contains("at least 8 characters")
    );
    let set = trader
        .submit(
            &path,
            &path,
            &[("password", PASSWORD), ("confirm", PASSWORD)],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.text());
    let dashboard = trader.page("/").await;
    assert!(
        has_trader_menu(&dashboard.text(), &user),
        "{}",
        dashboard.text()
    );

    // Used: it answers 410, to a look and to a second use alike.
    let mut other = Browser::new(app.client());
    assert_eq!(other.page(&path).await.status, 410);
    let again = other.page("/login").await.text();
    let mut pairs = hidden_fields(&again, "/login");
    pairs.extend([
        ("password".to_owned(), "another password".to_owned()),
        ("confirm".to_owned(), "another password".to_owned()),
    ]);
    let reused = other.post(&path, &pairs).await;
    assert_eq!(reused.status, 410, "{}", reused.text());
    assert!(reused.text().contains("no longer works"));
    let made_up = other
        .page(&format!("/sign-in-link/{}", "ab".repeat(32)))
        .await;
    assert_eq!(made_up.status, 410);

    // The new password signs in, from anywhere.
    let mut elsewhere = Browser::new(app.client());
    let fields = [("user", user.as_str()), ("password", PASSWORD)];
    let signed_in = elsewhere.submit("/login", "/login", &fields).await;
    assert_eq!(
        signed_in.header("location"),
        Some("/"),
        "{}",
        signed_in.text()
    );

    // Changing it needs the current one, and ends the other sessions.
    let wrong = trader
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current", "not it at all"),
                ("password", "a new password"),
                ("confirm", "a new password"),
            ],
        )
        .await;
    let wrong = trader.follow(wrong).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("not your current password"));
    let changed = trader
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "a new password"),
                ("confirm", "a new password"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text());
    assert!(
        trader
            .page("/")
            .await
            .text()
            .contains("other sessions are signed out")
    );
    let ended = elsewhere.page("/").await;
    assert_eq!(ended.status, 303, "the other session is over");
    let fields = [("user", user.as_str()), ("password", "a new password")];
    let mut fresh = Browser::new(app.client());
    let signed_in = fresh.submit("/login", "/login", &fields).await;
    assert_eq!(
        signed_in.header("location"),
        Some("/"),
        "{}",
        signed_in.text()
    );
}

/// Behind either balancer, the tokens page's example names the site as the
/// trader reached it (host and port), and a sign-in counts against the
/// client's address the balancer added, not one the client claimed.
#[tokio::test]
async fn pages_behind_a_balancer_name_the_site_and_the_client_as_it_sees_them() {
    for lb in ["haproxy", "nginx"] {
        let Some(cluster) = crate::local_cluster::LocalCluster::up(lb, 2, &[]) else {
            return;
        };
        let mut browser = Browser::new((*cluster).clone());
        browser.register(&unique("host")).await;
        let created = browser
            .submit("/tokens", "/tokens", &[("name", "curl")])
            .await;
        let text = created.text();
        let site = format!("http://127.0.0.1:{}/api/v1/users/", cluster.port);
        assert!(
            text.contains(&site),
            "{lb}: the example names {site}:\n{text}"
        );
        // A client that claims an address gets counted at its real one: a
        // claimed address of its own does not reset its count.
        let user = unique("xff");
        let mut statuses = Vec::new();
        for n in 0..12 {
            let mut liar = Browser::at((*cluster).clone(), &format!("10.9.9.{n}"));
            let fields = [("user", format!("{user}{n}")), ("password", "x".to_owned())];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let refused = liar.submit("/login", "/login", &fields).await;
            statuses.push(liar.follow(refused).await.status);
        }
        assert_eq!(statuses[..11], [401; 11], "{lb}");
        assert_eq!(
            statuses[11], 429,
            "{lb}: counted at the address the balancer saw"
        );
    }
}

/// Makes a personal API token on `/tokens`; answers its secret and the
/// action of the form that revokes it.
pub async fn make_token(browser: &mut Browser, name: &str) -> (String, String) {
    let created = browser
        .submit("/tokens", "/tokens", &[("name", name)])
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let html = created.text();
    let at = html.find("id=\"secret\"").expect("the new secret is shown");
    let secret = attribute(&html[at..], "value").unwrap();
    let tokens = browser.page("/tokens").await.text();
    let end = tokens.find("/revoke\"").expect("a revoke form") + "/revoke".len();
    let start = tokens[..end].rfind('"').unwrap() + 1;
    (secret, tokens[start..end].to_owned())
}

#[tokio::test]
async fn every_api_route_checks_who_is_asking() {
    let app = spawn_app();
    let (alice_id, bob_id) = (unique("alice"), unique("bob"));
    let mut alice = Browser::new(app.client());
    alice.register(&alice_id).await;
    Browser::new(app.client()).register(&bob_id).await;
    let (token, _) = make_token(&mut alice, "matrix").await;
    let (revoked, revoke) = make_token(&mut alice, "revoked").await;
    assert_eq!(alice.submit("/tokens", &revoke, &[]).await.status, 303);

    let command = |user: &str| {
        json!({"command": "DISPLAY_SUMMARY", "user": user, "transaction_num": 1}).to_string()
    };
    // (method, path, body, what Alice's own token gets there)
    let routes: Vec<(Method, String, Option<String>, u16)> = vec![
        (
            Method::POST,
            "/api/v1/commands".into(),
            Some(command(&alice_id)),
            200,
        ),
        (
            Method::POST,
            "/api/v1/commands".into(),
            Some(command(&bob_id)),
            403,
        ),
        (Method::GET, format!("/api/v1/users/{alice_id}"), None, 200),
        (Method::GET, format!("/api/v1/users/{bob_id}"), None, 403),
        (
            Method::GET,
            format!("/api/v1/users/{alice_id}/notifications"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/api/v1/users/{bob_id}/notifications"),
            None,
            403,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{alice_id}/notifications/read"),
            Some("{}".into()),
            200,
        ),
        (
            Method::POST,
            format!("/api/v1/users/{bob_id}/notifications/read"),
            Some("{}".into()),
            403,
        ),
        (
            Method::GET,
            format!("/api/v1/users/{alice_id}/history.csv"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/api/v1/users/{bob_id}/history.csv"),
            None,
            403,
        ),
        (Method::GET, "/api/v1/quotes/ABC".into(), None, 200),
        (
            Method::GET,
            format!("/api/v1/log?user={alice_id}"),
            None,
            200,
        ),
        (Method::GET, format!("/api/v1/log?user={bob_id}"), None, 403),
        (Method::GET, "/api/v1/log".into(), None, 403),
    ];
    let http = app.client();
    for (method, path, body, own) in &routes {
        let send = |token: Option<String>| {
            let http = http.clone();
            let body = body.clone().map(|b| ("application/json", b.into_bytes()));
            let (method, path) = (method.clone(), path.clone());
            async move { http.request(method, &path, token.as_deref(), body).await }
        };
        for (who, credential, status) in [
            ("no token", None, 401),
            (
                "a wrong token",
                Some("not-a-token-of-this-system".to_owned()),
                401,
            ),
            ("a revoked token", Some(revoked.clone()), 401),
            ("Alice's token", Some(token.clone()), *own),
        ] {
            let reply = send(credential).await;
            assert_eq!(
                reply.status,
                status,
                "{method} {path} with {who}: {}",
                reply.text()
            );
            if status >= 400 {
                let code = reply.code();
                assert!(
                    code == "unauthorized" || code == "forbidden",
                    "{method} {path}: {code}"
                );
            }
        }
    }
    // Nothing Alice's token tried on Bob's account left a trace there.
    let log = app.get(&format!("/api/v1/log?user={bob_id}")).await.text();
    assert!(!log.contains("DISPLAY_SUMMARY"), "{log}");

    // A session the server does not know (expired, or made up) is no
    // session: pages send it to sign in, forms are refused.
    let mut stranger = Browser {
        cookie: Some(format!("dt_session={}", "ab".repeat(32))),
        ..Browser::new(app.client())
    };
    let page = stranger.page("/").await;
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some("/login"))
    );
    let posted = stranger
        .post(
            "/funds",
            &[("amount".into(), "5.00".into()), ("txn".into(), "7".into())],
        )
        .await;
    assert_eq!(posted.status, 403, "{}", posted.text());
}

/// The demo traders' passwords, as `serve --demo` printed them.
fn demo_passwords(banner: &[String]) -> Vec<(String, String)> {
    banner
        .iter()
        .skip_while(|line| !line.starts_with("Demo traders (passwords shown only now"))
        .skip(1)
        .map_while(|line| line.strip_prefix("  "))
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn the_demo_seeds_traders_once_with_passwords_and_moving_prices() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let demo = |ttl: &str| {
        crate::helpers::spawn_with(crate::helpers::Options {
            data_dir: Some(data_dir.clone()),
            env: vec![
                ("DAYTRADER_DEMO", "true".into()),
                ("QUOTE_TTL_SECS", ttl.into()),
            ],
            ..crate::helpers::Options::default()
        })
    };
    let app = demo("1");
    let traders = demo_passwords(&app.banner);
    let names: Vec<&str> = traders.iter().map(|(user, _)| user.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"], "{:?}", app.banner);

    // Each signs in with the password shown, and finds an account to look at.
    for (user, password) in &traders {
        let mut browser = Browser::new(app.client());
        let reply = browser
            .submit(
                "/login",
                "/login",
                &[("user", user), ("password", password)],
            )
            .await;
        assert_eq!(reply.status, 303, "{user}: {}", reply.text());
        assert!(browser.page("/").await.text().contains(user.as_str()));
    }
    let alice = app.get("/api/v1/users/alice").await.json();
    assert!(!alice["holdings"].as_array().unwrap().is_empty(), "{alice}");
    assert_eq!(
        alice["buy_triggers"].as_array().unwrap().len(),
        1,
        "{alice}"
    );
    let bob = app.get("/api/v1/users/bob").await.json();
    assert_eq!(bob["sell_triggers"].as_array().unwrap().len(), 1, "{bob}");

    // Prices move (fetched afresh each second here).
    let first = app.get("/api/v1/quotes/ABC").await.json()["price"].clone();
    let moved = crate::cluster::wait_until(std::time::Duration::from_secs(15), || async {
        let now = app.get("/api/v1/quotes/ABC").await.json()["price"].clone();
        (now != first).then_some(now)
    })
    .await;
    assert!(moved.is_some(), "ABC stayed at {first}");
    drop(app);

    // A second start makes nothing again and shows no password.
    let again = demo("10");
    assert!(
        demo_passwords(&again.banner).is_empty(),
        "{:?}",
        again.banner
    );
    assert!(
        again
            .banner
            .iter()
            .any(|l| l.contains("alice, bob, carol exist already")),
        "{:?}",
        again.banner
    );
    let log = again.get("/api/v1/log?user=alice").await.text();
    assert_eq!(
        log.matches("<command>ADD</command>").count(),
        1,
        "alice's cash was added once:\n{log}"
    );
    drop(again);

    // Without --demo: no traders, fixed prices.
    let plain = spawn_app();
    assert_eq!(plain.get("/api/v1/users/alice").await.status, 404);
    let fixed = quotes::fixed_price(engine::Symbol::parse("ABC").unwrap()).to_string();
    assert_eq!(plain.get("/api/v1/quotes/ABC").await.json()["price"], fixed);
    assert!(plain.banner.iter().all(|l| !l.contains("Demo")));
}

#[tokio::test]
async fn a_number_first_used_by_a_registration_is_refused_to_a_command() {
    let app = spawn_app();
    let mut browser = Browser::new(app.client());
    let user = unique("reuse");
    browser.page("/register").await;
    let html = browser.page("/register").await.text();
    let mut pairs = hidden_fields(&html, "/register");
    let txn: i64 = pairs
        .iter()
        .find(|(name, _)| name == "txn")
        .expect("the form's transaction number")
        .1
        .parse()
        .unwrap();
    for (name, value) in [
        ("user", &*user),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ] {
        pairs.push((name.to_owned(), value.to_owned()));
    }
    assert_eq!(browser.post("/register", &pairs).await.status, 303);
    // The API's retry of that number finds a registration, not a command:
    // a clear refusal, and nothing runs.
    let reply = app
        .command(json!({"command": "ADD", "user": user, "amount": "1.00", "transaction_num": txn}))
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "transaction_num_reused"),
        "{}",
        reply.text()
    );
    assert_eq!(cash(&app, &user).await, "0.00");
}
