//! Tampering with a stored account the way an intruder (or a bug) would:
//! its balance changes with no audit-log entry behind it.

use engine::{Account, Command, Context, Money};

/// The hex of a stored account, one cent richer.
pub fn add_a_cent(hex_state: &str) -> String {
    let bytes = hex_decode(hex_state.trim());
    let mut account: Account = postcard::from_bytes(&bytes).expect("a stored account");
    let ctx = Context {
        now_ms: 0,
        txn: 1,
        price: None,
    };
    account
        .execute(
            &Command::Add {
                amount: Money::from_cents(1),
            },
            &ctx,
            &mut Vec::new(),
        )
        .unwrap();
    postcard::to_allocvec(&account)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
