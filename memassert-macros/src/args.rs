//! The arguments of `#[track_alloc(...)]`, parsed into [`Args`].

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token, UnOp};

use crate::size::parse_size;

/// Every accepted argument name, in documentation order.
pub(crate) const ARGUMENTS: &[&str] = &[
    "max",
    "leaks",
    "allocs",
    "total",
    "no_growth",
    "ignore",
    "repeat",
    "frames",
    "top",
    "threads",
    "snapshot",
];

/// A parsed value and the span of the tokens it was written as.
#[derive(Debug, Clone)]
pub(crate) struct WithSpan<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// Which threads' allocations are attributed to the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    /// Only the test's own thread (the default).
    Current,
    /// Every thread in the process.
    All,
}

/// How the report is recorded as an insta snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Snapshot {
    /// `snapshot`: named after the test function.
    Default,
    /// `snapshot = "name"`.
    Named(String),
}

/// The parsed arguments of `#[track_alloc(...)]`.
#[derive(Debug, Default)]
pub(crate) struct Args {
    /// Size limits as the user wrote them (`("max", "1 MB")`), for reports.
    pub(crate) written: Vec<(&'static str, String)>,
    pub(crate) max: Option<WithSpan<u64>>,
    pub(crate) leaks: Option<WithSpan<u64>>,
    pub(crate) allocs: Option<WithSpan<u64>>,
    pub(crate) total: Option<WithSpan<u64>>,
    pub(crate) no_growth: Vec<WithSpan<String>>,
    /// `ignore`: function paths of infrastructure whose leaked blocks are
    /// not counted (and are listed as such in a failure report).
    pub(crate) ignore: Vec<WithSpan<String>>,
    pub(crate) repeat: Option<WithSpan<u64>>,
    pub(crate) frames: Option<WithSpan<u64>>,
    pub(crate) top: Option<WithSpan<u64>>,
    pub(crate) threads: Option<Threads>,
    pub(crate) snapshot: Option<Snapshot>,
}

const SIZE_HINT: &str = "a size string such as \"1 MiB\"";
const NO_GROWTH_HINT: &str = "a string pattern such as \"src/cache.rs\" or \"src/cache.rs:42\", \
     or an array of them such as [\"src/a.rs\", \"src/b.rs:12\"]";
const IGNORE_HINT: &str = "a function path such as \"mycrate::pool::Registry::grow\" \
     (a function or a module prefix of one), or an array of them";
const THREADS_HINT: &str = "\"current\" (the default) or \"all\"";
const SNAPSHOT_HINT: &str = "no value (`snapshot`) or a string name (`snapshot = \"name\"`)";

fn int_hint(name: &str, min: u64, example: u64) -> String {
    if min == 0 {
        format!("an integer such as `{name} = {example}`")
    } else {
        format!("an integer of at least {min} such as `{name} = {example}`")
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            // `parse_any` so that a keyword (`type = ...`) gets the
            // unknown-argument message rather than "expected identifier".
            let name = Ident::parse_any(input)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse::<Expr>()?)
            } else {
                None
            };
            args.apply(&name, value)?;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

impl Args {
    fn apply(&mut self, name: &Ident, value: Option<Expr>) -> syn::Result<()> {
        let key = name.unraw().to_string();
        let duplicate = || syn::Error::new(name.span(), format!("duplicate argument `{key}`"));
        match key.as_str() {
            "max" | "leaks" | "total" => {
                let slot = match key.as_str() {
                    "max" => &mut self.max,
                    "leaks" => &mut self.leaks,
                    _ => &mut self.total,
                };
                if slot.is_some() {
                    return Err(duplicate());
                }
                let lit = expect_str(name, value, SIZE_HINT)?;
                let bytes = parse_size(&lit.value()).map_err(|e| syn::Error::new(lit.span(), e))?;
                let field = match key.as_str() {
                    "max" => "max",
                    "leaks" => "leaks",
                    _ => "total",
                };
                self.written.push((field, lit.value().trim().to_string()));
                *slot = Some(WithSpan {
                    value: bytes,
                    span: lit.span(),
                });
            }
            "allocs" | "repeat" | "frames" | "top" => {
                let (slot, min, example) = match key.as_str() {
                    "allocs" => (&mut self.allocs, 0, 0),
                    "repeat" => (&mut self.repeat, 1, 5),
                    "frames" => (&mut self.frames, 1, 16),
                    _ => (&mut self.top, 1, 10),
                };
                if slot.is_some() {
                    return Err(duplicate());
                }
                *slot = Some(expect_int(name, value, min, example)?);
            }
            "no_growth" | "ignore" => {
                let hint = if key == "ignore" {
                    IGNORE_HINT
                } else {
                    NO_GROWTH_HINT
                };
                let Some(value) = value else {
                    return Err(missing_value(name, hint));
                };
                let patterns = match value {
                    Expr::Array(array) => {
                        if array.elems.is_empty() {
                            return Err(syn::Error::new_spanned(
                                &array,
                                format!("{key} needs at least one pattern; it takes {hint}"),
                            ));
                        }
                        array
                            .elems
                            .into_iter()
                            .map(|e| as_str(e, &key, hint))
                            .collect::<syn::Result<Vec<_>>>()?
                    }
                    other => vec![as_str(other, &key, hint)?],
                };
                for pattern in &patterns {
                    let text = pattern.value();
                    if text.trim().is_empty() {
                        return Err(syn::Error::new(
                            pattern.span(),
                            format!("empty {key} pattern; {key} takes {hint}"),
                        ));
                    }
                    if key == "ignore" && !is_function_path(&text) {
                        return Err(syn::Error::new(
                            pattern.span(),
                            format!("invalid ignore pattern {text:?}: ignore takes {hint}"),
                        ));
                    }
                }
                let slot = if key == "ignore" {
                    &mut self.ignore
                } else {
                    &mut self.no_growth
                };
                slot.extend(patterns.into_iter().map(|lit| WithSpan {
                    value: lit.value(),
                    span: lit.span(),
                }));
            }
            "threads" => {
                if self.threads.is_some() {
                    return Err(duplicate());
                }
                let lit = expect_str(name, value, THREADS_HINT)?;
                self.threads = Some(match lit.value().as_str() {
                    "current" => Threads::Current,
                    "all" => Threads::All,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("invalid threads value {other:?}: expected {THREADS_HINT}"),
                        ))
                    }
                });
            }
            "snapshot" => {
                if self.snapshot.is_some() {
                    return Err(duplicate());
                }
                self.snapshot = Some(match value {
                    None => Snapshot::Default,
                    Some(value) => {
                        let lit = as_str(value, &key, SNAPSHOT_HINT)?;
                        let name = lit.value();
                        if name.trim().is_empty() {
                            return Err(syn::Error::new(
                                lit.span(),
                                format!("empty snapshot name; snapshot takes {SNAPSHOT_HINT}"),
                            ));
                        }
                        Snapshot::Named(name)
                    }
                });
            }
            _ => {
                return Err(syn::Error::new(
                    name.span(),
                    format!(
                        "unknown argument `{key}`; expected one of: {}",
                        ARGUMENTS.join(", ")
                    ),
                ))
            }
        }
        Ok(())
    }
}

