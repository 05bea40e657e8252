//! A workload held for replaying, in compact form.
//!
//! A replay keeps the whole file in memory: each user's commands run in
//! file order, users concurrently, so any command may be next. Held as
//! [`WorkloadCommand`]s, a command costs about 200 bytes (seven fields, up
//! to four strings on the heap), five times its line in the file: a
//! 1.2-million-command file of 44 MB took over 400 MB. Here a command is
//! one fixed 24-byte record; each user id is kept once, and the symbols,
//! amounts and file names lie back to back in one buffer. A command becomes
//! a [`WorkloadCommand`] again only while it is being sent.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use anyhow::Context as _;
use engine::CommandName;

use crate::workload::{MalformedLine, ParsedWorkload, WorkloadCommand, read_lines};

/// The most malformed lines kept for the report; the rest are counted. A
/// file that is not a workload at all (a binary fed by mistake) must not
/// fill memory with excerpts.
pub const MAX_KEPT_MALFORMED: usize = 1_000;

/// A workload's commands in file order, compactly, with its malformed
/// lines.
#[derive(Debug, Default)]
pub struct Workload {
    records: Vec<Record>,
    /// Each distinct user id once, in order of first appearance.
    users: Vec<Box<str>>,
    /// Every command's symbol, amount and file name, each as a length
    /// (LEB128) and its bytes.
    fields: Vec<u8>,
    malformed: Vec<MalformedLine>,
    malformed_lines: u64,
}

/// One command: everything but the text of its fields.
#[derive(Clone, Copy, Debug)]
struct Record {
    transaction_num: i64,
    line: u32,
    /// An index into `users`, or [`NO_USER`].
    user: u32,
    /// Where its fields start in `fields`.
    fields: u32,
    name: CommandName,
    /// Which fields it has: [`SYMBOL`], [`AMOUNT`], [`FILENAME`].
    present: u8,
}

const NO_USER: u32 = u32::MAX;
const SYMBOL: u8 = 1;
const AMOUNT: u8 = 2;
const FILENAME: u8 = 4;

impl Workload {
    /// Reads a workload file, line by line: only the compact form is ever
    /// held, never the whole file nor a [`ParsedWorkload`] of it.
    pub fn read_file(path: &Path) -> anyhow::Result<Workload> {
        let file =
            File::open(path).with_context(|| format!("opening workload {}", path.display()))?;
        Workload::read(BufReader::with_capacity(64 * 1024, file))
            .with_context(|| format!("reading workload {}", path.display()))
    }

    /// Reads a workload from any buffered reader. Only an I/O error (or a
    /// file beyond the compact form's limits: 4 billion lines, 4 GiB of
    /// fields) fails it; a bad line is kept as malformed.
    pub fn read<R: BufRead>(reader: R) -> io::Result<Workload> {
        let mut builder = Builder::default();
        let mut too_large = None;
        read_lines(reader, |line| {
            if too_large.is_none()
                && let Err(error) = builder.push_line(line)
            {
                too_large = Some(error);
            }
        })?;
        match too_large {
            Some(error) => Err(error),
            None => Ok(builder.finish()),
        }
    }

    /// Commands in the workload.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Distinct users.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// The first [`MAX_KEPT_MALFORMED`] malformed lines.
    pub fn malformed(&self) -> &[MalformedLine] {
        &self.malformed
    }

    /// How many lines were malformed, all of them.
    pub fn malformed_lines(&self) -> u64 {
        self.malformed_lines
    }

    /// Command `index` (in file order) as parsed.
    pub fn command(&self, index: usize) -> WorkloadCommand {
        let record = self.records[index];
        let mut at = record.fields as usize;
        let mut field = |bit: u8| {
            (record.present & bit != 0).then(|| {
                let (text, next) = read_field(&self.fields, at);
                at = next;
                text.to_owned()
            })
        };
        let symbol = field(SYMBOL);
        let amount = field(AMOUNT);
        let filename = field(FILENAME);
        WorkloadCommand {
            line: record.line as usize,
            transaction_num: record.transaction_num,
            name: record.name,
            user: self.user(index).map(str::to_owned),
            symbol,
            amount,
            filename,
        }
    }

    /// The user of command `index`, `None` for a global command.
    pub fn user(&self, index: usize) -> Option<&str> {
        self.user_index(index).map(|u| &*self.users[u as usize])
    }

    /// The user of command `index` as a number: the order in which the
    /// workload first named them.
    pub(crate) fn user_index(&self, index: usize) -> Option<u32> {
        let user = self.records[index].user;
        (user != NO_USER).then_some(user)
    }

    pub fn name(&self, index: usize) -> CommandName {
        self.records[index].name
    }
}

