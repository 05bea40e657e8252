//! Parsing the course's workload format: `[n] COMMAND,user[,SYMBOL][,amount]`.
//!
//! Only the structure of a line is checked. Amounts, symbols and user ids are
//! passed through untouched, because the course files deliberately contain
//! invalid commands (a negative ADD, commits with nothing pending) whose
//! point is to reach the server and be refused there.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use engine::{Arg, CommandName};
use serde::{Deserialize, Serialize};

/// One command of a workload file, its fields placed by the command's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadCommand {
    /// 1-based line number in the file, for messages that point at the line.
    pub line: usize,
    /// The `[n]` of the line; the server treats it as the idempotency key.
    pub transaction_num: i64,
    pub name: CommandName,
    pub user: Option<String>,
    pub symbol: Option<String>,
    /// The amount (the price for the SET_*_TRIGGER commands), exactly as
    /// written, so that an invalid one reaches the server unchanged.
    pub amount: Option<String>,
    /// DUMPLOG's file name: where the replaying client saves the log.
    pub filename: Option<String>,
}

/// A line that is not a command at all, reported and skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why the line was refused.
    pub reason: String,
    /// The line as read, cut at [`MAX_SHOWN_TEXT`] characters so that a
    /// binary file fed by mistake does not flood a report.
    pub text: String,
}

/// The longest excerpt of a malformed line kept in [`MalformedLine::text`].
pub const MAX_SHOWN_TEXT: usize = 120;

/// A whole workload: its commands in file order and the lines skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedWorkload {
    pub commands: Vec<WorkloadCommand>,
    pub malformed: Vec<MalformedLine>,
}

/// Parses a workload file, streaming it line by line.
pub fn parse_file(path: &Path) -> anyhow::Result<ParsedWorkload> {
    let file = File::open(path).with_context(|| format!("opening workload {}", path.display()))?;
    parse_reader(BufReader::with_capacity(64 * 1024, file))
        .with_context(|| format!("reading workload {}", path.display()))
}

/// Parses a workload from any buffered reader. Only an I/O error fails the
/// whole parse; a bad line is recorded in [`ParsedWorkload::malformed`].
pub fn parse_reader<R: BufRead>(reader: R) -> io::Result<ParsedWorkload> {
    let mut parsed = ParsedWorkload::default();
    read_lines(reader, |line| match line {
        Ok(command) => parsed.commands.push(command),
        Err(bad) => parsed.malformed.push(bad),
    })?;
    Ok(parsed)
}

/// Reads a workload line by line, handing each command or malformed line
/// to `each` as soon as it is read: what keeps the workload is the
/// caller's choice (a `Vec` of commands, or [`crate::Workload`]'s compact
/// records). Blank lines are skipped; only an I/O error ends the reading.
pub(crate) fn read_lines<R: BufRead>(
    mut reader: R,
    mut each: impl FnMut(Result<WorkloadCommand, MalformedLine>),
) -> io::Result<()> {
    // One buffer reused for every line: reading bytes rather than `String`s
    // lets a line that is not UTF-8 be reported instead of ending the parse.
    let mut buf = Vec::with_capacity(128);
    let mut line = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let mut bytes = buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                let lossy = String::from_utf8_lossy(bytes);
                each(Err(malformed(
                    line,
                    "the line is not UTF-8 text".into(),
                    &lossy,
                )));
                continue;
            }
        };
        match parse_line(line, text) {
            Ok(Some(command)) => each(Ok(command)),
            Ok(None) => {}
            Err(reason) => each(Err(malformed(line, reason, text))),
        }
    }
    Ok(())
}

/// Parses a workload held in memory (tests, small inputs).
pub fn parse_str(text: &str) -> ParsedWorkload {
    parse_reader(text.as_bytes()).expect("reading from memory cannot fail")
}

fn malformed(line: usize, reason: String, text: &str) -> MalformedLine {
    let text = text.trim_end();
    let mut shown: String = text.chars().take(MAX_SHOWN_TEXT).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    MalformedLine {
        line,
        reason,
        text: shown,
    }
}

/// One line: `Ok(None)` for a blank line, `Err(reason)` when malformed.
fn parse_line(line: usize, text: &str) -> Result<Option<WorkloadCommand>, String> {
    // Trimming takes care of the course files' trailing space, tabs and the
    // CR of CRLF endings alike.
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let rest = text.strip_prefix('[').ok_or(
        "the line does not start with a transaction number in brackets, like \"[1] ADD,...\"",
    )?;
    let (number, rest) = rest
        .split_once(']')
        .ok_or("the transaction number has no closing \"]\"")?;
    let transaction_num = match number.trim().parse::<i64>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(format!(
                "the transaction number {number:?} is not a positive integer"
            ));
        }
    };
    let mut fields = rest.trim_start().split(',').map(str::trim);
    let command = fields.next().unwrap_or_default();
    if command.is_empty() {
        return Err("the command name is missing".into());
    }
    let name: CommandName = command.parse().map_err(|_| {
        format!(
            "{:?} is not a command",
            command.chars().take(40).collect::<String>()
        )
    })?;
    let args: Vec<&str> = fields.collect();
    if let Some(position) = args.iter().position(|a| a.is_empty()) {
        return Err(format!("{name}: field {} is empty", position + 2));
    }
    let [user, symbol, amount, filename] = place_args(name, &args)?;
    Ok(Some(WorkloadCommand {
        line,
        transaction_num,
        name,
        user,
        symbol,
        amount,
        filename,
    }))
}

