//! The legacy quote service's wire format: one request line, one reply line.
//!
//! ```text
//! request: SYMBOL,userid\n
//! reply:   price,SYMBOL,userid,timestamp_ms,cryptokey\n
//! ```
//!
//! The legacy server is known to answer with garbage now and then, so a reply
//! is trusted only after [`parse_reply`] has checked every field of it.

use engine::{Money, Symbol, SymbolError, UserId, UserIdError};

use crate::QuoteError;

/// The longest reply line accepted, line ending included. A real reply is
/// under 200 bytes; the bound keeps a misbehaving server from making the
/// client buffer without limit.
pub const MAX_REPLY_LEN: usize = 512;
/// The longest request line a server accepts, line ending included.
pub const MAX_REQUEST_LEN: usize = 256;
/// The longest cryptokey accepted (the legacy server's are 56 characters).
pub const MAX_CRYPTOKEY_LEN: usize = 128;
/// Server timestamps must fall in [2000-01-01, 2100-01-01) — the window the
/// audit-log schema accepts — so a wild clock is caught here and not in the
/// log.
pub const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;
pub const MAX_TIMESTAMP_MS: i64 = 4_102_444_800_000;

/// A reply that passed every check of [`parse_reply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteReply {
    pub price: Money,
    pub symbol: Symbol,
    pub user: String,
    /// The quote server's clock when it priced the quote (Unix ms).
    pub timestamp_ms: i64,
    pub cryptokey: String,
}

impl QuoteReply {
    /// The reply as the server sends it, line ending included.
    pub fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{}\n",
            self.price, self.symbol, self.user, self.timestamp_ms, self.cryptokey
        )
    }
}

/// The request line for `symbol` on behalf of `user`, line ending included.
/// Both types are validated on construction, so the line cannot carry a
/// stray comma or newline.
pub fn request_line(symbol: Symbol, user: &UserId) -> String {
    format!("{symbol},{user}\n")
}

/// Why a server refused a request line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("a request is one line: SYMBOL,userid")]
    Shape,
    #[error("{0}")]
    Symbol(#[from] SymbolError),
    #[error("{0}")]
    User(#[from] UserIdError),
}

/// Parses a request line (`SYMBOL,userid`, line ending optional); the symbol
/// is upper-cased.
pub fn parse_request(line: &str) -> Result<(Symbol, UserId), RequestError> {
    let (symbol, user) = strip_line_ending(line)
        .split_once(',')
        .ok_or(RequestError::Shape)?;
    Ok((Symbol::parse(symbol)?, UserId::parse(user)?))
}

/// Validates a reply line against the request it answers.
///
/// Never panics, whatever the input: the line comes from a server that is
/// known to misbehave.
pub fn parse_reply(
    line: &str,
    expected_symbol: Symbol,
    expected_user: &str,
) -> Result<QuoteReply, QuoteError> {
    if line.len() > MAX_REPLY_LEN {
        return Err(QuoteError::garbage(format!(
            "the reply is {} bytes long, more than {MAX_REPLY_LEN}",
            line.len()
        )));
    }
    let body = strip_line_ending(line);
    if let Some(message) = body.strip_prefix("error:") {
        return Err(QuoteError::garbage(format!(
            "it refused the request: {}",
            excerpt(message.trim())
        )));
    }
    let fields: Vec<&str> = body.split(',').collect();
    let &[price, symbol, user, timestamp, cryptokey] = fields.as_slice() else {
        return Err(QuoteError::garbage(format!(
            "expected 5 comma-separated fields, got {} in {}",
            fields.len(),
            excerpt(body)
        )));
    };
    let price = Money::parse_amount(price).map_err(|why| {
        QuoteError::garbage(format!(
            "the price {} is unacceptable: {why}",
            excerpt(price)
        ))
    })?;
    if symbol != expected_symbol.as_str() {
        return Err(QuoteError::WrongSymbol {
            expected: expected_symbol,
            got: excerpt_raw(symbol).to_owned(),
        });
    }
    if user != expected_user {
        return Err(QuoteError::WrongUser {
            expected: expected_user.to_owned(),
            got: excerpt_raw(user).to_owned(),
        });
    }
    let timestamp_ms = parse_timestamp(timestamp)?;
    check_cryptokey(cryptokey)?;
    Ok(QuoteReply {
        price,
        symbol: expected_symbol,
        user: user.to_owned(),
        timestamp_ms,
        cryptokey: cryptokey.to_owned(),
    })
}

/// Removes one trailing `\n` or `\r\n`.
fn strip_line_ending(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

fn parse_timestamp(text: &str) -> Result<i64, QuoteError> {
    let unacceptable = || {
        QuoteError::garbage(format!(
            "the timestamp {} is not Unix milliseconds between the years 2000 and 2100",
            excerpt(text)
        ))
    };
    // `i64::from_str` would also take a sign; the protocol has none.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unacceptable());
    }
    match text.parse::<i64>() {
        Ok(ms) if (MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS).contains(&ms) => Ok(ms),
        _ => Err(unacceptable()),
    }
}

fn check_cryptokey(key: &str) -> Result<(), QuoteError> {
    if key.is_empty() {
        return Err(QuoteError::garbage("the cryptokey is empty"));
    }
    if key.len() > MAX_CRYPTOKEY_LEN {
        return Err(QuoteError::garbage(format!(
            "the cryptokey is {} characters long, more than {MAX_CRYPTOKEY_LEN}",
            key.len()
        )));
    }
    // It goes into the audit log verbatim, so only visible ASCII is allowed.
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(QuoteError::garbage(format!(
            "the cryptokey {} has characters other than printable ASCII",
            excerpt(key)
        )));
    }
    Ok(())
}

