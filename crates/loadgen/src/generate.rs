//! Generating workload files in the course's format, for any number of
//! users and commands, the same bytes for the same seed.
//!
//! The file should look like a real trading session rather than noise, so
//! that a replay exercises the paths a real one does: every user starts with
//! an ADD, a BUY is usually followed by its COMMIT_BUY or CANCEL_BUY, users
//! sell what they bought, set an amount before its trigger. A small model of
//! each user (pending orders, holdings, trigger amounts) drives those
//! choices, and a feedback on the counts so far keeps the mix of commands
//! close to the course files'. A few commands are invalid on purpose, as in
//! the course files, so that refusals are exercised too.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};

use engine::CommandName;

use crate::prng::Prng;

/// Why a workload cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("a workload needs at least one user")]
    NoUsers,
    #[error("{commands} commands are too few for {users} users: each user starts with an ADD and the file ends with a DUMPLOG, so at least {} are needed", users + 1)]
    TooFewCommands { users: usize, commands: usize },
    #[error("writing the workload: {0}")]
    Io(#[from] io::Error),
}

/// The file name of the closing global DUMPLOG, as in the course files.
pub const DUMPLOG_FILENAME: &str = "./testLOG";

/// Writes a workload of `commands` lines (the closing DUMPLOG included) for
/// `users` users. The same arguments always produce the same bytes.
pub fn generate<W: Write>(
    users: usize,
    commands: usize,
    seed: u64,
    writer: W,
) -> Result<(), GenerateError> {
    if users == 0 {
        return Err(GenerateError::NoUsers);
    }
    if commands < users + 1 {
        return Err(GenerateError::TooFewCommands { users, commands });
    }
    let mut out = BufWriter::with_capacity(64 * 1024, writer);
    let mut session = Session::new(users, seed);
    let body = commands - 1;
    for n in 1..=body {
        let remaining = body - n + 1;
        write!(out, "[{n}] ")?;
        session.step(remaining, &mut out)?;
        out.write_all(b" \n")?;
    }
    // The course files end with this line, without the trailing space.
    writeln!(out, "[{commands}] DUMPLOG,{DUMPLOG_FILENAME}")?;
    out.flush()?;
    Ok(())
}

/// The target mix, in basis points, from the counts of the course's
/// 100-user file. The global DUMPLOG is outside it.
const MIX: [(CommandName, u64); 15] = [
    (CommandName::Buy, 1400),
    (CommandName::Quote, 1300),
    (CommandName::Add, 1100),
    (CommandName::DisplaySummary, 900),
    (CommandName::SetBuyTrigger, 850),
    (CommandName::CommitBuy, 800),
    (CommandName::SetSellTrigger, 700),
    (CommandName::Sell, 600),
    (CommandName::SetBuyAmount, 500),
    (CommandName::SetSellAmount, 450),
    (CommandName::CommitSell, 400),
    (CommandName::CancelSetSell, 250),
    (CommandName::CancelBuy, 250),
    (CommandName::CancelSell, 200),
    (CommandName::CancelSetBuy, 200),
];

const MIX_TOTAL: u64 = {
    let mut total = 0;
    let mut i = 0;
    while i < MIX.len() {
        total += MIX[i].1;
        i += 1;
    }
    total
};

/// How far (in commands) a command may run behind or ahead of its share
/// before its weight doubles or halves: small enough to hold the mix within
/// a few commands, large enough to leave the sequence random.
const SLACK_COMMANDS: i128 = 4;

/// Commands that are invalid on purpose, per mille of the users' steps.
const INVALID_PER_MILLE: u64 = 15;

/// How much likelier a commit or cancel is right after its BUY or SELL:
/// a trader decides on an order they just placed.
const DECISION_BOOST: u32 = 8;

/// The largest BUY, SELL or trigger amount, like the course files' $750.
const MAX_ORDER_CENTS: u64 = 75_000;

/// The characters of user ids, as in the course files.
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The most symbols a pool holds, well under the 18,278 that 1 to 3
/// letters allow, so that drawing distinct ones stays quick.
const MAX_SYMBOLS: usize = 10_000;

