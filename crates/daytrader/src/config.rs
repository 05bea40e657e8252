//! Turning flags and environment into typed settings, in one place for
//! every command that needs them.

use std::time::Duration;

use anyhow::Context;
use quotes::QuoteServerSetting;
use server::Settings;
use server::settings::Database;

use crate::cli::{DatabaseArgs, ServeArgs};

/// PostgreSQL when `DATABASE_URL` (or `DATABASE_URL_FILE`) or `DB_HOST` is
/// set, else SQLite.
pub fn database(args: &DatabaseArgs) -> anyhow::Result<Database> {
    let url = match &args.database_url_file {
        Some(path) => Some(read_secret(path)?),
        None => args.database_url.clone(),
    };
    let url = match (url, &args.db_host) {
        (Some(url), _) => url,
        (None, Some(host)) => {
            let password = match (&args.db_pass, &args.db_pass_file) {
                (Some(password), _) => Some(password.clone()),
                (None, Some(path)) => Some(read_secret(path)?),
                (None, None) => None,
            };
            store::postgres_url(
                host,
                args.db_port,
                &args.db_name,
                &args.db_user,
                password.as_deref(),
            )
        }
        (None, None) => {
            return Ok(Database::Sqlite {
                data_dir: args.data_dir.clone(),
            });
        }
    };
    anyhow::ensure!(
        url.starts_with("postgres://") || url.starts_with("postgresql://"),
        "DATABASE_URL must be a postgres:// URL"
    );
    anyhow::ensure!(args.db_pool_size >= 2, "DB_POOL_SIZE must be at least 2");
    Ok(Database::Postgres {
        url,
        pool_size: args.db_pool_size,
        committers: args.db_committers.max(1),
    })
}

/// A secret from a file (container secrets), without its trailing newline.
pub fn read_secret(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the secret in {}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !secret.is_empty(),
        "the secret file {} is empty",
        path.display()
    );
    Ok(secret.to_owned())
}

/// Redis's URL from `REDIS_URL`, or `REDIS_HOST` and `REDIS_PORT`, with the
/// password of `REDIS_PASSWORD` or `REDIS_PASSWORD_FILE` put in it.
fn redis_url(args: &ServeArgs) -> anyhow::Result<Option<String>> {
    let url = match (&args.redis_url, &args.redis_host) {
        (Some(url), _) => url.clone(),
        (None, Some(host)) => cache::redis_url(host, args.redis_port),
        (None, None) => {
            anyhow::ensure!(
                args.redis_password.is_none() && args.redis_password_file.is_none(),
                "a Redis password is set but no Redis: set REDIS_URL or REDIS_HOST too"
            );
            return Ok(None);
        }
    };
    let password = match (&args.redis_password, &args.redis_password_file) {
        (Some(password), _) => Some(password.clone()),
        (None, Some(path)) => Some(read_secret(path)?),
        (None, None) => None,
    };
    Ok(Some(match password {
        Some(password) => cache::redis_url_with_password(&url, &password)?,
        None => url,
    }))
}

pub fn settings(args: ServeArgs) -> anyhow::Result<Settings> {
    let admin_token = match (&args.admin_token, &args.admin_token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => Some(read_secret(path)?.trim().to_owned()),
        (None, None) => None,
    };
    if let Some(token) = &admin_token {
        anyhow::ensure!(
            token.len() >= 16,
            "the admin token must be at least 16 characters long"
        );
    }
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.quotes.quote_fault_rate),
        "QUOTE_FAULT_RATE must be between 0 and 1"
    );
    let database = database(&args.database)?;
    let mut settings = Settings::embedded(&args.database.data_dir);
    settings.refresh_triggers = matches!(database, Database::Sqlite { .. });
    settings.database = database;
    settings.redis_url = redis_url(&args)?;
    settings.cache_prefix = args.redis_prefix;
    settings.redis_timeout = Duration::from_millis(args.redis_timeout_ms);
    settings.listen = std::net::SocketAddr::new(args.bind, args.port);
    if let Some(id) = args.instance_id {
        anyhow::ensure!(
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()),
            "INSTANCE_ID must be 1 to 64 visible ASCII characters"
        );
        settings.instance_id = id;
    }
    settings.admin_token = admin_token;
    // The demo's market moves; everything else gets fixed prices, which
    // make runs reproducible.
    settings.quote_server = args.quotes.quote_server.unwrap_or(if args.demo {
        QuoteServerSetting::Builtin(quotes::BuiltinPrices::Walk)
    } else {
        QuoteServerSetting::Builtin(quotes::BuiltinPrices::Fixed)
    });
    settings.demo = args.demo;
    settings.builtin_quotes = quotes::BuiltinConfig {
        latency: args.quotes.quote_latency.into(),
        fault_rate: args.quotes.quote_fault_rate,
        seed: args.quotes.quote_seed,
    };
    settings.quote_ttl =
        Duration::from_secs(
            args.quotes
                .quote_ttl_secs
                .unwrap_or(if args.demo { 10 } else { 60 }),
        );
    settings.max_batch = args.max_batch.max(1);
    settings.trigger_refresh = Duration::from_secs(args.trigger_refresh_secs.max(1));
    settings.events.keepalive = Duration::from_millis(args.events.events_keepalive_ms);
    settings.events.bus.per_user_streams = args.events.events_per_user as usize;
    settings.events.bus.max_streams = args.events.events_max_streams as usize;
    Ok(settings)
}
