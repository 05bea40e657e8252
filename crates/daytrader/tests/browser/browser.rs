//! A headless Chromium of the test's own: the system's chromedriver on a
//! free port, a fresh profile, and the few steps the tests repeat (find
//! with a bounded wait, fill a form, wait for a text, take a screenshot).

use std::any::Any;
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::FutureExt;
use thirtyfour::prelude::*;

use crate::infra::{free_port, skip, wait_for_port};

/// How long any element or text may take to appear.
pub const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);
/// The window's size, as `--window-size` sets it.
const WINDOW: (u32, u32) = (1280, 900);

/// Debian's, overridable for other systems.
fn program(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Whether chromium and chromedriver are installed: skips (or, in CI,
/// fails) when one is not, before anything is started for nothing.
pub fn available() -> Option<()> {
    for (variable, default, package) in [
        ("CHROMIUM", "/usr/bin/chromium", "chromium"),
        ("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver"),
    ] {
        let path = program(variable, default);
        if !path.exists() {
            return skip(&format!("{} (Debian package {package})", path.display()));
        }
    }
    Some(())
}

/// The running chromedriver, in a process group of its own so that the
/// browsers it started go with it when a test fails half-way.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Option<Chromedriver> {
        let path = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        if !path.exists() {
            return skip(&format!(
                "{} (Debian package chromium-driver)",
                path.display()
            ));
        }
        let port = free_port();
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => return skip(&format!("{} ({error})", path.display())),
        };
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_for_port(port);
        Some(driver)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// How a scenario ended: its panic, if it failed.
pub type Outcome = Result<(), Box<dyn Any + Send>>;

/// Runs `scenario` in a browser of its own on the site at `base`; the
/// browser is closed whatever happens. A missing browser skips it (or, in
/// CI, fails).
pub async fn run<F>(test: &'static str, base: &str, scenario: F) -> Outcome
where
    F: AsyncFnOnce(&Browser),
{
    if !selected(test) {
        eprintln!("browser scenario {test}: not selected by BROWSER_SCENARIOS");
        return Ok(());
    }
    let Some(browser) = Browser::start(test, base.to_owned()).await else {
        return Ok(());
    };
    let outcome = AssertUnwindSafe(scenario(&browser)).catch_unwind().await;
    browser.finish(outcome).await
}

/// Whether `BROWSER_SCENARIOS` (a comma-separated list of scenario names,
/// for working on one scenario) selects this one; unset selects all.
fn selected(test: &str) -> bool {
    match std::env::var("BROWSER_SCENARIOS") {
        Ok(list) => list.split(',').any(|name| name.trim() == test),
        Err(_) => true,
    }
}

pub struct Browser {
    driver: WebDriver,
    /// The balancer's URL.
    pub base: String,
    /// Names the screenshots.
    test: &'static str,
    _chromedriver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(test: &'static str, base: String) -> Option<Browser> {
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        if !chromium.exists() {
            return skip(&format!("{} (Debian package chromium)", chromium.display()));
        }
        let chromedriver = Chromedriver::start()?;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(chromium.to_str().unwrap()).unwrap();
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--window-size={},{}", WINDOW.0, WINDOW.1))
            .unwrap();
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
            .unwrap();
        let driver = WebDriver::new(chromedriver.url.clone(), caps)
            .await
            .unwrap_or_else(|e| panic!("chromedriver starts {}: {e}", chromium.display()));
        Some(Browser {
            driver,
            base,
            test,
            _chromedriver: chromedriver,
            _profile: profile,
        })
    }

    /// Ends the session; a failed scenario first leaves a screenshot of
    /// where it stopped.
    async fn finish(self, outcome: Outcome) -> Outcome {
        if outcome.is_err() {
            let url = self.driver.current_url().await.map(|u| u.to_string());
            eprintln!("{}: the scenario stopped at {url:?}", self.test);
            self.shot("failed").await;
        }
        let Browser {
            driver,
            _chromedriver,
            ..
        } = self;
        let _ = driver.quit().await;
        drop(_chromedriver);
        outcome
    }

    pub fn driver(&self) -> &WebDriver {
        &self.driver
    }

    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.driver
            .goto(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.driver.current_url().await.unwrap().path().to_owned()
    }

    /// The first element `css` matches, waiting for it.
    pub async fn el(&self, css: &str) -> WebElement {
        match self
            .driver
            .query(By::Css(css))
            .wait(WAIT, POLL)
            .first()
            .await
        {
            Ok(element) => element,
            Err(error) => panic!(
                "no `{css}` on {} within {WAIT:?}: {error}",
                self.path().await
            ),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.driver.find_all(By::Css(css)).await.unwrap().is_empty()
    }

    /// Does `action` to the first element `css` matches. A live page may
    /// replace the element between finding it and acting on it (a stale
    /// element, which the action did not reach): it is then found again.
    async fn on<T, F, Fut>(&self, css: &str, what: &str, action: F) -> T
    where
        F: Fn(WebElement) -> Fut,
        Fut: std::future::Future<Output = WebDriverResult<T>>,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            match action(self.el(css).await).await {
                Ok(done) => return done,
                Err(error)
                    if error.to_string().contains("stale element") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(POLL).await
                }
                Err(error) => panic!("{what} `{css}`: {error}"),
            }
        }
    }

    /// The text of the first element `css` matches.
    pub async fn text(&self, css: &str) -> String {
        self.on(css, "read", |e| async move { e.text().await })
            .await
    }

    /// The texts of every element `css` matches, read in the page at one
    /// moment, so that a live update cannot replace them half-way.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let js = "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText);";
        self.driver
            .execute(js, vec![serde_json::json!(css)])
            .await
            .and_then(|texts| texts.convert())
            .unwrap_or_else(|e| panic!("the texts of `{css}`: {e}"))
    }

    /// Keeps a copy of the form `css` matches as it stands now, under
    /// `name`, to post later (a page without script would still show it).
    pub async fn save_form(&self, name: &str, css: &str) {
        self.script(&format!(
            "window[{name:?}] = document.querySelector({css:?}).cloneNode(true);"
        ))
        .await;
    }

    /// Posts the form kept under `name` by pressing its `button` (a CSS
    /// selector within it), whatever the page shows now.
    pub async fn post_saved_form(&self, name: &str, button: &str) {
        self.script(&format!(
            "var form = window[{name:?}]; form.hidden = true; document.body.appendChild(form); \
             form.querySelector({button:?}).click();"
        ))
        .await;
    }

    /// Waits until an element `css` matches shows `needle`; returns its
    /// whole text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut seen = Vec::new();
            for element in self.driver.find_all(By::Css(css)).await.unwrap_or_default() {
                // The page may be replaced between finding and reading.
                if let Ok(text) = element.text().await {
                    if text.contains(needle) {
                        return text;
                    }
                    seen.push(text);
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no `{css}` saying {needle:?} on {} within {WAIT:?}; saw {seen:?}",
                    self.path().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the browser shows `path`.
    pub async fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still on {now}, not {path}, after {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `value` into the field, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        self.on(css, "fill", |field| async move {
            field.clear().await?;
            field.send_keys(value).await
        })
        .await
    }

    pub async fn click(&self, css: &str) {
        self.on(css, "click", |e| async move { e.click().await })
            .await
    }

    /// Sends the trade page's (shown) `side` order form, "buy" or "sell",
    /// for `amount` of `symbol`.
    pub async fn send_order(&self, side: &str, symbol: &str, amount: &str) {
        self.fill(&format!("#{side}-symbol"), symbol).await;
        self.fill(&format!("#{side}-amount"), amount).await;
        self.click(&format!("form[action='/trade/{side}'] button[type=submit]"))
            .await;
    }

    /// Sets aside `amount` for a `side` trigger on `symbol` from the
    /// triggers page (shown), and waits for its row, which needs a price.
    pub async fn set_trigger_amount(&self, side: &str, symbol: &str, amount: &str) {
        self.fill(&format!("#{side}-trigger-symbol"), symbol).await;
        self.fill(&format!("#{side}-trigger-amount"), amount).await;
        self.click(&format!(
            "form[action='/triggers/{side}/amount'] button[type=submit]"
        ))
        .await;
        self.wait_text(&format!("#trigger-{side}-{symbol}"), "Needs a price")
            .await;
    }

    /// Arms the `side` trigger on `symbol` at `price` from its row on the
    /// triggers page.
    pub async fn arm_trigger(&self, side: &str, symbol: &str, price: &str) {
        self.fill(&format!("#price-{side}-{symbol}"), price).await;
        self.click(&format!(
            "#trigger-{side}-{symbol} form[action='/triggers/{side}/price'] button"
        ))
        .await;
    }

    /// Sends the supervisor's sign-in form (shown) with `token`.
    pub async fn send_supervisor_token(&self, token: &str) {
        self.fill("#token", token).await;
        self.click("form[action='/admin/login'] button[type=submit]")
            .await;
    }

    /// Signs in as the supervisor with `token`, and waits for /admin.
    pub async fn supervisor_sign_in(&self, token: &str) {
        self.goto("/admin/login").await;
        self.send_supervisor_token(token).await;
        self.wait_path("/admin").await;
    }

    /// Runs a script in the page.
    pub async fn script(&self, js: &str) {
        self.driver
            .execute(js, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{js}: {e}"));
    }

    /// The instance the footer says served the page.
    pub async fn instance(&self) -> String {
        let instance = self.text("footer .instance").await;
        assert!(
            ["web1", "web2", "web3"].contains(&instance.as_str()),
            "the footer names one of the three instances, not {instance:?}"
        );
        instance
    }

    pub async fn cookie(&self, name: &str) -> String {
        self.driver
            .get_named_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("cookie {name}: {e}"))
            .value
    }

    /// Shows each of `paths` in a phone's viewport (390 × 844 CSS pixels)
    /// and checks that nothing is wider than the screen (no sideways
    /// scrolling of the page, no menu cut off); saves a picture of each.
    pub async fn fits_a_phone(&self, paths: &[&str]) {
        const PHONE: (u32, u32) = (390, 844);
        self.driver
            .set_window_rect(0, 0, PHONE.0, PHONE.1)
            .await
            .unwrap_or_else(|e| panic!("a phone-sized window: {e}"));
        for path in paths {
            self.goto(path).await;
            let widths = self
                .driver
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth];",
                    Vec::new(),
                )
                .await
                .and_then(|r| r.convert::<(u32, u32)>())
                .unwrap_or_else(|e| panic!("the page's width: {e}"));
            assert!(
                widths.0 <= widths.1,
                "{path} is {} px wide on a {} px screen",
                widths.0,
                widths.1
            );
            // A file name: `/account/password` is `account-password`.
            let page = path.trim_start_matches('/').split('?').next().unwrap_or("");
            let page = page.replace('/', "-");
            let step = format!(
                "phone-{}",
                if page.is_empty() { "dashboard" } else { &page }
            );
            let file = screenshots().join(format!("{}-{step}.png", self.test));
            self.driver
                .screenshot(&file)
                .await
                .unwrap_or_else(|e| panic!("screenshot {}: {e}", file.display()));
        }
        let (width, height) = WINDOW;
        let _ = self.driver.set_window_rect(0, 0, width, height).await;
    }

    /// Saves `target/browser-screenshots/<test>-<step>.png`: the whole
    /// page, the window stretched to its height for the picture.
    pub async fn shot(&self, step: &str) {
        let path = screenshots().join(format!("{}-{step}.png", self.test));
        let (width, height) = WINDOW;
        let page = self
            .driver
            .execute(
                "return [document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight];",
                Vec::new(),
            )
            .await
            .and_then(|r| r.convert::<(u32, u32)>());
        let tall = page.map_or(height, |(page, frame)| (page + frame).clamp(height, 4000));
        if tall > height {
            let _ = self.driver.set_window_rect(0, 0, width, tall).await;
        }
        let taken = self.driver.screenshot(&path).await;
        if tall > height {
            let _ = self.driver.set_window_rect(0, 0, width, height).await;
        }
        if let Err(error) = taken {
            panic!("screenshot {}: {error}", path.display());
        }
    }
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
