//! Properties shared by the fuzz targets: what must hold of anything the
//! parsers accept. Each check panics (a crash for libFuzzer) when a property
//! is broken.

use engine::{Arg, CommandName, CommandRequest, MAX_FILENAME, Money, Symbol, UserId};

/// An independent model of the amount rule (SPEC.md section 1): positive,
/// at most two decimals (further zeros are harmless), at most
/// 1,000,000,000.00, digits and one optional point only. Its value in cents,
/// or `None` when the text must be refused.
pub fn model_amount(text: &str) -> Option<i64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > 2 && !fraction[2..].bytes().all(|b| b == b'0') {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    // More than 12 significant digits is more than the cap, whatever they are.
    if whole.len() > 12 {
        return None;
    }
    let mut cents: i64 = whole
        .bytes()
        .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'))
        * 100;
    let mut tens = 10;
    for b in fraction.bytes().take(2) {
        cents += i64::from(b - b'0') * tens;
        tens /= 10;
    }
    (1..=Money::MAX_AMOUNT.cents())
        .contains(&cents)
        .then_some(cents)
}

/// `Money::parse_amount` agrees with the model, and an accepted amount
/// round-trips through its two-decimal text to the same cents.
pub fn check_amount(text: &str) {
    let parsed = Money::parse_amount(text);
    assert_eq!(
        parsed.ok().map(Money::cents),
        model_amount(text),
        "amount {text:?}: {parsed:?}"
    );
    if let Ok(money) = parsed {
        let shown = money.to_string();
        let (_, decimals) = shown.split_once('.').expect("two decimals");
        assert_eq!(decimals.len(), 2, "{shown:?}");
        assert_eq!(Money::parse_amount(&shown), Ok(money), "{shown:?}");
    }
}

/// An accepted symbol is 1 to 3 upper-case ASCII letters: the input,
/// upper-cased.
pub fn check_symbol(input: &str, symbol: Symbol) {
    let text = symbol.as_str();
    assert!(
        (1..=3).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase()),
        "symbol {text:?} from {input:?}"
    );
    assert_eq!(text, input.to_ascii_uppercase(), "symbol from {input:?}");
    assert_eq!(Symbol::parse(text), Ok(symbol));
}

/// Symbol parsing accepts exactly 1 to 3 ASCII letters.
pub fn check_symbol_text(input: &str) {
    let valid = (1..=3).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_alphabetic());
    match Symbol::parse(input) {
        Ok(symbol) => {
            assert!(valid, "accepted symbol {input:?}");
            check_symbol(input, symbol);
        }
        Err(_) => assert!(!valid, "refused symbol {input:?}"),
    }
}

/// An accepted user id is exactly the input, 1 to 64 of `[A-Za-z0-9_.-]`.
pub fn check_user(input: &str, user: &UserId) {
    let text = user.as_str();
    assert_eq!(text, input);
    assert!(
        (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
        "user {text:?}"
    );
}

/// User id parsing accepts exactly the documented alphabet and length.
pub fn check_user_text(input: &str) {
    let valid = (1..=64).contains(&input.len())
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    match UserId::parse(input) {
        Ok(user) => {
            assert!(valid, "accepted user {input:?}");
            check_user(input, &user);
        }
        Err(_) => assert!(!valid, "refused user {input:?}"),
    }
}

fn check_arg(name: CommandName, arg: Arg, sent: Option<&str>, kept: bool) {
    match arg {
        Arg::Required => assert!(kept, "{name} without a required argument"),
        Arg::Absent => assert!(!kept, "{name} with an argument it does not take"),
        Arg::Optional => {}
    }
    assert_eq!(
        sent.is_some(),
        kept,
        "{name}: an argument was added or lost"
    );
}

/// A command request that [`CommandRequest::new`] accepted from these
/// fields: well formed, shaped like its command, and, when its amount is
/// refused, refused for the amount only, as the model says.
pub fn check_request(
    request: &CommandRequest,
    user: Option<&str>,
    symbol: Option<&str>,
    amount: Option<&str>,
    filename: Option<&str>,
) {
    let name = request.name;
    let shape = name.shape();
    check_arg(name, shape.user, user, request.user.is_some());
    check_arg(name, shape.symbol, symbol, request.symbol.is_some());
    check_arg(name, shape.amount, amount, request.amount.is_some());
    if let (Some(text), Some(user)) = (user, &request.user) {
        check_user(text, user);
    }
    if let (Some(text), Some(symbol)) = (symbol, request.symbol) {
        check_symbol(text, symbol);
    }
    assert_eq!(request.amount.as_deref(), amount);
    if let Some(amount) = amount {
        assert!(amount.len() <= 32, "an overlong amount was kept");
    }
    match &request.filename {
        Some(f) => {
            assert_eq!(name, CommandName::DumpLog, "a file name on {name}");
            assert!(f.chars().count() <= MAX_FILENAME && !f.chars().any(char::is_control));
            assert_eq!(Some(f.as_str()), filename);
        }
        None => assert_eq!(filename, None),
    }
    // What is stored round-trips.
    let json = serde_json::to_vec(request).expect("a request serializes");
    let back: CommandRequest = serde_json::from_slice(&json).expect("and deserializes");
    assert_eq!(&back, request);

    match request.command() {
        Ok(command) => {
            if let Some(text) = amount {
                check_amount(text);
                assert!(model_amount(text).is_some());
            }
            // The fuzz target's own model of which commands fetch a price.
            let fetches_price = matches!(
                name,
                CommandName::Quote
                    | CommandName::Buy
                    | CommandName::Sell
                    | CommandName::SetBuyTrigger
                    | CommandName::SetSellTrigger
            );
            assert_eq!(command.price_symbol().is_some(), fetches_price);
        }
        Err(rejection) => {
            let text = amount.expect("only an amount can be refused here");
            assert_eq!(rejection.code, engine::RejectCode::InvalidAmount);
            assert_eq!(model_amount(text), None, "refused amount {text:?}");
        }
    }
}
