//! The quote client's reply validator (`quotes::parse_reply`) and the quote
//! server's request parser: what a misbehaving legacy server or a hostile
//! client could send.

#![no_main]

use engine::{Money, Symbol};
use libfuzzer_sys::fuzz_target;
use quotes::protocol::{
    MAX_CRYPTOKEY_LEN, MAX_REPLY_LEN, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, parse_request,
    request_line,
};

fuzz_target!(|data: &[u8]| {
    // The client refuses a reply that is not UTF-8 before parsing it.
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // Expect the symbol and user the reply echoes (when they could have been
    // asked for), so that the fuzzer reaches the checks past the echo.
    let mut fields = line.trim_end_matches(['\r', '\n']).split(',');
    let symbol = fields
        .nth(1)
        .and_then(|s| Symbol::parse(s).ok())
        .unwrap_or_else(|| Symbol::parse("ABC").unwrap());
    let user = fields.next().unwrap_or("jsmith");
    if let Ok(reply) = quotes::parse_reply(line, symbol, user) {
        assert!(line.len() <= MAX_REPLY_LEN);
        assert!((1..=Money::MAX_AMOUNT.cents()).contains(&reply.price.cents()));
        assert_eq!(reply.symbol, symbol);
        assert_eq!(reply.user, user);
        assert!((MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS).contains(&reply.timestamp_ms));
        assert!(!reply.cryptokey.is_empty() && reply.cryptokey.len() <= MAX_CRYPTOKEY_LEN);
        assert!(reply.cryptokey.bytes().all(|b| b.is_ascii_graphic()));
        // The accepted price is exactly the one sent.
        let price = line.split(',').next().unwrap();
        assert_eq!(
            daytrader_fuzz::model_amount(price),
            Some(reply.price.cents())
        );
        // Written back, the reply parses to itself.
        let again = quotes::parse_reply(&reply.to_line(), symbol, user).expect("round trip");
        assert_eq!(again, reply);
    }
    if let Ok((symbol, user)) = parse_request(line) {
        let again = request_line(symbol, &user);
        assert_eq!(parse_request(&again), Ok((symbol, user)));
    }
});
