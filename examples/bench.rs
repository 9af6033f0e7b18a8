//! The allocation-overhead benchmark: memassert (not tracing, counting,
//! full tracking) against the system allocator, `stats_alloc`, dhat-rs in
//! testing mode and mod-alloc, on the same workloads, as ratios to the
//! system allocator.
//!
//! ```text
//! cargo run --release --example bench                      # full run
//! cargo run --release --example bench -- --quick           # 2 runs a cell instead of 5
//! cargo run --release --example bench -- --json out.json   # also write JSON
//! cargo run --release --example bench -- --only box32,threads --configs system,tracking
//! ```
//!
//! A process has one global allocator, so each allocator is its own binary
//! (`bench_system`, `bench_system_aa`, `bench_stats_alloc`, `bench_dhat`, `bench_mod_alloc`,
//! `bench_memassert --mode off|counting|tracking`), all running the
//! workloads of `bench_workloads.rs`. This runner builds them twice (plainly,
//! and with `-C force-frame-pointers=yes` into `<target>/bench-fp` for
//! `system_fp`, `tracking_fp` and mod-alloc, whose call-site capture walks
//! frame pointers), then for each workload runs every configuration in
//! turn, round after round, and takes the median of the wall times each
//! child measured around the workload alone.
//!
//! `system_aa` is `bench_system` built again as another binary: the same
//! code, so its ratio to `system` is noise (layout, caches, the machine's
//! load). The largest distance from 1.00x over the workloads is printed as
//! the run's noise floor, and the targets at the end are called met or
//! missed only beyond it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use memassert_examples::bench_workloads::WORKLOADS;

/// The child binaries.
const CHILDREN: [&str; 6] = [
    "bench_system",
    "bench_system_aa",
    "bench_stats_alloc",
    "bench_dhat",
    "bench_mod_alloc",
    "bench_memassert",
];
/// The child binaries the frame-pointer build needs.
const FP_CHILDREN: [&str; 3] = ["bench_system", "bench_memassert", "bench_mod_alloc"];

#[derive(Clone, Copy, Debug)]
struct Config {
    /// The name in the table and the JSON.
    name: &'static str,
    binary: &'static str,
    mode: Option<&'static str>,
    /// From the frame-pointer build.
    fp: bool,
    /// What its ratio is taken against.
    baseline: &'static str,
    /// Count divisor in `--quick` (for the very slow ones, whose cells stay
    /// over a second); its times are multiplied back by it.
    quick_extra_scale: u64,
}

const fn config(name: &'static str, binary: &'static str, mode: Option<&'static str>) -> Config {
    Config {
        name,
        binary,
        mode,
        fp: false,
        baseline: "system",
        quick_extra_scale: 1,
    }
}

/// Every configuration, in table order.
const CONFIGS: [Config; 10] = [
    Config {
        baseline: "",
        ..config("system", "bench_system", None)
    },
    config("system_aa", "bench_system_aa", None),
    config("stats_alloc", "bench_stats_alloc", None),
    // dhat is 20-180x the system allocator: at counts / 10 its cells still
    // take over a second.
    Config {
        quick_extra_scale: 10,
        ..config("dhat", "bench_dhat", None)
    },
    config("off", "bench_memassert", Some("off")),
    config("counting", "bench_memassert", Some("counting")),
    config("tracking", "bench_memassert", Some("tracking")),
    Config {
        fp: true,
        ..config("system_fp", "bench_system", None)
    },
    Config {
        fp: true,
        baseline: "system_fp",
        ..config("mod_alloc", "bench_mod_alloc", None)
    },
    Config {
        fp: true,
        baseline: "system_fp",
        ..config("tracking_fp", "bench_memassert", Some("tracking"))
    },
];

struct Options {
    quick: bool,
    runs: usize,
    json: Option<PathBuf>,
    workloads: Vec<&'static str>,
    configs: Vec<Config>,
    skip_build: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\n\nusage: cargo run --release --example bench -- [--quick] [--runs N] \
         [--json PATH] [--only WORKLOAD,..] [--configs CONFIG,..] [--no-build]\n\
         workloads: {}\nconfigs: {}",
        WORKLOADS.join(","),
        CONFIGS.map(|c| c.name).join(",")
    );
    std::process::exit(2);
}

