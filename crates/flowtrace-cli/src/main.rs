//! The `flowtrace` command.
//!
//! `flowtrace inspect EVENT.json [--context CONTEXT.json]` prints, as JSON, exactly what the
//! wrapper would record for that event: the trigger, the span, its parent and its links.
//!
//! `flowtrace local [--template template.yaml] ...` runs a SAM application on this machine.
//!
//! `flowtrace report [SPANS.jsonl] [--html OUT]` shows what it collected.

mod inspect;
mod local;
mod report;

use std::process::ExitCode;

const USAGE: &str = "\
usage: flowtrace inspect EVENT.json [--context CONTEXT.json]

  inspect   print what the flowtrace wrapper would record for EVENT.json:
            {\"trigger\", \"span\": {\"name\", \"kind\", \"attributes\"}, \"parent\", \"links\"}
            CONTEXT.json may give requestId, functionName, invokedFunctionArn,
            xrayTraceId, deadlineMs and clientContext.custom.
            FLOWTRACE_* and OTEL_PROPAGATORS apply as in a function.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("inspect") => match inspect::Args::parse(&args[1..]).and_then(|a| inspect::run(&a)) {
            Ok(output) => {
                println!("{output}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("flowtrace inspect: {error}");
                if matches!(error, inspect::InspectError::Usage(_)) {
                    eprintln!("{USAGE}");
                }
                ExitCode::from(2)
            }
        },
        Some("local") => match local::Args::parse(&args[1..]).and_then(local::run) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("flowtrace local: {error}");
                if matches!(error, local::LocalError::Usage(_)) {
                    eprintln!("{}", local::USAGE);
                }
                ExitCode::from(2)
            }
        },
        Some("report") => match report::Args::parse(&args[1..]).and_then(report::run) {
            Ok(output) => {
                print!("{output}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("flowtrace report: {error}");
                if matches!(error, report::ReportCliError::Usage(_)) {
                    eprintln!("{}", report::USAGE);
                }
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}\n\n{}\n\n{}", local::USAGE, report::USAGE);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}\n\n{}\n\n{}", local::USAGE, report::USAGE);
            ExitCode::from(2)
        }
    }
}