/// `a::b::C::f`: identifiers (generic arguments allowed) joined by `::`,
/// at least two of them; no file glob, no spaces.
fn is_function_path(text: &str) -> bool {
    let head: String = {
        // Generic arguments (`Injector<T>`) are ignored when matching.
        let mut depth = 0usize;
        text.chars()
            .filter(|&c| {
                match c {
                    '<' => depth += 1,
                    '>' => depth = depth.saturating_sub(1),
                    _ => return depth == 0,
                }
                false
            })
            .collect()
    };
    let segments: Vec<&str> = head.split("::").collect();
    segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        })
}

fn missing_value(name: &Ident, hint: &str) -> syn::Error {
    syn::Error::new(
        name.span(),
        format!("missing value for `{name}`: {name} takes {hint}"),
    )
}

fn wrong_type(value: &Expr, key: &str, hint: &str) -> syn::Error {
    syn::Error::new(value.span(), format!("{key} takes {hint}"))
}

/// The string literal `value` is, or an error saying what `key` takes.
fn as_str(value: Expr, key: &str, hint: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        Expr::Group(group) => as_str(*group.expr, key, hint),
        other => Err(wrong_type(&other, key, hint)),
    }
}

fn expect_str(name: &Ident, value: Option<Expr>, hint: &str) -> syn::Result<LitStr> {
    let key = name.unraw().to_string();
    let value = value.ok_or_else(|| missing_value(name, hint))?;
    as_str(value, &key, hint)
}

