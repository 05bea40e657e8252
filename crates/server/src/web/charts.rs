//! Charts drawn on the server as inline SVG: no script and no `style`
//! attribute (the Content-Security-Policy allows neither); lines and labels
//! take their look from classes in `app.css`.
//!
//! Two charts: a symbol's price history on the quote page, and the
//! trader's account value over time on the dashboard ([`value_over_time`]).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use engine::{Account, CommandName, EventKind, Money, Reply, Symbol};
use store::{LogRow, PricePoint, Record};

use crate::web::error::PageError;
use crate::web::format::{dollars, utc};
use crate::web::templates::Fragment;

/// The drawing area, in SVG user units (the SVG scales to its box).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room above and below the line for the labels.
const PAD: f64 = 18.0;
/// The most points a line is drawn with: more are thinned out evenly.
const MAX_POINTS: usize = 300;

#[derive(Template)]
#[template(path = "fragments/chart.html")]
struct LineChart<'a> {
    id: &'a str,
    title: &'a str,
    width: f64,
    height: f64,
    /// The polyline's `x,y` pairs.
    points: String,
    high: String,
    low: String,
    from: String,
    to: String,
    /// The last point, marked.
    last_x: String,
    last_y: String,
}

/// A line chart of `series` (time in Unix ms, oldest first), or `None`
/// with fewer than two points (nothing to draw a line through).
pub fn line_chart(
    id: &str,
    title: &str,
    series: &[(i64, Money)],
) -> Result<Option<Fragment>, PageError> {
    let series = thin(series);
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return Ok(None);
    };
    if series.len() < 2 {
        return Ok(None);
    }
    let low = series.iter().map(|p| p.1).min().expect("not empty");
    let high = series.iter().map(|p| p.1).max().expect("not empty");
    let span_ms = (last.0 - first.0).max(1) as f64;
    let span_cents = (high.cents() - low.cents()).max(1) as f64;
    let x = |at: i64| (at - first.0) as f64 / span_ms * WIDTH;
    let y = |m: Money| {
        // A flat line sits in the middle.
        if high == low {
            HEIGHT / 2.0
        } else {
            PAD + (1.0 - (m.cents() - low.cents()) as f64 / span_cents) * (HEIGHT - 2.0 * PAD)
        }
    };
    let points = series
        .iter()
        .map(|&(at, m)| format!("{:.1},{:.1}", x(at), y(m)))
        .collect::<Vec<_>>()
        .join(" ");
    let chart = LineChart {
        id,
        title,
        width: WIDTH,
        height: HEIGHT,
        points,
        high: dollars(high),
        low: dollars(low),
        from: utc(first.0),
        to: utc(last.0),
        last_x: format!("{:.1}", x(last.0)),
        last_y: format!("{:.1}", y(last.1)),
    };
    Fragment::render(&chart).map(Some)
}

/// At most [`MAX_POINTS`] of `series`, evenly spaced, the last one kept.
fn thin(series: &[(i64, Money)]) -> Vec<(i64, Money)> {
    if series.len() <= MAX_POINTS {
        return series.to_vec();
    }
    let step = series.len().div_ceil(MAX_POINTS);
    let mut thinned: Vec<_> = series.iter().step_by(step).copied().collect();
    if thinned.last() != series.last() {
        thinned.extend(series.last());
    }
    thinned
}

/// A price history as a series, up to `now_ms`: the last price known
/// holds until a new one is fetched.
pub fn price_series(points: &[PricePoint], now_ms: i64) -> Vec<(i64, Money)> {
    let mut series: Vec<_> = points.iter().map(|p| (p.at_ms, p.price)).collect();
    if let Some(&(at, price)) = series.last()
        && at < now_ms
    {
        series.push((now_ms, price));
    }
    series
}

/// Cash (spendable and reserved) and shares owned, after some step.
#[derive(Clone)]
struct Holdings {
    cash: i64,
    shares: BTreeMap<Symbol, i64>,
}