/// The argument slots of a line, in the order they are written, with
/// whether each must be present. The command table in `engine` decides user,
/// symbol and amount; the workload format adds DUMPLOG's file name, which
/// it always carries.
fn slots(name: CommandName) -> [Arg; 4] {
    let shape = name.shape();
    let filename = if name == CommandName::DumpLog {
        Arg::Required
    } else {
        Arg::Absent
    };
    [shape.user, shape.symbol, shape.amount, filename]
}

/// Places positional fields into the slots: every required slot takes one,
/// and optional slots (DUMPLOG's user) take one, left to right, only when
/// the line has more fields than the required ones.
fn place_args(name: CommandName, args: &[&str]) -> Result<[Option<String>; 4], String> {
    let slots = slots(name);
    let required = slots.iter().filter(|s| **s == Arg::Required).count();
    let most = slots.iter().filter(|s| **s != Arg::Absent).count();
    if args.len() < required || args.len() > most {
        let expected = if required == most {
            format!("{required}")
        } else {
            format!("{required} or {most}")
        };
        return Err(format!(
            "{name} takes {expected} fields after the command, not {}",
            args.len()
        ));
    }
    let mut extra = args.len() - required;
    let mut args = args.iter();
    let mut placed: [Option<String>; 4] = Default::default();
    for (slot, value) in slots.iter().zip(placed.iter_mut()) {
        let take = match slot {
            Arg::Required => true,
            Arg::Optional if extra > 0 => {
                extra -= 1;
                true
            }
            Arg::Optional | Arg::Absent => false,
        };
        if take {
            *value = args.next().map(|a| (*a).to_owned());
        }
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> WorkloadCommand {
        let parsed = parse_str(text);
        assert_eq!(parsed.malformed, vec![], "{text:?}");
        assert_eq!(parsed.commands.len(), 1, "{text:?}");
        parsed.commands.into_iter().next().unwrap()
    }

    fn refused(text: &str) -> MalformedLine {
        let parsed = parse_str(text);
        assert_eq!(parsed.commands, vec![], "{text:?}");
        assert_eq!(parsed.malformed.len(), 1, "{text:?}");
        parsed.malformed.into_iter().next().unwrap()
    }

    #[test]
    fn places_fields_by_the_command_shape() {
        let buy = one("[3] BUY,oY01WVirLr,S,276.83 \n");
        assert_eq!(
            buy,
            WorkloadCommand {
                line: 1,
                transaction_num: 3,
                name: CommandName::Buy,
                user: Some("oY01WVirLr".into()),
                symbol: Some("S".into()),
                amount: Some("276.83".into()),
                filename: None,
            }
        );
        let add = one("[1] ADD,u1,63511.53 ");
        assert_eq!(
            (add.symbol, add.amount.as_deref()),
            (None, Some("63511.53"))
        );
        let quote = one("[2] QUOTE,u1,ABC ");
        assert_eq!((quote.symbol.as_deref(), quote.amount), (Some("ABC"), None));
        let commit = one("[4] COMMIT_BUY,u1 ");
        assert_eq!(
            (commit.user.as_deref(), commit.symbol, commit.amount),
            (Some("u1"), None, None)
        );
        let cancel = one("[5] CANCEL_SET_BUY,u1,ABC");
        assert_eq!(cancel.symbol.as_deref(), Some("ABC"));
        let trigger = one("[6] SET_SELL_TRIGGER,u1,ABC,20.00");
        assert_eq!(trigger.amount.as_deref(), Some("20.00"));
    }

    #[test]
    fn dumplog_is_global_or_for_one_user() {
        let global = one("[100] DUMPLOG,./testLOG");
        assert_eq!(
            (global.user, global.filename.as_deref()),
            (None, Some("./testLOG"))
        );
        let mine = one("[7] DUMPLOG,u1,mine.xml ");
        assert_eq!(
            (mine.user.as_deref(), mine.filename.as_deref()),
            (Some("u1"), Some("mine.xml"))
        );
    }

    #[test]
    fn tolerates_the_quirks_of_real_files() {
        let text = "\u{feff}[1] ADD,u1,10.00 \r\n\r\n  \t\n[2] quote,u1,abc\t\r\n\n[3] COMMIT_BUY,u1\n[4] DISPLAY_SUMMARY , u1 ";
        let parsed = parse_str(text);
        assert_eq!(parsed.malformed, vec![]);
        let got: Vec<_> = parsed
            .commands
            .iter()
            .map(|c| {
                (
                    c.line,
                    c.transaction_num,
                    c.name,
                    c.user.as_deref(),
                    c.symbol.as_deref(),
                    c.amount.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, CommandName::Add, Some("u1"), None, Some("10.00")),
                (4, 2, CommandName::Quote, Some("u1"), Some("abc"), None),
                (6, 3, CommandName::CommitBuy, Some("u1"), None, None),
                (7, 4, CommandName::DisplaySummary, Some("u1"), None, None),
            ]
        );
    }

    #[test]
    fn keeps_well_formed_commands_that_the_server_will_refuse() {
        let text = "[1] ADD,u1,-73280.58 \n[2] COMMIT_SELL,u1 \n[3] SET_BUY_TRIGGER,u1,XYZ,abc \n[4] BUY,u1,TOOLONG,0.00 \n[5] ADD,bad user!,1";
        let parsed = parse_str(text);
        assert_eq!(parsed.malformed, vec![]);
        assert_eq!(parsed.commands.len(), 5);
        assert_eq!(parsed.commands[0].amount.as_deref(), Some("-73280.58"));
        assert_eq!(parsed.commands[2].amount.as_deref(), Some("abc"));
        assert_eq!(parsed.commands[4].user.as_deref(), Some("bad user!"));
    }

    #[test]
    fn reports_each_malformed_kind_with_its_line() {
        let cases = [
            ("ADD,u1,10.00", "does not start"),
            ("[1 ADD,u1,10.00", "closing"),
            ("[] ADD,u1,10.00", "positive integer"),
            ("[0] ADD,u1,10.00", "positive integer"),
            ("[-4] ADD,u1,10.00", "positive integer"),
            ("[x1] ADD,u1,10.00", "positive integer"),
            ("[99999999999999999999] ADD,u1,1", "positive integer"),
            ("[1] ", "missing"),
            ("[1] ,u1", "missing"),
            ("[1] BUYX,u1,A,1", "not a command"),
            ("[1] ADD,u1", "takes 2 fields"),
            ("[1] ADD,u1,1,2", "takes 2 fields"),
            ("[1] COMMIT_BUY", "takes 1 fields"),
            ("[1] QUOTE,u1,A,1", "takes 2 fields"),
            ("[1] DUMPLOG", "takes 1 or 2 fields"),
            ("[1] DUMPLOG,u,f,x", "takes 1 or 2 fields"),
            ("[1] BUY,u1,,10", "field 3 is empty"),
            ("[1] ADD,u1,10.00,", "field 4 is empty"),
            ("[1] ADD, ,10.00", "field 2 is empty"),
        ];
        for (text, reason) in cases {
            let bad = refused(text);
            assert_eq!(bad.line, 1, "{text:?}");
            assert!(bad.reason.contains(reason), "{text:?}: {}", bad.reason);
            assert_eq!(bad.text, text.trim_end());
        }
        // Line numbers count every line, blank ones and skipped ones included.
        let parsed = parse_str("[1] ADD,u1,1\n\nnonsense\n[2] ADD,u1\n[3] COMMIT_BUY,u1\n");
        let lines: Vec<_> = parsed.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert_eq!(
            parsed.commands.iter().map(|c| c.line).collect::<Vec<_>>(),
            vec![1, 5]
        );
    }

    #[test]
    fn shows_a_bounded_excerpt_of_a_bad_line() {
        let long = format!("[1] ADD,{},1", "x".repeat(10_000));
        let bad = refused(&format!("{long},2"));
        assert_eq!(bad.text.chars().count(), MAX_SHOWN_TEXT + 1);
        let not_text = parse_reader(&b"[1] ADD,u\xff,1\n[2] ADD,u,1\n"[..]).unwrap();
        assert_eq!(not_text.malformed.len(), 1);
        assert!(not_text.malformed[0].reason.contains("UTF-8"));
        assert_eq!(not_text.commands.len(), 1);
    }

    #[test]
    fn parses_the_course_files_when_present() {
        let files = [
            ("1userWorkLoad.txt", 100, 1),
            ("2userWorkLoad.txt", 10_000, 2),
            ("10User_testWorkLoad.txt", 10_000, 10),
            ("45User_testWorkLoad.txt", 10_000, 45),
            ("100User_testWorkLoad.txt", 100_000, 100),
        ];
        for (file, commands, users) in files {
            let Some(path) = crate::testing::course_file(file) else {
                return;
            };
            let parsed = parse_file(&path).unwrap();
            assert_eq!(parsed.malformed, vec![], "{file}");
            assert_eq!(parsed.commands.len(), commands, "{file}");
            let distinct: std::collections::HashSet<_> = parsed
                .commands
                .iter()
                .filter_map(|c| c.user.as_deref())
                .collect();
            assert_eq!(distinct.len(), users, "{file}");
            let last = parsed.commands.last().unwrap();
            assert_eq!(
                (last.name, last.user.as_deref(), last.filename.as_deref()),
                (CommandName::DumpLog, None, Some("./testLOG"))
            );
            assert_eq!(last.transaction_num, commands as i64);
        }
    }
}