fn expect_int(
    name: &Ident,
    value: Option<Expr>,
    min: u64,
    example: u64,
) -> syn::Result<WithSpan<u64>> {
    let key = name.unraw().to_string();
    let hint = int_hint(&key, min, example);
    let value = value.ok_or_else(|| missing_value(name, &hint))?;
    let lit = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit,
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            return Err(syn::Error::new(
                unary.span(),
                format!("{key} cannot be negative; it takes {hint}"),
            ))
        }
        other => return Err(wrong_type(&other, &key, &hint)),
    };
    if !matches!(lit.suffix(), "" | "usize") {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "{key} takes an unsuffixed integer (or a `usize` one), not `{}`",
                lit.suffix()
            ),
        ));
    }
    let n: u64 = lit.base10_parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!("{key} is too large; the largest value is {}", u64::MAX),
        )
    })?;
    if n < min {
        return Err(syn::Error::new(
            lit.span(),
            format!("{key} must be at least {min}, got {n}"),
        ));
    }
    Ok(WithSpan {
        value: n,
        span: lit.span(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Args {
        syn::parse_str::<Args>(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn error(s: &str) -> String {
        match syn::parse_str::<Args>(s) {
            Ok(args) => panic!("{s:?} should not parse, got {args:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn value(v: &Option<WithSpan<u64>>) -> Option<u64> {
        v.as_ref().map(|s| s.value)
    }

    #[test]
    fn empty() {
        let args = parse("");
        assert!(args.max.is_none() && args.leaks.is_none() && args.allocs.is_none());
        assert!(args.total.is_none() && args.no_growth.is_empty() && args.repeat.is_none());
        assert!(args.frames.is_none() && args.top.is_none());
        assert!(args.threads.is_none() && args.snapshot.is_none());
    }

    #[test]
    fn all_arguments() {
        let args = parse(
            r#"max = "1MiB", leaks = "0B", allocs = 0, total = "10 MB",
               no_growth = "src/cache.rs", repeat = 5, frames = 32, top = 3,
               threads = "all", snapshot = "profile","#,
        );
        assert_eq!(value(&args.max), Some(1 << 20));
        assert_eq!(value(&args.leaks), Some(0));
        assert_eq!(value(&args.allocs), Some(0));
        assert_eq!(value(&args.total), Some(10_000_000));
        let patterns: Vec<_> = args.no_growth.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(patterns, ["src/cache.rs"]);
        assert_eq!(value(&args.repeat), Some(5));
        assert_eq!(value(&args.frames), Some(32));
        assert_eq!(value(&args.top), Some(3));
        assert_eq!(args.threads, Some(Threads::All));
        assert_eq!(args.snapshot, Some(Snapshot::Named("profile".into())));
    }

    #[test]
    fn sizes() {
        assert_eq!(value(&parse(r#"max = "1.5 MiB""#).max), Some(1_572_864));
        assert_eq!(value(&parse(r#"max = "1MB""#).max), Some(1_000_000));
        assert_eq!(value(&parse(r#"max = "1mib""#).max), Some(1 << 20));
        assert_eq!(value(&parse(r#"total = " 2 GiB ""#).total), Some(2 << 30));
    }

    #[test]
    fn snapshot_flag_and_threads_current() {
        let args = parse(r#"snapshot, threads = "current""#);
        assert_eq!(args.snapshot, Some(Snapshot::Default));
        assert_eq!(args.threads, Some(Threads::Current));
    }

    #[test]
    fn ignore_forms_accumulate() {
        let args = parse(
            r#"ignore = "a::b", ignore = ["crossbeam_deque::deque::Injector<T>::push", "c::D::e",]"#,
        );
        let patterns: Vec<_> = args.ignore.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(
            patterns,
            [
                "a::b",
                "crossbeam_deque::deque::Injector<T>::push",
                "c::D::e"
            ]
        );
    }

    #[test]
    fn no_growth_forms_accumulate() {
        let args =
            parse(r#"no_growth = "a.rs", no_growth = ["b.rs:12", "c::d"], no_growth = ["e.rs",]"#);
        let patterns: Vec<_> = args.no_growth.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(patterns, ["a.rs", "b.rs:12", "c::d", "e.rs"]);
    }

    #[test]
    fn usize_suffix_is_accepted() {
        assert_eq!(value(&parse("allocs = 3usize").allocs), Some(3));
    }

    #[test]
    fn unknown_argument() {
        assert_eq!(
            error(r#"maxx = "1 MiB""#),
            "unknown argument `maxx`; expected one of: max, leaks, allocs, total, no_growth, ignore, \
             repeat, frames, top, threads, snapshot"
        );
        assert!(error("type = 1").starts_with("unknown argument `type`"));
    }

    #[test]
    fn duplicates() {
        assert_eq!(
            error(r#"max = "1 MiB", max = "2 MiB""#),
            "duplicate argument `max`"
        );
        assert_eq!(
            error("allocs = 1, allocs = 1"),
            "duplicate argument `allocs`"
        );
        assert_eq!(error("snapshot, snapshot"), "duplicate argument `snapshot`");
        assert_eq!(
            error(r#"threads = "all", threads = "all""#),
            "duplicate argument `threads`"
        );
        for name in ["leaks", "total"] {
            assert_eq!(
                error(&format!(r#"{name} = "1B", {name} = "1B""#)),
                format!("duplicate argument `{name}`")
            );
        }
        for name in ["repeat", "frames", "top"] {
            assert_eq!(
                error(&format!("{name} = 1, {name} = 2")),
                format!("duplicate argument `{name}`")
            );
        }
    }

    #[test]
    fn invalid_sizes() {
        assert_eq!(
            error(r#"max = "12 XB""#),
            "invalid size \"12 XB\": unknown unit \"XB\"; expected a number followed by \
             B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. \"1 MiB\")"
        );
        assert!(error(r#"leaks = "-1B""#).contains("cannot be negative"));
        assert!(error(r#"total = """#).starts_with("invalid size \"\""));
        assert!(error(r#"max = "16777216 TiB""#).contains("too large"));
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            error("max = 5"),
            "max takes a size string such as \"1 MiB\""
        );
        assert_eq!(
            error("max"),
            "missing value for `max`: max takes a size string such as \"1 MiB\""
        );
        assert_eq!(
            error(r#"allocs = "3""#),
            "allocs takes an integer such as `allocs = 0`"
        );
        assert!(error("allocs = -1").starts_with("allocs cannot be negative"));
        assert!(error("allocs = 1.5").starts_with("allocs takes an integer"));
        assert!(error("allocs = 3u8").contains("unsuffixed"));
        assert!(error("allocs = 99999999999999999999").contains("too large"));
        assert!(error("repeat").starts_with("missing value for `repeat`"));
        assert!(error("threads = all").starts_with("threads takes \"current\""));
        assert!(error("no_growth = 3").starts_with("no_growth takes a string pattern"));
        assert!(error("no_growth = [\"a\", 3]").starts_with("no_growth takes a string pattern"));
        assert!(error("no_growth = []").starts_with("no_growth needs at least one pattern"));
        assert!(error("no_growth = \"\"").starts_with("empty no_growth pattern"));
        assert!(error("no_growth").starts_with("missing value for `no_growth`"));
        assert!(
            error("ignore = \"src/pool.rs\"").starts_with("invalid ignore pattern \"src/pool.rs\"")
        );
        assert!(error("ignore = \"pool\"").starts_with("invalid ignore pattern"));
        assert!(error("ignore = []").starts_with("ignore needs at least one pattern"));
        assert!(error("ignore = 3").starts_with("ignore takes a function path"));
        assert!(error("ignore").starts_with("missing value for `ignore`"));
        assert!(error("snapshot = 1").starts_with("snapshot takes no value"));
        assert!(error("snapshot = \"\"").starts_with("empty snapshot name"));
    }

    #[test]
    fn minimums() {
        assert_eq!(error("repeat = 0"), "repeat must be at least 1, got 0");
        assert_eq!(error("frames = 0"), "frames must be at least 1, got 0");
        assert_eq!(error("top = 0"), "top must be at least 1, got 0");
        assert_eq!(value(&parse("allocs = 0").allocs), Some(0));
        assert_eq!(value(&parse("repeat = 1").repeat), Some(1));
    }

    #[test]
    fn bad_threads_value() {
        assert_eq!(
            error(r#"threads = "both""#),
            "invalid threads value \"both\": expected \"current\" (the default) or \"all\""
        );
    }

    #[test]
    fn separators() {
        assert!(syn::parse_str::<Args>(r#"max = "1 MiB" leaks = "0B""#).is_err());
        assert!(syn::parse_str::<Args>(r#"max = "1 MiB";"#).is_err());
        assert!(syn::parse_str::<Args>(",").is_err());
    }
}