fn parse_options() -> Options {
    let mut quick = false;
    let mut runs = None;
    let mut json = None;
    let mut only: Option<Vec<String>> = None;
    let mut configs: Option<Vec<String>> = None;
    let mut skip_build = false;
    let mut args = std::env::args().skip(1);
    let list = |s: String| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .collect::<Vec<_>>()
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--quick" => quick = true,
            "--runs" => {
                runs = Some(
                    value()
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .unwrap_or_else(|| usage("--runs needs a positive integer")),
                )
            }
            "--json" => json = Some(PathBuf::from(value())),
            "--only" => only = Some(list(value())),
            "--configs" => configs = Some(list(value())),
            "--no-build" => skip_build = true,
            "-h" | "--help" => usage("memassert allocation-overhead benchmark"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let workloads = match only {
        None => WORKLOADS.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                *WORKLOADS
                    .iter()
                    .find(|w| *w == n)
                    .unwrap_or_else(|| usage(&format!("unknown workload {n}")))
            })
            .collect(),
    };
    let configs = match configs {
        None => CONFIGS.to_vec(),
        Some(names) => {
            for n in &names {
                if !CONFIGS.iter().any(|c| c.name == n) {
                    usage(&format!("unknown config {n}"));
                }
            }
            // Keep table order, and add the baselines the chosen ones need.
            let wanted = |c: &Config| {
                names.iter().any(|n| n == c.name)
                    || c.name == "system_aa"
                    || CONFIGS
                        .iter()
                        .any(|o| o.baseline == c.name && names.iter().any(|n| n == o.name))
            };
            CONFIGS.iter().copied().filter(wanted).collect()
        }
    };
    Options {
        quick,
        runs: runs.unwrap_or(if quick { 2 } else { 5 }),
        json,
        workloads,
        configs,
        skip_build,
    }
}

/// The target directory this runner was built into
/// (`<target>/<profile>/examples/bench`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the runner's own path");
    exe.ancestors()
        .nth(3)
        .expect("the runner lives in <target>/<profile>/examples/")
        .to_path_buf()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("examples/ is inside the workspace")
        .to_path_buf()
}

/// Builds the children into `target`, with frame pointers when `fp`.
fn build(target: &Path, fp: bool) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release", "-p", "memassert-examples"])
        .env("CARGO_TARGET_DIR", target);
    let children: &[&str] = if fp { &FP_CHILDREN } else { &CHILDREN };
    for child in children {
        cmd.args(["--example", child]);
    }
    if fp {
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C force-frame-pointers=yes");
        cmd.env("RUSTFLAGS", flags.trim())
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
    }
    eprintln!(
        "bench: building the children{} into {}",
        if fp { " with frame pointers" } else { "" },
        target.display()
    );
    let status = cmd.status().expect("running cargo build");
    if !status.success() {
        eprintln!("bench: cargo build failed ({status})");
        std::process::exit(1);
    }
}

/// What one child run printed.
#[derive(Clone, Debug)]
struct Sample {
    seconds: f64,
    checksum: u64,
    vmhwm_kib: u64,
    extra: HashMap<String, String>,
}