/// One trader's state as the generator imagines it. It can drift from the
/// server's (a BUY the server refuses still counts as pending here), which
/// is fine: it only has to make the session plausible.
struct Trader {
    id: String,
    started: bool,
    /// Stacks of (symbol index, dollars in cents), newest last, like the
    /// server's LIFO pending orders.
    pending_buys: Vec<(usize, u64)>,
    pending_sells: Vec<(usize, u64)>,
    /// Symbols held, with roughly what they cost.
    holdings: Vec<(usize, u64)>,
    /// Symbols with a buy or sell trigger amount set.
    buy_amounts: Vec<usize>,
    sell_amounts: Vec<usize>,
    /// The trader just placed a BUY (or SELL) and is about to decide on it.
    deciding_buy: bool,
    deciding_sell: bool,
    last_quoted: Option<usize>,
}

struct Session {
    rng: Prng,
    symbols: Vec<String>,
    traders: Vec<Trader>,
    /// Traders who have not had their opening ADD yet.
    unstarted: Vec<usize>,
    counts: [u64; MIX.len()],
    emitted: u64,
}

impl Session {
    fn new(users: usize, seed: u64) -> Session {
        let mut rng = Prng::new(seed);
        let symbols = symbol_pool(&mut rng, pool_size(users));
        let mut ids = HashSet::with_capacity(users);
        let traders = (0..users)
            .map(|_| {
                let id = loop {
                    let id: String = (0..10)
                        .map(|_| char::from(ID_ALPHABET[rng.index(ID_ALPHABET.len())]))
                        .collect();
                    if ids.insert(id.clone()) {
                        break id;
                    }
                };
                Trader {
                    id,
                    started: false,
                    pending_buys: Vec::new(),
                    pending_sells: Vec::new(),
                    holdings: Vec::new(),
                    buy_amounts: Vec::new(),
                    sell_amounts: Vec::new(),
                    deciding_buy: false,
                    deciding_sell: false,
                    last_quoted: None,
                }
            })
            .collect();
        Session {
            rng,
            symbols,
            traders,
            unstarted: (0..users).collect(),
            counts: [0; MIX.len()],
            emitted: 0,
        }
    }

    /// Writes one command (without the `[n] ` and line end). `remaining`
    /// counts the user commands still to write, this one included, so that
    /// every user gets their ADD before the file ends.
    fn step(&mut self, remaining: usize, out: &mut impl Write) -> io::Result<()> {
        let who = if remaining <= self.unstarted.len() {
            self.unstarted[self.rng.index(self.unstarted.len())]
        } else {
            self.rng.index(self.traders.len())
        };
        let name = if !self.traders[who].started {
            self.traders[who].started = true;
            self.unstarted.retain(|&u| u != who);
            CommandName::Add
        } else if self.rng.chance(INVALID_PER_MILLE) {
            return self.write_invalid(who, out);
        } else {
            self.choose(who)
        };
        self.write_valid(who, name, out)
    }

