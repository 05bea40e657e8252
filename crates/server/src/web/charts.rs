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