impl From<ParsedWorkload> for Workload {
    fn from(parsed: ParsedWorkload) -> Workload {
        let mut builder = Builder::default();
        let lines = parsed
            .commands
            .into_iter()
            .map(Ok)
            .chain(parsed.malformed.into_iter().map(Err));
        for line in lines {
            builder
                .push_line(line)
                .expect("a workload held in memory fits the compact form");
        }
        builder.finish()
    }
}

#[derive(Default)]
struct Builder {
    workload: Workload,
    user_index: HashMap<Box<str>, u32>,
}

impl Builder {
    fn push_line(&mut self, line: Result<WorkloadCommand, MalformedLine>) -> io::Result<()> {
        let command = match line {
            Ok(command) => command,
            Err(bad) => {
                let workload = &mut self.workload;
                workload.malformed_lines += 1;
                if workload.malformed.len() < MAX_KEPT_MALFORMED {
                    workload.malformed.push(bad);
                }
                return Ok(());
            }
        };
        let too_large = |what: &str| {
            io::Error::other(format!(
                "the workload is too large to replay: more than 4 billion {what}"
            ))
        };
        let line = u32::try_from(command.line).map_err(|_| too_large("lines"))?;
        let fields =
            u32::try_from(self.workload.fields.len()).map_err(|_| too_large("bytes of fields"))?;
        let user = match command.user {
            None => NO_USER,
            Some(user) => self.intern(user)?,
        };
        let mut present = 0;
        for (bit, value) in [
            (SYMBOL, &command.symbol),
            (AMOUNT, &command.amount),
            (FILENAME, &command.filename),
        ] {
            if let Some(value) = value {
                present |= bit;
                write_field(&mut self.workload.fields, value);
            }
        }
        self.workload.records.push(Record {
            transaction_num: command.transaction_num,
            line,
            user,
            fields,
            name: command.name,
            present,
        });
        Ok(())
    }

    fn intern(&mut self, user: String) -> io::Result<u32> {
        if let Some(&index) = self.user_index.get(user.as_str()) {
            return Ok(index);
        }
        let index = u32::try_from(self.workload.users.len())
            .ok()
            .filter(|&i| i != NO_USER)
            .ok_or_else(|| io::Error::other("the workload names more than 4 billion users"))?;
        let user: Box<str> = user.into();
        self.workload.users.push(user.clone());
        self.user_index.insert(user, index);
        Ok(index)
    }

    fn finish(self) -> Workload {
        let mut workload = self.workload;
        workload.records.shrink_to_fit();
        workload.fields.shrink_to_fit();
        workload
    }
}

fn write_field(out: &mut Vec<u8>, value: &str) {
    let mut length = value.len();
    loop {
        let low = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(low);
            break;
        }
        out.push(low | 0x80);
    }
    out.extend_from_slice(value.as_bytes());
}

/// The field starting at `at`, and where the next one starts.
fn read_field(fields: &[u8], mut at: usize) -> (&str, usize) {
    let mut length = 0usize;
    let mut shift = 0;
    loop {
        let byte = fields[at];
        at += 1;
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let text = std::str::from_utf8(&fields[at..at + length])
        .expect("fields are written from strings, whole");
    (text, at + length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::parse_str;

    #[test]
    fn a_command_takes_one_small_record() {
        assert_eq!(std::mem::size_of::<Record>(), 24);
    }

    #[test]
    fn every_command_comes_back_as_parsed() {
        let long = "x".repeat(300);
        let text = format!(
            "[1] ADD,u1,10.00\n[2] BUY,u2,ABC,{long}\nnonsense\n[3] DUMPLOG,u1,mine.xml\n\
             [4] DUMPLOG,./testLOG\n[5] COMMIT_BUY,u1\n[6] SET_SELL_TRIGGER,ü,ABC,-1\n"
        );
        let parsed = parse_str(&text);
        let from_reader = Workload::read(text.as_bytes()).unwrap();
        let from_parsed = Workload::from(parsed.clone());
        for workload in [from_reader, from_parsed] {
            let back: Vec<WorkloadCommand> =
                (0..workload.len()).map(|i| workload.command(i)).collect();
            assert_eq!(back, parsed.commands);
            assert_eq!(workload.users(), 3);
            assert_eq!(workload.user(3), None);
            assert_eq!(workload.user(5), Some("ü"));
            assert_eq!(workload.malformed(), &parsed.malformed[..]);
            assert_eq!(workload.malformed_lines(), 1);
        }
    }

    #[test]
    fn keeps_a_bounded_number_of_malformed_lines() {
        let text = "garbage\n".repeat(MAX_KEPT_MALFORMED + 10) + "[1] ADD,u,1\n";
        let workload = Workload::read(text.as_bytes()).unwrap();
        assert_eq!(workload.len(), 1);
        assert_eq!(workload.malformed().len(), MAX_KEPT_MALFORMED);
        assert_eq!(workload.malformed_lines(), MAX_KEPT_MALFORMED as u64 + 10);
    }
}
