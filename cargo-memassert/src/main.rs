//! `cargo memassert`: reads the suite records that memassert's
//! `#[track_alloc]` tests write with `MEMASSERT_REPORT=DIR` set.
//!
//! ```text
//! cargo memassert summary DIR [--top N] [--by peak|total|allocs]
//! cargo memassert compare BASE NEW [--threshold P%] [--fail-on-increase P%]
//! cargo memassert html DIR -o FILE
//! ```
//!
//! Exit status: 0, 1 when `compare` found an increase beyond
//! `--fail-on-increase`, 2 on a usage or reading error.

mod compare;
mod html;
mod records;
mod summary;
mod text;

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "\
cargo memassert: the suite's memory at a glance, from the records memassert's
#[track_alloc] tests write when MEMASSERT_REPORT=DIR is set.

Usage:
  cargo memassert summary DIR [--top N] [--by peak|total|allocs]
      The N heaviest tests (default 10, by peak): figures, a size histogram,
      their biggest sites at the peak; failing tests marked.
  cargo memassert compare BASE NEW [--threshold P%] [--fail-on-increase P%]
      Tests whose peak, total or allocation count moved beyond the threshold
      (default 10%, or the --fail-on-increase value), new and removed tests.
      Exit status 1 when a test increased beyond --fail-on-increase.
  cargo memassert html DIR -o FILE
      One self-contained page: a sortable table of every test, and per test
      a flame graph of its live memory at the peak, its size histogram and
      its top sites.

Record folders merge by copying: put the folders of several runs (nextest
partitions) under one folder, or copy their files into one.
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo memassert ...` runs `cargo-memassert memassert ...`.
    if args.first().map(String::as_str) == Some("memassert") {
        args.remove(0);
    }
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cargo memassert: {message}");
            ExitCode::from(2)
        }
    }
}

/// Options and positional arguments.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, String)>,
}

/// Splits `args` into positionals and `--name value` / `--name=value`
/// options among `known` (each taking a value).
fn parse(args: &[String], known: &[&str]) -> Result<Args, String> {
    let mut out = Args {
        positional: Vec::new(),
        options: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with('-') && arg.len() > 1 {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            if !known.contains(&name) {
                return Err(format!(
                    "unknown option {name}{}",
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (this command takes {})", known.join(", "))
                    }
                ));
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("{name} needs a value"))?
                }
            };
            out.options.push((name.to_string(), value));
        } else {
            out.positional.push(arg.clone());
        }
        i += 1;
    }
    Ok(out)
}

impl Args {
    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn positionals(&self, command: &str, names: &[&str]) -> Result<(), String> {
        if self.positional.len() != names.len() {
            return Err(format!(
                "`{command}` takes {}, got {} argument{}\n\n{USAGE}",
                names.join(" "),
                self.positional.len(),
                if self.positional.len() == 1 { "" } else { "s" }
            ));
        }
        Ok(())
    }
}

fn read(dir: &str) -> Result<std::collections::BTreeMap<String, records::Record>, String> {
    records::read_dir(Path::new(dir)).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(command) = args.first() else {
        print!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let rest = &args[1..];
    match command.as_str() {
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        "-V" | "--version" => {
            println!("cargo-memassert {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        "summary" => {
            let a = parse(rest, &["--top", "--by"])?;
            a.positionals("summary", &["DIR"])?;
            let top = match a.option("--top") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| format!("--top {n:?}: expected a number of tests"))?,
                None => 10,
            };
            let by = summary::By::parse(a.option("--by").unwrap_or("peak"))?;
            let dir = &a.positional[0];
            let records = read(dir)?;
            print!("{}", summary::render(dir, &records, top, by));
            Ok(ExitCode::SUCCESS)
        }
        "compare" => {
            let a = parse(rest, &["--threshold", "--fail-on-increase"])?;
            a.positionals("compare", &["BASE", "NEW"])?;
            let fail = a
                .option("--fail-on-increase")
                .map(text::parse_percent)
                .transpose()?;
            let threshold = match a.option("--threshold") {
                Some(p) => text::parse_percent(p)?,
                None => fail.unwrap_or(10.0),
            };
            let base = read(&a.positional[0])?;
            let new = read(&a.positional[1])?;
            let result = compare::compare(&base, &new, threshold, fail);
            print!("{}", result.text);
            Ok(if result.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        "html" => {
            let a = parse(rest, &["-o", "--output"])?;
            a.positionals("html", &["DIR"])?;
            let output = a
                .option("-o")
                .or(a.option("--output"))
                .ok_or("`html` needs -o FILE (the page to write)")?;
            let dir = &a.positional[0];
            let records = read(dir)?;
            let page = html::render(dir, &records);
            std::fs::write(output, page).map_err(|e| format!("cannot write {output}: {e}"))?;
            println!("wrote {output}: {} tests", records.len());
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}