fn run_child(exe: &Path, config: &Config, workload: &str, scale: u64) -> Result<Sample, String> {
    let mut cmd = Command::new(exe);
    // memassert tells the user's code from everything else by the workspace
    // its files are in: name it, whoever started the runner and from where.
    let root = workspace_root();
    cmd.current_dir(&root).env("MEMASSERT_ROOT", &root).args([
        "--workload",
        workload,
        "--scale",
        &scale.to_string(),
    ]);
    if let Some(mode) = config.mode {
        cmd.args(["--mode", mode]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .ok_or_else(|| format!("{} printed no BENCH line", exe.display()))?;
    let fields: HashMap<String, String> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let get = |key: &str| -> Result<&String, String> {
        fields
            .get(key)
            .ok_or_else(|| format!("BENCH line without {key}: {line}"))
    };
    let parse_err = |key: &str| format!("bad {key} in: {line}");
    Ok(Sample {
        seconds: get("seconds")?.parse().map_err(|_| parse_err("seconds"))?,
        checksum: get("checksum")?
            .parse()
            .map_err(|_| parse_err("checksum"))?,
        vmhwm_kib: get("vmhwm_kib")?
            .parse()
            .map_err(|_| parse_err("vmhwm_kib"))?,
        extra: fields,
    })
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Everything measured: per workload, per config, the samples.
type Results = BTreeMap<&'static str, BTreeMap<&'static str, Vec<Sample>>>;

fn main() {
    let options = parse_options();
    let target = target_dir();
    let fp_target = target.join("bench-fp");
    let needs_fp = options.configs.iter().any(|c| c.fp);
    if !options.skip_build {
        build(&target, false);
        if needs_fp {
            build(&fp_target, true);
        }
    }
    let exe = |c: &Config| -> PathBuf {
        let dir = if c.fp { &fp_target } else { &target };
        dir.join("release").join("examples").join(c.binary)
    };
    let scale_of = |c: &Config| {
        if options.quick {
            c.quick_extra_scale
        } else {
            1
        }
    };

    let started = Instant::now();
    let mut results: Results = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    for &workload in &options.workloads {
        eprint!("bench: {workload:<8}");
        for round in 0..options.runs {
            // Alternate the configurations, starting each round at another
            // one, so that drift in machine load spreads over all of them.
            let n = options.configs.len();
            for i in 0..n {
                let config = &options.configs[(i + round) % n];
                match run_child(&exe(config), config, workload, scale_of(config)) {
                    Ok(sample) => results
                        .entry(workload)
                        .or_default()
                        .entry(config.name)
                        .or_default()
                        .push(sample),
                    Err(e) => failures.push(format!("{workload}/{}: {e}", config.name)),
                }
            }
            eprint!(".");
        }
        eprintln!(" {:.0}s", started.elapsed().as_secs_f64());
    }

    // Children at the same scale ran identical code: same checksums.
    for (workload, per_config) in &results {
        let mut seen: HashMap<u64, (u64, &str)> = HashMap::new();
        for config in &options.configs {
            let Some(samples) = per_config.get(config.name) else {
                continue;
            };
            for s in samples {
                let scale = scale_of(config);
                match seen.get(&scale) {
                    Some(&(sum, first)) if sum != s.checksum => failures.push(format!(
                        "{workload}: checksum of {} ({}) differs from {first}'s ({sum})",
                        config.name, s.checksum
                    )),
                    Some(_) => {}
                    None => {
                        seen.insert(scale, (s.checksum, config.name));
                    }
                }
            }
        }
    }

    // memassert's scopes must count what the workload allocated: compare
    // with stats_alloc's process-wide count (a few start-up allocations more).
    for (workload, per_config) in &results {
        let allocs = |name: &str| -> Option<u64> {
            let mut v: Vec<f64> = per_config
                .get(name)?
                .iter()
                .filter_map(|s| s.extra.get("allocs")?.parse::<f64>().ok())
                .collect();
            median(&mut v).map(|m| m as u64)
        };
        let reference = allocs("stats_alloc");
        for name in ["counting", "tracking", "tracking_fp"] {
            let Some(counted) = allocs(name) else {
                continue;
            };
            let ok = match reference {
                Some(r) => counted + 64 >= r && counted <= r + 64,
                None => counted > 0,
            };
            if !ok {
                failures.push(format!(
                    "{workload}/{name}: the scope counted {counted} allocations, stats_alloc {}",
                    reference.map_or("-".to_string(), |r| r.to_string())
                ));
            }
        }
    }

    // Median seconds, normalised to the common scale.
    let mut medians: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for (workload, per_config) in &results {
        for config in &options.configs {
            let Some(samples) = per_config.get(config.name) else {
                continue;
            };
            let mut secs: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
            if let Some(m) = median(&mut secs) {
                let factor = scale_of(config) as f64;
                medians
                    .entry(workload)
                    .or_default()
                    .insert(config.name, m * factor);
            }
        }
    }

    let rss = peak_rss(&results, &options);
    let per_block = bytes_per_block(&results);
    print!(
        "{}",
        render_table(
            &options,
            &medians,
            &rss,
            per_block,
            table_bytes_per_block(&results),
            scale_of,
        )
    );
    print!("{}", render_warmup(&results, &options));
    print!(
        "{}",
        render_targets(&medians, &rss, per_block, table_bytes_per_block(&results))
    );
    if !failures.is_empty() {
        println!("\nproblems:");
        for f in &failures {
            println!("  {f}");
        }
    }
    if let Some(path) = &options.json {
        let json = render_json(&medians, &rss, per_block, options.quick);
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("bench: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("\nwrote {}", path.display());
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

/// Peak RSS per config, in KiB: the median VmHWM over the runs of the
/// `strings` workload (or, when it did not run, the largest median over the
/// workloads that did). Configs run at another scale are left out.
fn peak_rss(results: &Results, options: &Options) -> BTreeMap<&'static str, (u64, &'static str)> {
    let mut rss = BTreeMap::new();
    for config in &options.configs {
        if options.quick && config.quick_extra_scale != 1 {
            continue;
        }
        let median_of = |workload: &str| {
            let samples = results.get(workload)?.get(config.name)?;
            let mut v: Vec<f64> = samples.iter().map(|s| s.vmhwm_kib as f64).collect();
            median(&mut v).map(|m| m as u64)
        };
        if let Some(kib) = median_of("strings") {
            rss.insert(config.name, (kib, "strings"));
        } else if let Some((kib, workload)) = results
            .keys()
            .filter_map(|w| Some((median_of(w)?, *w)))
            .max()
        {
            rss.insert(config.name, (kib, workload));
        }
    }
    rss
}

/// `tracker_memory()` / live traced blocks in `tracking` mode on `strings`,
/// while its strings are alive (median over runs), with the figures of the
/// median run.
fn bytes_per_block(results: &Results) -> Option<(f64, usize, usize)> {
    let samples = results.get("strings")?.get("tracking")?;
    let mut per: Vec<(f64, usize, usize)> = samples
        .iter()
        .filter_map(|s| {
            let bytes: usize = s.extra.get("tracker_bytes")?.parse().ok()?;
            let blocks: usize = s.extra.get("live_blocks")?.parse().ok()?;
            (blocks > 0).then(|| (bytes as f64 / blocks as f64, bytes, blocks))
        })
        .collect();
    per.sort_by(|a, b| a.0.total_cmp(&b.0));
    per.get(per.len() / 2).copied()
}

/// The live table's bytes (without interned stacks and symbols) per live
/// block, in the same runs as [`bytes_per_block`] (median over runs).
fn table_bytes_per_block(results: &Results) -> Option<f64> {
    let samples = results.get("strings")?.get("tracking")?;
    let mut per: Vec<f64> = samples
        .iter()
        .filter_map(|s| {
            let bytes: usize = s.extra.get("table_bytes")?.parse().ok()?;
            let blocks: usize = s.extra.get("live_blocks")?.parse().ok()?;
            (blocks > 0).then(|| bytes as f64 / blocks as f64)
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per.get(per.len() / 2).copied()
}

fn format_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else {
        format!("{:.1}ms", s * 1000.0)
    }
}

fn render_table(
    options: &Options,
    medians: &BTreeMap<&str, BTreeMap<&str, f64>>,
    rss: &BTreeMap<&str, (u64, &str)>,
    per_block: Option<(f64, usize, usize)>,
    table_per_block: Option<f64>,
    scale_of: impl Fn(&Config) -> u64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nmemassert allocation-overhead benchmark: median of {} runs per cell{}",
        options.runs,
        if options.quick { ", --quick" } else { "" }
    );
    let _ = writeln!(
        out,
        "cells: median wall time / its baseline's. `system` shows its time; `system_fp` is \
         vs `system` (the cost of frame pointers);\n`system_aa` is `system` built again as another binary (the A/A control: its distance \
         from 1.00x is noise);\nmod_alloc and tracking_fp are vs `system_fp` \
         (all three built with -C force-frame-pointers=yes: mod-alloc's backtraces feature walks \
         frame pointers)."
    );
    for c in &options.configs {
        let scale = scale_of(c);
        if scale != 1 {
            let _ = writeln!(
                out,
                "{} ran at counts / {scale} (to keep --quick quick); its times are multiplied by {} \
                 before the ratio.",
                c.name, scale
            );
        }
    }
    let _ = writeln!(
        out,
        "memassert modes: off = installed, not tracing; counting = an all-threads counting Scope \
         (exact figures, a record per live block, no stacks); tracking = an all-threads Scope with \
         16-frame tracebacks, every live block with its site stack.\n"
    );
    let name_width = 9;
    let col_width = |c: &Config| c.name.len().max(9);
    let _ = write!(out, "{:<name_width$}", "workload");
    for c in &options.configs {
        let _ = write!(out, " {:>w$}", c.name, w = col_width(c));
    }
    out.push('\n');
    for workload in &options.workloads {
        let _ = write!(out, "{workload:<name_width$}");
        let row = medians.get(workload);
        for c in &options.configs {
            let value = row.and_then(|r| r.get(c.name));
            let cell = match (value, c.baseline) {
                (None, _) => "-".to_string(),
                (Some(&s), "") => format_seconds(s),
                (Some(&s), base) => match row.and_then(|r| r.get(base)) {
                    Some(&b) if b > 0.0 => format!("{:.2}x", s / b),
                    _ => format!("({})", format_seconds(s)),
                },
            };
            let _ = write!(out, " {cell:>w$}", w = col_width(c));
        }
        out.push('\n');
    }
    if !rss.is_empty() {
        let _ = write!(out, "\npeak RSS (MiB, VmHWM):");
        for c in &options.configs {
            if let Some((kib, workload)) = rss.get(c.name) {
                let where_ = if *workload == "strings" {
                    String::new()
                } else {
                    format!(" [{workload}]")
                };
                let _ = write!(out, " {} {:.0}{where_},", c.name, *kib as f64 / 1024.0);
            }
        }
        out.pop();
        let _ = writeln!(
            out,
            "{}",
            if rss.values().all(|(_, w)| *w == "strings") {
                "  (strings workload)"
            } else {
                ""
            }
        );
    }
    match per_block {
        Some((per, bytes, blocks)) => {
            let _ = writeln!(
                out,
                "tracker memory per live block (tracking, strings, while alive): {per:.1} B \
                 (tracker_memory() {bytes} B / {blocks} live tracked blocks; includes interned \
                 stacks and symbols){}",
                table_per_block
                    .map(|t| format!("; the live table alone: {t:.1} B"))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "tracker memory per live block: not measured (needs strings + tracking)"
            );
        }
    }
    out
}

/// The one-time cost memassert's modes pay before the workload's clock
/// starts (the first tracked allocation reads the binary's symbol table).
fn render_warmup(results: &Results, options: &Options) -> String {
    let mut parts = Vec::new();
    for c in &options.configs {
        let mut v: Vec<f64> = results
            .values()
            .filter_map(|per_config| per_config.get(c.name))
            .flatten()
            .filter_map(|s| s.extra.get("warmup_seconds")?.parse().ok())
            .collect();
        if let Some(m) = median(&mut v) {
            parts.push(format!("{} {}", c.name, format_seconds(m)));
        }
    }
    if parts.is_empty() {
        return String::new();
    }
    format!(
        "one-time cost of the first tracked allocation (reads symbol tables; not in the cells): {}\n",
        parts.join(", ")
    )
}

fn render_json(
    medians: &BTreeMap<&str, BTreeMap<&str, f64>>,
    rss: &BTreeMap<&str, (u64, &str)>,
    per_block: Option<(f64, usize, usize)>,
    quick: bool,
) -> String {
    let mut out = String::from("{\n  \"workloads\": {");
    for (i, (workload, per_config)) in medians.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n    \"{workload}\": {{",
            if i == 0 { "" } else { "," }
        );
        for (j, (config, secs)) in per_config.iter().enumerate() {
            let _ = write!(
                out,
                "{}\"{config}\": {secs:.9}",
                if j == 0 { "" } else { ", " }
            );
        }
        out.push('}');
    }
    out.push_str("\n  },\n  \"bytes_per_block\": ");
    match per_block {
        Some((per, _, _)) => {
            let _ = write!(out, "{per:.1}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\n  \"peak_rss_kib\": {");
    for (i, (config, (kib, _))) in rss.iter().enumerate() {
        let _ = write!(out, "{}\"{config}\": {kib}", if i == 0 { "" } else { ", " });
    }
    let _ = write!(out, "}},\n  \"quick\": {quick}\n}}\n");
    out
}

/// The run's noise floor: the largest distance of `system_aa` (the same
/// code as `system`, another binary) from 1.00x over the workloads.
fn noise_floor(medians: &BTreeMap<&str, BTreeMap<&str, f64>>) -> Option<f64> {
    medians
        .values()
        .filter_map(|row| Some((row.get("system_aa")? / row.get("system")?).ln().abs()))
        .reduce(f64::max)
        .map(f64::exp_m1)
}

/// `value` against the target `limit` (lower is better), with `floor` the
/// relative noise: met or missed only when beyond it.
fn verdict(value: f64, limit: f64, floor: f64) -> &'static str {
    if value * (1.0 + floor) <= limit {
        "met"
    } else if value >= limit * (1.0 + floor) {
        "MISSED"
    } else {
        "within noise"
    }
}

/// The performance targets (issue 20, round three), each called met, missed, or within
/// the run's noise floor; targets whose configurations did not run are
/// left out.
fn render_targets(
    medians: &BTreeMap<&str, BTreeMap<&str, f64>>,
    rss: &BTreeMap<&str, (u64, &str)>,
    per_block: Option<(f64, usize, usize)>,
    table_per_block: Option<f64>,
) -> String {
    let mut out = String::new();
    let Some(floor) = noise_floor(medians) else {
        return "\nno noise floor (system_aa did not run): targets not judged\n".to_string();
    };
    let per_workload: Vec<String> = medians
        .iter()
        .filter_map(|(w, row)| {
            Some(format!(
                "{w} {:.2}x",
                row.get("system_aa")? / row.get("system")?
            ))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nnoise floor: {:.1}% (system_aa / system: {})",
        floor * 100.0,
        per_workload.join(", ")
    );
    let ratio = |workload: &str, config: &str, base: &str| -> Option<f64> {
        let row = medians.get(workload)?;
        Some(row.get(config)? / row.get(base)?)
    };
    let _ = writeln!(out, "targets (value vs limit):");
    let mut line = |what: String, value: f64, limit: f64| {
        let _ = writeln!(
            out,
            "  {:<58} {:>8.2} vs {:<6.2} {}",
            what,
            value,
            limit,
            verdict(value, limit, floor)
        );
    };
    let workloads: Vec<&str> = medians.keys().copied().collect();
    for &w in &workloads {
        if let Some(r) = ratio(w, "off", "system") {
            line(format!("off / system, {w} (<= 1.05x)"), r, 1.05);
        }
    }
    // Counting against stats_alloc's own ratio (its shared atomics are the
    // floor for a shared counter).
    for &w in &workloads {
        if let (Some(c), Some(st)) = (
            ratio(w, "counting", "system"),
            ratio(w, "stats_alloc", "system"),
        ) {
            line(
                format!(
                    "counting / system, {w} (<= 1.5 x stats_alloc = {:.2}x)",
                    1.5 * st
                ),
                c,
                1.5 * st,
            );
        }
    }
    if let Some(r) = ratio("box32", "tracking", "system") {
        line("tracking / system, box32 (<= 10x)".to_string(), r, 10.0);
    }
    // Not realloc: it makes few allocations, so "dhat / 8" there would ask
    // for less than the system allocator's own time.
    for &w in workloads.iter().filter(|&&w| w != "realloc") {
        if let (Some(t), Some(d)) = (ratio(w, "tracking", "system"), ratio(w, "dhat", "system")) {
            line(
                format!("tracking / system, {w} (<= dhat / 8 = {:.2}x)", d / 8.0),
                t,
                d / 8.0,
            );
        }
    }
    if let Some(r) = ratio("box32", "tracking_fp", "system_fp") {
        line("tracking_fp / system_fp, box32 (<= 3x)".to_string(), r, 3.0);
    }
    for &w in &workloads {
        if let (Some(t), Some(m)) = (
            ratio(w, "tracking_fp", "system_fp"),
            ratio(w, "mod_alloc", "system_fp"),
        ) {
            line(
                format!("tracking_fp / mod_alloc, {w} (<= 1.5x)"),
                t / m,
                1.5,
            );
        }
    }
    for (config, base) in [
        ("counting", "system"),
        ("tracking", "system"),
        ("tracking_fp", "system_fp"),
    ] {
        if let (Some(two), Some(one)) =
            (ratio("threads", config, base), ratio("box32", config, base))
        {
            line(
                format!("{config}: 2-thread ratio / 1-thread ratio (threads / box32, <= 1.5x)"),
                two / one,
                1.5,
            );
        }
    }
    // The target leaves interned stacks out: the live table's bytes alone
    // (the total, stacks and symbols included, when that is not reported).
    if let Some(per) = table_per_block.or(per_block.map(|(per, _, _)| per)) {
        line(
            "live-table bytes per live block, strings (<= 24 B)".to_string(),
            per,
            24.0,
        );
    }
    if let (Some((t, "strings")), Some((s, "strings"))) = (rss.get("tracking"), rss.get("system")) {
        line(
            "peak RSS tracking / system, strings (<= 1.5x)".to_string(),
            *t as f64 / *s as f64,
            1.5,
        );
    }
    out
}