    /// Draws the next command for a trader among those that make sense in
    /// their state, each weighted by its share of the mix, doubled or halved
    /// for every few commands it runs behind or ahead of that share.
    fn choose(&mut self, who: usize) -> CommandName {
        let t = &self.traders[who];
        let mut weights = [0u64; MIX.len()];
        for (i, (name, share)) in MIX.iter().enumerate() {
            let sensible = match name {
                CommandName::CommitBuy | CommandName::CancelBuy => !t.pending_buys.is_empty(),
                CommandName::Sell | CommandName::SetSellAmount => !t.holdings.is_empty(),
                CommandName::CommitSell | CommandName::CancelSell => !t.pending_sells.is_empty(),
                CommandName::SetBuyTrigger | CommandName::CancelSetBuy => !t.buy_amounts.is_empty(),
                CommandName::SetSellTrigger | CommandName::CancelSetSell => {
                    !t.sell_amounts.is_empty()
                }
                _ => true,
            };
            if !sensible {
                continue;
            }
            let behind = i128::from(*share) * i128::from(self.emitted)
                - i128::from(self.counts[i]) * i128::from(MIX_TOTAL);
            let mut shift =
                (behind / (SLACK_COMMANDS * i128::from(MIX_TOTAL))).clamp(-8, 8) as i32 + 8;
            let deciding = match name {
                CommandName::CommitBuy | CommandName::CancelBuy => t.deciding_buy,
                CommandName::CommitSell | CommandName::CancelSell => t.deciding_sell,
                _ => false,
            };
            if deciding {
                shift += DECISION_BOOST as i32;
            }
            weights[i] = share << shift;
        }
        let total: u64 = weights.iter().sum();
        let mut pick = self.rng.below(total);
        let chosen = weights
            .iter()
            .position(|&w| {
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .expect("the pick is below the total weight");
        MIX[chosen].0
    }

    fn count(&mut self, name: CommandName) {
        let i = MIX
            .iter()
            .position(|(n, _)| *n == name)
            .expect("every user command is in the mix");
        self.counts[i] += 1;
        self.emitted += 1;
    }

    fn write_valid(
        &mut self,
        who: usize,
        name: CommandName,
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.count(name);
        let rng = &mut self.rng;
        let symbols = &self.symbols;
        let t = &mut self.traders[who];
        let deciding = (t.deciding_buy, t.deciding_sell);
        t.deciding_buy = false;
        t.deciding_sell = false;
        write!(out, "{name},{}", t.id)?;
        match name {
            CommandName::Add => {
                // Tens of thousands of dollars, bunched around 70,000.
                let cents = 1_000_000 + (0..3).map(|_| rng.range(0, 4_000_000)).sum::<u64>();
                write_money(out, cents)?;
            }
            CommandName::Quote => {
                let interesting = t.last_quoted.or_else(|| t.holdings.first().map(|h| h.0));
                let symbol = match interesting {
                    Some(s) if rng.chance(300) => s,
                    _ => rng.index(symbols.len()),
                };
                t.last_quoted = Some(symbol);
                write!(out, ",{}", symbols[symbol])?;
            }
            CommandName::Buy => {
                let symbol = match t.last_quoted {
                    Some(s) if rng.chance(600) => s,
                    _ => rng.index(symbols.len()),
                };
                let cents = rng.range(2_000, MAX_ORDER_CENTS);
                t.pending_buys.push((symbol, cents));
                t.deciding_buy = true;
                write!(out, ",{}", symbols[symbol])?;
                write_money(out, cents)?;
            }
            CommandName::CommitBuy => {
                let (symbol, cents) = t
                    .pending_buys
                    .pop()
                    .expect("chosen only with a pending buy");
                match t.holdings.iter_mut().find(|h| h.0 == symbol) {
                    Some(held) => held.1 += cents,
                    None => t.holdings.push((symbol, cents)),
                }
            }
            CommandName::CancelBuy => {
                t.pending_buys.pop();
            }
            CommandName::Sell => {
                let (symbol, value) = t.holdings[rng.index(t.holdings.len())];
                let cents = (value * rng.range(30, 100) / 100).clamp(100, MAX_ORDER_CENTS);
                t.pending_sells.push((symbol, cents));
                t.deciding_sell = true;
                write!(out, ",{}", symbols[symbol])?;
                write_money(out, cents)?;
            }
            CommandName::CommitSell => {
                let (symbol, cents) = t
                    .pending_sells
                    .pop()
                    .expect("chosen only with a pending sell");
                if let Some(at) = t.holdings.iter().position(|h| h.0 == symbol) {
                    t.holdings[at].1 = t.holdings[at].1.saturating_sub(cents);
                    if t.holdings[at].1 < 100 {
                        t.holdings.swap_remove(at);
                    }
                }
            }
            CommandName::CancelSell => {
                t.pending_sells.pop();
            }
            CommandName::SetBuyAmount => {
                let symbol = rng.index(symbols.len());
                if !t.buy_amounts.contains(&symbol) {
                    t.buy_amounts.push(symbol);
                }
                write!(out, ",{}", symbols[symbol])?;
                write_money(out, rng.range(2_000, MAX_ORDER_CENTS))?;
            }
            CommandName::SetBuyTrigger => {
                // A little under the price: buy on a dip.
                let symbol = t.buy_amounts[rng.index(t.buy_amounts.len())];
                let price = reference_price_cents(&symbols[symbol]) * rng.range(85, 99) / 100;
                write!(out, ",{}", symbols[symbol])?;
                write_money(out, price.max(1))?;
            }
            CommandName::CancelSetBuy => {
                let symbol = t.buy_amounts.swap_remove(rng.index(t.buy_amounts.len()));
                write!(out, ",{}", symbols[symbol])?;
            }
            CommandName::SetSellAmount => {
                let (symbol, value) = t.holdings[rng.index(t.holdings.len())];
                if !t.sell_amounts.contains(&symbol) {
                    t.sell_amounts.push(symbol);
                }
                write!(out, ",{}", symbols[symbol])?;
                write_money(
                    out,
                    (value * rng.range(30, 100) / 100).clamp(100, MAX_ORDER_CENTS),
                )?;
            }
            CommandName::SetSellTrigger => {
                // A little over the price: take a profit.
                let symbol = t.sell_amounts[rng.index(t.sell_amounts.len())];
                let price = reference_price_cents(&symbols[symbol]) * rng.range(101, 115) / 100;
                write!(out, ",{}", symbols[symbol])?;
                write_money(out, price)?;
            }
            CommandName::CancelSetSell => {
                let symbol = t.sell_amounts.swap_remove(rng.index(t.sell_amounts.len()));
                write!(out, ",{}", symbols[symbol])?;
            }
            CommandName::DisplaySummary => {
                // Looking at the summary is not a decision: it leaves an
                // undecided order undecided.
                (t.deciding_buy, t.deciding_sell) = deciding;
            }
            CommandName::DumpLog => {
                unreachable!("the generator writes DUMPLOG only as the last line")
            }
        }
        Ok(())
    }

    /// A command the server must refuse, of the kinds the course files hold:
    /// a commit or cancel with nothing pending, a trigger without its
    /// amount, rarely a negative ADD.
    fn write_invalid(&mut self, who: usize, out: &mut impl Write) -> io::Result<()> {
        let rng = &mut self.rng;
        let t = &self.traders[who];
        let mut nothing_pending = Vec::with_capacity(4);
        if t.pending_buys.is_empty() {
            nothing_pending.extend([CommandName::CommitBuy, CommandName::CancelBuy]);
        }
        if t.pending_sells.is_empty() {
            nothing_pending.extend([CommandName::CommitSell, CommandName::CancelSell]);
        }
        let kind = rng.below(20);
        let name = if kind == 0 {
            let cents = rng.range(1_000_000, 9_000_000);
            write!(out, "ADD,{},-{}.{:02}", t.id, cents / 100, cents % 100)?;
            CommandName::Add
        } else if kind < 12 && !nothing_pending.is_empty() {
            let name = nothing_pending[rng.index(nothing_pending.len())];
            write!(out, "{name},{}", t.id)?;
            name
        } else {
            let (name, set) = if rng.chance(500) {
                (CommandName::SetBuyTrigger, &t.buy_amounts)
            } else {
                (CommandName::SetSellTrigger, &t.sell_amounts)
            };
            // The first symbol from a random start without an amount set; if
            // every one has an amount (a tiny pool), the trigger is valid
            // after all, which is harmless.
            let len = self.symbols.len();
            let start = rng.index(len);
            let symbol = (0..len)
                .map(|k| (start + k) % len)
                .find(|s| !set.contains(s))
                .unwrap_or(start);
            let symbol = &self.symbols[symbol];
            write!(out, "{name},{},{symbol}", t.id)?;
            write_money(out, reference_price_cents(symbol))?;
            name
        };
        self.count(name);
        Ok(())
    }
}

/// Writes `,dollars.cents`.
fn write_money(out: &mut impl Write, cents: u64) -> io::Result<()> {
    write!(out, ",{}.{:02}", cents / 100, cents % 100)
}

/// The symbol pool grows with the users, like the course files' (1 user,
/// 1 symbol; 2 users, 20; 100 users, 981).
fn pool_size(users: usize) -> usize {
    if users == 1 {
        1
    } else {
        (users * 10).clamp(20, MAX_SYMBOLS)
    }
}

/// Distinct symbols of 1 to 3 upper-case letters, mostly 3 like the course's.
fn symbol_pool(rng: &mut Prng, size: usize) -> Vec<String> {
    let mut seen = HashSet::with_capacity(size);
    let mut pool = Vec::with_capacity(size);
    while pool.len() < size {
        let len = match rng.below(20) {
            0 => 1,
            1..=3 => 2,
            _ => 3,
        };
        let symbol: String = (0..len)
            .map(|_| char::from(b'A' + rng.below(26) as u8))
            .collect();
        if seen.insert(symbol.clone()) {
            pool.push(symbol);
        }
    }
    pool
}

/// The price the bundled quote server gives a symbol in its `fixed` mode,
/// so that generated trigger prices sit around the prices a replay sees.
fn reference_price_cents(symbol: &str) -> u64 {
    let symbol = engine::Symbol::parse(symbol).expect("the pool holds valid symbols");
    quotes::fixed_price(symbol).cents().unsigned_abs()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::workload::{WorkloadCommand, parse_str};

    fn generated(users: usize, commands: usize, seed: u64) -> String {
        let mut out = Vec::new();
        generate(users, commands, seed, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(generated(10, 3_000, 42), generated(10, 3_000, 42));
        assert_ne!(generated(10, 3_000, 42), generated(10, 3_000, 43));
    }

    #[test]
    fn a_seed_pins_its_file_forever() {
        // A change here changes every workload generated so far.
        let expected = "\
[1] ADD,YtERFtER0Z,86545.10 \n[2] BUY,YtERFtER0Z,MM,212.96 \n[3] COMMIT_BUY,YtERFtER0Z \n\
[4] ADD,Yr89HyZb9A,32438.18 \n[5] DISPLAY_SUMMARY,YtERFtER0Z \n[6] SELL,YtERFtER0Z,MM,136.29 \n\
[7] BUY,Yr89HyZb9A,MM,414.23 \n[8] CANCEL_BUY,Yr89HyZb9A \n[9] BUY,Yr89HyZb9A,DBJ,163.12 \n\
[10] COMMIT_BUY,Yr89HyZb9A \n[11] COMMIT_SELL,YtERFtER0Z \n[12] DUMPLOG,./testLOG\n";
        assert_eq!(generated(2, 12, 1), expected);
    }

    #[test]
    fn writes_the_course_format() {
        let text = generated(3, 50, 1);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 50);
        for (i, line) in lines[..49].iter().enumerate() {
            assert!(line.starts_with(&format!("[{}] ", i + 1)), "{line:?}");
            assert!(line.ends_with(" \n") && !line.ends_with("  \n"), "{line:?}");
        }
        assert_eq!(lines[49], "[50] DUMPLOG,./testLOG\n");
    }

    #[test]
    fn every_line_parses_and_every_user_opens_with_add() {
        for (users, commands, seed) in [
            (1, 2, 0),
            (1, 100, 5),
            (7, 8, 3),
            (10, 2_000, 9),
            (100, 20_000, 11),
        ] {
            let parsed = parse_str(&generated(users, commands, seed));
            assert_eq!(parsed.malformed, vec![], "{users} users");
            assert_eq!(parsed.commands.len(), commands);
            let numbers: Vec<i64> = parsed.commands.iter().map(|c| c.transaction_num).collect();
            assert_eq!(numbers, (1..=commands as i64).collect::<Vec<_>>());
            let last = parsed.commands.last().unwrap();
            assert_eq!(
                (last.name, last.user.as_deref(), last.filename.as_deref()),
                (CommandName::DumpLog, None, Some(DUMPLOG_FILENAME))
            );
            let mut first: HashMap<&str, &WorkloadCommand> = HashMap::new();
            for c in &parsed.commands[..commands - 1] {
                let user = c.user.as_deref().unwrap();
                assert!(
                    user.len() == 10 && user.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "{user}"
                );
                first.entry(user).or_insert(c);
            }
            assert_eq!(first.len(), users);
            for c in first.values() {
                assert_eq!(c.name, CommandName::Add, "line {}", c.line);
                assert!(!c.amount.as_deref().unwrap().starts_with('-'));
            }
        }
    }

    #[test]
    fn the_mix_is_close_to_the_course_files() {
        let commands = 50_000;
        let parsed = parse_str(&generated(20, commands, 7));
        let mut counts: HashMap<CommandName, usize> = HashMap::new();
        for c in &parsed.commands[..commands - 1] {
            *counts.entry(c.name).or_default() += 1;
        }
        for (name, share) in MIX {
            let got = counts.get(&name).copied().unwrap_or_default() as f64 / (commands - 1) as f64;
            let want = share as f64 / MIX_TOTAL as f64;
            assert!(
                (got - want).abs() < 0.01,
                "{name}: {got:.4} against {want:.4}"
            );
        }
    }

    #[test]
    fn sessions_are_plausible() {
        let commands = 50_000;
        let parsed = parse_str(&generated(20, commands, 8));
        let cmds = &parsed.commands[..commands - 1];
        let mut next_of_user: HashMap<&str, usize> = HashMap::new();
        let mut followed = 0;
        let mut buys = 0;
        let mut bought: HashMap<&str, HashSet<&str>> = HashMap::new();
        let (mut sells, mut sells_of_bought) = (0, 0);
        let (mut invalid_adds, mut symbols) = (0, HashSet::new());
        for (i, c) in cmds.iter().enumerate().rev() {
            let user = c.user.as_deref().unwrap();
            if c.name == CommandName::Buy {
                buys += 1;
                if let Some(&next) = next_of_user.get(user)
                    && matches!(
                        cmds[next].name,
                        CommandName::CommitBuy | CommandName::CancelBuy
                    )
                {
                    followed += 1;
                }
            }
            next_of_user.insert(user, i);
        }
        for c in cmds {
            let user = c.user.as_deref().unwrap();
            if let Some(s) = c.symbol.as_deref() {
                symbols.insert(s);
                assert!(
                    (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase()),
                    "{s}"
                );
            }
            match c.name {
                CommandName::Buy => {
                    bought
                        .entry(user)
                        .or_default()
                        .insert(c.symbol.as_deref().unwrap());
                }
                CommandName::Sell => {
                    sells += 1;
                    if bought
                        .get(user)
                        .is_some_and(|b| b.contains(c.symbol.as_deref().unwrap()))
                    {
                        sells_of_bought += 1;
                    }
                }
                CommandName::Add if c.amount.as_deref().unwrap().starts_with('-') => {
                    invalid_adds += 1
                }
                _ => {}
            }
            if let Some(amount) = c.amount.as_deref() {
                let value: f64 = amount.parse().unwrap();
                let range = match c.name {
                    CommandName::Add => -100_000.0..=130_000.0,
                    CommandName::SetBuyTrigger | CommandName::SetSellTrigger => 0.01..=115.0,
                    _ => 1.0..=750.0,
                };
                assert!(range.contains(&value), "{:?} {amount}", c.name);
            }
        }
        assert!(
            followed * 10 > buys * 6,
            "{followed} of {buys} buys decided at once"
        );
        assert_eq!(
            sells, sells_of_bought,
            "every sale is of a symbol bought before"
        );
        assert!(invalid_adds > 0);
        assert!(
            symbols.len() > 150 && symbols.len() <= 200,
            "{} symbols",
            symbols.len()
        );
    }

    #[test]
    fn refuses_impossible_requests() {
        assert!(matches!(
            generate(0, 10, 1, Vec::new()),
            Err(GenerateError::NoUsers)
        ));
        assert!(matches!(
            generate(5, 5, 1, Vec::new()),
            Err(GenerateError::TooFewCommands {
                users: 5,
                commands: 5
            })
        ));
    }
}