impl Holdings {
    /// Undoes what one log row did to the account's cash and shares. Only
    /// deposits and fills move them: reserving, cancelling and expiring
    /// move money between cash and reserved cash (counted together) and
    /// shares between spendable and reserved (counted together).
    fn undo(&mut self, record: &Record) {
        if let Record::Command {
            request,
            outcome: Ok(reply),
            ..
        } = record
        {
            match (request.name, reply) {
                (_, Reply::Added(added)) => self.cash -= added.added.cents(),
                (CommandName::CommitBuy, Reply::Settled(order)) => {
                    self.cash += order.amount.cents();
                    self.unshare(order.symbol, order.shares);
                }
                (CommandName::CommitSell, Reply::Settled(order)) => {
                    self.cash -= order.amount.cents();
                    self.unshare(order.symbol, -order.shares);
                }
                _ => {}
            }
        }
        for event in record.events() {
            match event.kind {
                EventKind::BuyTriggerExecuted {
                    symbol,
                    shares,
                    cost,
                    ..
                } => {
                    self.cash += cost.cents();
                    self.unshare(symbol, shares);
                }
                EventKind::SellTriggerExecuted {
                    symbol,
                    shares,
                    proceeds,
                    ..
                } => {
                    self.cash -= proceeds.cents();
                    self.unshare(symbol, -shares);
                }
                _ => {}
            }
        }
    }

    fn unshare(&mut self, symbol: Symbol, bought: i64) {
        *self.shares.entry(symbol).or_insert(0) -= bought;
    }

    /// The value at the prices known at `at_ms`; `None` when a symbol
    /// held then has no price at all.
    fn value_at(&self, at_ms: i64, prices: &HashMap<Symbol, Vec<PricePoint>>) -> Option<Money> {
        let mut value = self.cash;
        for (&symbol, &shares) in self.shares.iter().filter(|(_, n)| **n != 0) {
            value += shares * price_at(prices.get(&symbol)?, at_ms)?.cents();
        }
        Some(Money::from_cents(value))
    }
}

/// The price known at `at_ms`: the newest point at or before it, or the
/// oldest one after it when the history starts later.
fn price_at(points: &[PricePoint], at_ms: i64) -> Option<Money> {
    let known = points.partition_point(|p| p.at_ms <= at_ms);
    let point = if known > 0 {
        points.get(known - 1)
    } else {
        points.first()
    };
    point.map(|p| p.price)
}

/// The symbols `rows` ever held, with those `account` holds now: the
/// price histories [`value_over_time`] needs.
pub fn symbols_in(account: &Account, rows: &[LogRow]) -> Vec<Symbol> {
    let mut symbols: Vec<Symbol> = account.symbols_held().collect();
    for row in rows {
        if let Record::Command { request, .. } = &row.record {
            symbols.extend(request.symbol);
        }
        if let Record::Price { symbol, .. } = &row.record {
            symbols.push(*symbol);
        }
    }
    symbols.sort();
    symbols.dedup();
    symbols
}

