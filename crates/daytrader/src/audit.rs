//! `daytrader audit verify`: replays the audit log through the engine and
//! compares every stored account with it (`store::audit`), printing each
//! difference.

use std::process::ExitCode;
use std::time::Duration;

use server::settings::Database;
use store::Reader;

use crate::cli::DatabaseArgs;
use crate::config;

/// Differences printed before the rest are only counted.
const SHOWN: usize = 200;

pub async fn verify(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    let database = config::database(&args)?;
    // Keeps a PostgreSQL store (and its pool) alive while reading.
    let (reader, _store) = open(&database).await?;
    let report = store::audit::audit(&reader).await?;
    for difference in report.differences.iter().take(SHOWN) {
        println!("{difference}");
    }
    if report.differences.len() > SHOWN {
        println!(
            "... and {} more differences",
            report.differences.len() - SHOWN
        );
    }
    println!(
        "{} log rows replayed, {} accounts compared: {}",
        report.rows,
        report.accounts,
        if report.differences.is_empty() {
            "the stored state is exactly what the log says".to_owned()
        } else {
            format!("{} differences", report.differences.len())
        }
    );
    Ok(if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn open(database: &Database) -> anyhow::Result<(Reader, Option<store::PgStore>)> {
    match database {
        Database::Sqlite { data_dir } => {
            Ok((Reader::Sqlite(store::SqliteReader::open(data_dir)?), None))
        }
        Database::Postgres { url, .. } => {
            let store = store::PgStore::connect(store::PgOptions::new(
                url.clone(),
                "audit".into(),
                store::system_clock(),
            ));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !store.is_ready() {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "PostgreSQL did not answer within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok((Reader::Postgres(store.reader().clone()), Some(store)))
        }
    }
}
