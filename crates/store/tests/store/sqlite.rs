//! What only the embedded back end promises.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use store::StoreError;

use crate::fixture::{T0, open_sqlite};

#[tokio::test]
async fn one_data_directory_serves_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(T0));
    let _first = open_sqlite(dir.path(), &now).unwrap();
    let second = open_sqlite(dir.path(), &now);
    let Err(StoreError::Unavailable(message)) = second else {
        panic!("the second open must fail")
    };
    assert!(message.contains("another DayTrader process"), "{message}");
}