/// How much of an offending field an error message quotes: enough to
/// recognise it, not so much that a hostile reply floods the logs.
const EXCERPT_CHARS: usize = 40;

fn excerpt_raw(text: &str) -> &str {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A quoted, escaped excerpt of untrusted text for an error message.
fn excerpt(text: &str) -> String {
    let cut = excerpt_raw(text);
    if cut.len() < text.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: &str = "ZcwKUqtHPq/PaprbZRKrFSw+zuIQiYA5XlEfLUkxkUIsWaN0xSiiWw==";

    fn abc() -> Symbol {
        Symbol::parse("ABC").unwrap()
    }

    fn parse(line: &str) -> Result<QuoteReply, QuoteError> {
        parse_reply(line, abc(), "jsmith")
    }

    fn reason_of(result: Result<QuoteReply, QuoteError>) -> String {
        match result {
            Err(QuoteError::Garbage { reason }) => reason,
            other => panic!("expected garbage, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_legacy_example() {
        let reply = parse(&format!("58.17,ABC,jsmith,1330546050315,{KEY}\n")).unwrap();
        assert_eq!(
            reply,
            QuoteReply {
                price: Money::from_cents(5817),
                symbol: abc(),
                user: "jsmith".into(),
                timestamp_ms: 1_330_546_050_315,
                cryptokey: KEY.into(),
            }
        );
    }

    #[test]
    fn tolerates_crlf_no_line_ending_and_trailing_zeros() {
        for line in [
            format!("58.17,ABC,jsmith,1330546050315,{KEY}\r\n"),
            format!("58.17,ABC,jsmith,1330546050315,{KEY}"),
            format!("58.170,ABC,jsmith,1330546050315,{KEY}\n"),
        ] {
            assert_eq!(
                parse(&line).unwrap().price,
                Money::from_cents(5817),
                "{line:?}"
            );
        }
        let whole = parse(&format!("7,ABC,jsmith,1330546050315,{KEY}\n")).unwrap();
        assert_eq!(whole.price, Money::from_cents(700));
    }

    #[test]
    fn rejects_bad_prices() {
        for price in [
            "N/A",
            "",
            "-58.17",
            "0",
            "0.00",
            "58.175",
            "1e3",
            " 58.17",
            "1000000000.01",
        ] {
            let reason = reason_of(parse(&format!("{price},ABC,jsmith,1330546050315,{KEY}\n")));
            assert!(reason.contains("price"), "{price:?}: {reason}");
        }
        assert!(parse(&format!("1000000000.00,ABC,jsmith,1330546050315,{KEY}\n")).is_ok());
    }

    #[test]
    fn rejects_the_wrong_symbol_or_user() {
        match parse(&format!("58.17,ABD,jsmith,1330546050315,{KEY}\n")) {
            Err(QuoteError::WrongSymbol { expected, got }) => {
                assert_eq!((expected, got.as_str()), (abc(), "ABD"))
            }
            other => panic!("{other:?}"),
        }
        // The echo must be exact: a lower-case echo is not what was asked.
        assert!(matches!(
            parse(&format!("58.17,abc,jsmith,1330546050315,{KEY}\n")),
            Err(QuoteError::WrongSymbol { .. })
        ));
        match parse(&format!("58.17,ABC,jsmitj,1330546050315,{KEY}\n")) {
            Err(QuoteError::WrongUser { expected, got }) => {
                assert_eq!((expected.as_str(), got.as_str()), ("jsmith", "jsmitj"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_the_wrong_number_of_fields() {
        for line in [
            String::new(),
            "\n".to_owned(),
            "58.17,ABC,jsmith\n".to_owned(),
            format!("58.17,ABC,jsmith,1330546050315,{KEY},extra\n"),
        ] {
            assert!(
                reason_of(parse(&line)).contains("5 comma-separated fields"),
                "{line:?}"
            );
        }
        // A second line is not a line ending: it ends up in the last field.
        reason_of(parse(&format!("58.17,ABC,jsmith,1330546050315,{KEY}\n\n")));
    }

    #[test]
    fn rejects_bad_timestamps() {
        for ts in [
            "",
            "abc",
            "-1",
            "+1330546050315",
            "1330546050315.0",
            "0",
            "946684799999",
            "4102444800000",
            "99999999999999999999",
        ] {
            let reason = reason_of(parse(&format!("58.17,ABC,jsmith,{ts},{KEY}\n")));
            assert!(reason.contains("timestamp"), "{ts:?}: {reason}");
        }
        assert!(parse(&format!("58.17,ABC,jsmith,946684800000,{KEY}\n")).is_ok());
    }

    #[test]
    fn rejects_bad_cryptokeys() {
        let long = "k".repeat(MAX_CRYPTOKEY_LEN + 1);
        for key in [
            "",
            "with space",
            "tab\there",
            "caf\u{e9}",
            "nul\0",
            "bell\u{7}",
            long.as_str(),
        ] {
            let reason = reason_of(parse(&format!("58.17,ABC,jsmith,1330546050315,{key}\n")));
            assert!(reason.contains("cryptokey"), "{key:?}: {reason}");
        }
        let longest = "k".repeat(MAX_CRYPTOKEY_LEN);
        assert!(parse(&format!("58.17,ABC,jsmith,1330546050315,{longest}\n")).is_ok());
    }

    #[test]
    fn rejects_overlong_lines_and_error_replies() {
        let line = format!(
            "58.17,ABC,jsmith,1330546050315,{KEY}{}\n",
            " ".repeat(MAX_REPLY_LEN)
        );
        assert!(reason_of(parse(&line)).contains("bytes long"));
        let reason = reason_of(parse("error: A stock symbol is 1 to 3 letters A-Z.\n"));
        assert!(reason.contains("refused"), "{reason}");
    }

    #[test]
    fn quotes_offending_text_escaped_and_short() {
        let reason = reason_of(parse(&format!(
            "{},ABC,jsmith,1330546050315,{KEY}\n",
            "\u{1b}x".repeat(100)
        )));
        assert!(!reason.contains('\u{1b}'), "{reason}");
        assert!(reason.len() < 400, "{reason}");
    }

    #[test]
    fn parses_requests() {
        let (symbol, user) = parse_request("abc,jsmith\r\n").unwrap();
        assert_eq!((symbol, user.as_str()), (abc(), "jsmith"));
        assert_eq!(request_line(symbol, &user), "ABC,jsmith\n");
        assert_eq!(parse_request("ABC"), Err(RequestError::Shape));
        assert_eq!(
            parse_request("ABCD,jsmith"),
            Err(RequestError::Symbol(SymbolError))
        );
        assert_eq!(
            parse_request("ABC,js,mith"),
            Err(RequestError::User(UserIdError))
        );
        assert_eq!(parse_request("ABC,"), Err(RequestError::User(UserIdError)));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_reply(line in any::<String>()) {
            let _ = parse(&line);
        }

        #[test]
        fn never_panics_on_reply_shaped_input(line in "[-0-9.,A-Za-z_/+= \r\n]{0,80}") {
            let _ = parse(&line);
        }

        #[test]
        fn never_panics_on_any_request(line in any::<String>()) {
            let _ = parse_request(&line);
        }

        #[test]
        fn formatted_replies_round_trip(
            cents in 1..=Money::MAX_AMOUNT.cents(),
            symbol in "[A-Z]{1,3}",
            user in "[A-Za-z0-9_.-]{1,64}",
            timestamp_ms in MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS,
            cryptokey in "[!-+--~]{1,128}",
        ) {
            let reply = QuoteReply {
                price: Money::from_cents(cents),
                symbol: Symbol::parse(&symbol).unwrap(),
                user,
                timestamp_ms,
                cryptokey,
            };
            let line = reply.to_line();
            let parsed = parse_reply(&line, reply.symbol, &reply.user).map_err(|e| e.to_string());
            prop_assert_eq!(parsed, Ok(reply.clone()));
            let crlf = format!("{}\r\n", line.trim_end());
            let parsed = parse_reply(&crlf, reply.symbol, &reply.user).map_err(|e| e.to_string());
            prop_assert_eq!(parsed, Ok(reply));
        }
    }
}