/// The account's value (cash + reserved cash + shares owned at the price
/// known at each moment) over the span of `rows`, its newest log rows
/// (newest first), up to `now_ms`.
///
/// Worked backwards from the account as it is now: each row's deposits
/// and fills are undone to get the cash and shares before it. The value is
/// taken after each row and at each price point of a symbol held in the
/// span, so a price move shows between trades. How far back it reaches is
/// bounded by how many rows the caller reads.
pub fn value_over_time(
    account: &Account,
    now_ms: i64,
    rows: &[LogRow],
    prices: &HashMap<Symbol, Vec<PricePoint>>,
) -> Vec<(i64, Money)> {
    let summary = account.summary(now_ms);
    let mut holdings = Holdings {
        cash: summary.cash.cents() + summary.reserved_cash.cents(),
        shares: summary
            .holdings
            .iter()
            .map(|h| (h.symbol, h.shares + h.reserved_shares))
            .collect(),
    };
    // (from this time on, the holdings), newest first.
    let mut states = vec![(now_ms, holdings.clone())];
    for row in rows {
        states.last_mut().expect("one at least").0 = row.ts_ms.min(now_ms);
        holdings.undo(&row.record);
        states.push((i64::MIN, holdings.clone()));
    }
    states.pop(); // before the span: unknown start
    states.reverse();
    let Some(&(start, _)) = states.first() else {
        return Vec::new();
    };
    let mut times: Vec<i64> = states.iter().map(|(at, _)| *at).collect();
    for points in prices.values() {
        times.extend(
            points
                .iter()
                .map(|p| p.at_ms)
                .filter(|at| (start..=now_ms).contains(at)),
        );
    }
    times.push(now_ms);
    times.sort_unstable();
    times.dedup();
    times
        .into_iter()
        .filter_map(|at| {
            let held = states.partition_point(|(from, _)| *from <= at);
            let (_, holdings) = &states[held.checked_sub(1)?];
            Some((at, holdings.value_at(at, prices)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use engine::{CommandRequest, Context, execute};

    use super::*;

    fn abc() -> Symbol {
        Symbol::parse("ABC").unwrap()
    }

    /// A command at a time: (ms, name, symbol, amount, price in cents).
    type Step<'a> = (i64, CommandName, Option<&'a str>, Option<&'a str>, i64);

    /// Runs commands at the given times and prices, as the store would:
    /// the account after them, and their log rows, newest first.
    fn run(steps: &[Step<'_>]) -> (Account, Vec<LogRow>) {
        let mut account = None;
        let mut rows = Vec::new();
        for (i, &(at, name, symbol, amount, price)) in steps.iter().enumerate() {
            let request = CommandRequest::new(name, Some("u1"), symbol, amount, None).unwrap();
            let ctx = Context {
                now_ms: at,
                txn: i as i64 + 1,
                price: Some(Money::from_cents(price)),
            };
            let mut events = Vec::new();
            let outcome = execute(&mut account, &request.command().unwrap(), &ctx, &mut events);
            rows.push(LogRow {
                seq: i as i64 + 1,
                ts_ms: at,
                server: "t".into(),
                user: None,
                txn: ctx.txn,
                record: Record::Command {
                    request,
                    quote: None,
                    outcome,
                    balance: None,
                    events,
                },
            });
        }
        rows.reverse();
        (account.unwrap(), rows)
    }

    fn point(at_ms: i64, cents: i64) -> PricePoint {
        PricePoint {
            at_ms,
            price: Money::from_cents(cents),
        }
    }

    #[test]
    fn the_value_follows_deposits_fills_and_prices() {
        use CommandName::*;
        let (account, rows) = run(&[
            (1_000, Add, None, Some("100.00"), 0),
            (2_000, Buy, Some("ABC"), Some("50.00"), 1_000),
            (2_500, CommitBuy, None, None, 0),
            (4_000, Sell, Some("ABC"), Some("20.00"), 1_200),
            (4_500, CommitSell, None, None, 0),
        ]);
        let prices = HashMap::from([(
            abc(),
            vec![
                point(2_000, 1_000),
                point(3_000, 1_500),
                point(4_000, 1_200),
            ],
        )]);
        let cents: Vec<(i64, i64)> = value_over_time(&account, 5_000, &rows, &prices)
            .into_iter()
            .map(|(at, m)| (at, m.cents()))
            .collect();
        assert_eq!(
            cents,
            [
                (1_000, 10_000),
                // Reserving for the buy moves nothing: cash + reserved.
                (2_000, 10_000),
                // 5 shares at 10.00 bought with 50.00.
                (2_500, 10_000),
                // The price rises to 15.00: 50.00 + 5 × 15.00.
                (3_000, 12_500),
                // It falls to 12.00.
                (4_000, 11_000),
                // 1 share sold for 12.00: 62.00 + 4 × 12.00.
                (4_500, 11_000),
                (5_000, 11_000),
            ]
        );
    }

    #[test]
    fn a_line_needs_two_points_and_the_last_price_holds_until_now() {
        let one = price_series(&[point(1_000, 500)], 1_000);
        assert!(line_chart("c", "C", &one).unwrap().is_none());
        let held = price_series(&[point(1_000, 500)], 9_000);
        assert_eq!(held.len(), 2);
        let svg = line_chart("c", "C", &held).unwrap().unwrap();
        assert!(
            svg.as_str().contains("<polyline class=\"chart-line\""),
            "{svg}"
        );
        assert!(
            !svg.as_str().contains("style="),
            "the CSP allows no style attribute"
        );
    }
}
