//! The HTTP command decoder: a `POST /api/v1/commands` body (JSON) into a
//! command request, as the server does it (`engine::CommandBody`).
//!
//! Input that starts with `{` is a JSON body. Anything else is split on
//! newlines into the body's fields (command, user, symbol, amount, file
//! name, transaction number), to reach past JSON syntax into validation.

#![no_main]

use std::borrow::Cow;

use daytrader_fuzz::{check_amount, check_request, check_symbol_text, check_user_text};
use engine::{CommandBody, RejectKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = if data.first() == Some(&b'{') {
        match CommandBody::from_json(data) {
            Ok(body) => {
                // What the server reads, it could write back unchanged.
                let json = serde_json::to_vec(&body).expect("a body serializes");
                let back: CommandBody = serde_json::from_slice(&json).expect("and parses");
                assert_eq!(back, body);
                body
            }
            Err(_) => return,
        }
    } else {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let mut fields = text.split('\n').map(Cow::Borrowed);
        CommandBody {
            command: fields.next().unwrap_or_default(),
            user: fields.next(),
            symbol: fields.next(),
            amount: fields.next(),
            filename: fields.next(),
            transaction_num: fields.next().and_then(|n| n.parse().ok()),
        }
    };
    for text in [&body.user, &body.symbol, &body.amount]
        .into_iter()
        .flatten()
    {
        check_user_text(text);
        check_symbol_text(text);
        check_amount(text);
    }
    match body.decode() {
        Ok((request, transaction_num)) => {
            assert_eq!(transaction_num, body.transaction_num);
            assert!(transaction_num.is_none_or(|n| n >= 1));
            assert!(request.name.as_str().eq_ignore_ascii_case(&body.command));
            check_request(
                &request,
                body.user.as_deref(),
                body.symbol.as_deref(),
                body.amount.as_deref(),
                body.filename.as_deref(),
            );
        }
        // A body that cannot be decoded is a malformed request: a 400 with
        // a code and a sentence, never anything else.
        Err(rejection) => {
            assert_eq!(rejection.kind(), RejectKind::Malformed, "{rejection:?}");
            assert!(!rejection.message.is_empty());
        }
    }
});
