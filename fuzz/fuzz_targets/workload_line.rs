//! The workload-file parser (`loadgen::parse_reader`): any bytes, as a
//! workload file given by mistake or by malice would be.

#![no_main]

use daytrader_fuzz::check_request;
use engine::{Arg, CommandName, CommandRequest};
use libfuzzer_sys::fuzz_target;
use loadgen::{MAX_SHOWN_TEXT, WorkloadCommand};

fuzz_target!(|data: &[u8]| {
    let parsed = loadgen::parse_reader(data).expect("reading from memory cannot fail");
    let lines = data.split(|&b| b == b'\n').count() - usize::from(data.ends_with(b"\n"));
    let mut seen = vec![false; lines + 1];
    for line in parsed
        .commands
        .iter()
        .map(|c| c.line)
        .chain(parsed.malformed.iter().map(|m| m.line))
    {
        assert!((1..=lines).contains(&line), "line {line} of {lines}");
        assert!(!seen[line], "line {line} reported twice");
        seen[line] = true;
    }
    for bad in &parsed.malformed {
        assert!(!bad.reason.is_empty());
        assert!(bad.text.chars().count() <= MAX_SHOWN_TEXT + 1);
    }
    for command in &parsed.commands {
        check_command(command);
    }
});

fn check_command(command: &WorkloadCommand) {
    assert!(command.transaction_num > 0);
    let shape = command.name.shape();
    let filename = if command.name == CommandName::DumpLog {
        Arg::Required
    } else {
        Arg::Absent
    };
    for (arg, value) in [
        (shape.user, &command.user),
        (shape.symbol, &command.symbol),
        (shape.amount, &command.amount),
        (filename, &command.filename),
    ] {
        match arg {
            Arg::Required => assert!(value.is_some(), "{command:?}"),
            Arg::Absent => assert!(value.is_none(), "{command:?}"),
            Arg::Optional => {}
        }
        if let Some(value) = value {
            assert!(!value.is_empty(), "{command:?}");
            assert_eq!(value.trim(), value, "{command:?}");
            assert!(!value.contains([',', '\n']), "{command:?}");
        }
    }

    // Written back as a line, the command parses to itself.
    let fields: Vec<&str> = [
        &command.user,
        &command.symbol,
        &command.amount,
        &command.filename,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect();
    let mut line = format!("[{}] {}", command.transaction_num, command.name);
    for field in fields {
        line.push(',');
        line.push_str(field);
    }
    let again = loadgen::parse_str(&line);
    assert_eq!(again.malformed, vec![], "{line:?}");
    let again = again.commands.into_iter().next().expect("one command");
    assert_eq!(
        WorkloadCommand {
            line: command.line,
            ..again
        },
        *command,
        "{line:?}"
    );

    // What the replay sends, the server's decoder takes without panicking,
    // and what it accepts is well formed.
    let filename = command.filename.as_deref();
    if let Ok(request) = CommandRequest::new(
        command.name,
        command.user.as_deref(),
        command.symbol.as_deref(),
        command.amount.as_deref(),
        filename,
    ) {
        check_request(
            &request,
            command.user.as_deref(),
            command.symbol.as_deref(),
            command.amount.as_deref(),
            filename,
        );
    }
    if let Some(name) = filename {
        // The replaying client saves a DUMPLOG only inside its directory.
        let out = std::path::Path::new("/out");
        if let Ok(path) = loadgen::resolve_dump_path(out, name) {
            assert!(path.starts_with(out), "{name:?} -> {path:?}");
            assert!(
                !path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir)),
                "{name:?} -> {path:?}"
            );
        }
    }
}
