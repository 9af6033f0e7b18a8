//! Expansion of `#[track_alloc]` into a call to memassert's test runner.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::{ItemFn, LitInt, ReturnType};

use crate::args::{Args, Snapshot, Threads, WithSpan};

/// Expands the attribute; errors become `compile_error!` next to the
/// unchanged item, so that the only error shown is ours.
pub(crate) fn track_alloc(args: TokenStream, item: TokenStream) -> TokenStream {
    let raw_args = args.clone();
    let args = match syn::parse2::<Args>(args) {
        Ok(args) => args,
        Err(error) => return with_error(error, item),
    };
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "#[track_alloc] can only be placed on a function (usually a `#[test]` fn)",
            );
            return with_error(error, item);
        }
    };
    match below_async_runtime(&raw_args, Box::new(func)) {
        Ok(reordered) => reordered,
        Err(func) => expand_fn(&args, *func),
    }
}

/// Above `#[tokio::test]`: puts this attribute back *below* it, so that
/// tokio's attribute expands first and this one wraps the test function it
/// generates, exactly as when written in that order. Both orders then
/// measure the same thing (the runtime built, the body run, the runtime
/// dropped), and a failure points at the test.
fn below_async_runtime(
    args: &TokenStream,
    mut func: Box<ItemFn>,
) -> Result<TokenStream, Box<ItemFn>> {
    if func.sig.asyncness.is_none() {
        return Err(func);
    }
    let index = func.attrs.iter().position(|attr| {
        let segments: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        segments == ["tokio", "test"]
    });
    let Some(index) = index else {
        return Err(func);
    };
    let runtime = func.attrs.remove(index);
    Ok(quote! {
        #runtime
        #[::memassert::track_alloc(#args)]
        #func
    })
}

fn with_error(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.to_compile_error();
    quote! { #error #item }
}

/// A `usize` literal carrying the span of the argument it came from, so that
/// a value too large for the target's `usize` is reported there (by the
/// deny-by-default `overflowing_literals` lint).
fn usize_lit(value: &WithSpan<u64>) -> LitInt {
    LitInt::new(&format!("{}usize", value.value), value.span)
}

fn spec(args: &Args, name: &str) -> TokenStream {
    let mut fields = Vec::new();
    for (field, value) in [
        ("max", &args.max),
        ("leaks", &args.leaks),
        ("allocs", &args.allocs),
        ("total", &args.total),
    ] {
        if let Some(value) = value {
            let field = syn::Ident::new(field, Span::call_site());
            let lit = usize_lit(value);
            fields.push(quote! { #field: ::core::option::Option::Some(#lit), });
        }
    }
    if !args.written.is_empty() {
        let written = args
            .written
            .iter()
            .map(|(field, text)| quote! { (#field, #text) });
        fields.push(quote! { written: &[#(#written),*], });
    }
    if !args.no_growth.is_empty() {
        let patterns = args
            .no_growth
            .iter()
            .map(|p| syn::LitStr::new(&p.value, p.span));
        fields.push(quote! { no_growth: &[#(#patterns),*], });
    }
    if !args.ignore.is_empty() {
        let patterns = args
            .ignore
            .iter()
            .map(|p| syn::LitStr::new(&p.value, p.span));
        fields.push(quote! { ignore: &[#(#patterns),*], });
    }
    for (field, value) in [
        ("repeat", &args.repeat),
        ("frames", &args.frames),
        ("top", &args.top),
    ] {
        if let Some(value) = value {
            let field = syn::Ident::new(field, Span::call_site());
            let lit = usize_lit(value);
            fields.push(quote! { #field: #lit, });
        }
    }
    if let Some(threads) = args.threads {
        let all = threads == Threads::All;
        fields.push(quote! { all_threads: #all, });
        if threads == Threads::Current {
            fields.push(quote! { current_thread_only: true, });
        }
    }
    if let Some(snapshot) = &args.snapshot {
        let snapshot_name = match snapshot {
            Snapshot::Default => name,
            Snapshot::Named(named) => named.as_str(),
        };
        fields.push(quote! {
            snapshot: ::core::option::Option::Some(
                |__memassert_report: &::memassert::Report| {
                    ::memassert::assert_snapshot!(__memassert_report, #snapshot_name)
                },
            ),
        });
    }
    quote! {
        ::memassert::__private::TestSpec {
            test: ::core::concat!(::core::module_path!(), "::", #name),
            file: ::core::file!(),
            #(#fields)*
            ..::memassert::__private::TestSpec::DEFAULT
        }
    }
}

/// Whether a type mentions `impl Trait`, which cannot be written as a
/// closure's return type or a `let` binding's type.
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        _ => false,
    })
}

fn expand_fn(args: &Args, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = sig.ident.unraw().to_string();
    let spec = spec(args, &name);

    // The body's return type, written out so that `?` and `return` in the
    // body infer as they did in the function. `None` when it can't be named.
    let ret = match &sig.output {
        ReturnType::Default => Some(quote! { () }),
        ReturnType::Type(_, ty) if !mentions_impl(ty.to_token_stream()) => {
            Some(ty.to_token_stream())
        }
        ReturnType::Type(..) => None,
    };

    // The user's block is emitted as is, keeping its spans: errors and
    // report sites point at the user's lines.
    let body = if sig.asyncness.is_some() {
        // `return` and `?` inside the async block leave the block, which is
        // the body's end. The typed binding pins the block's output type.
        let future = match ret {
            Some(ret) => quote_spanned! {Span::call_site()=>
                async move {
                    #[allow(clippy::let_and_return)]
                    let __memassert_output: #ret = #block;
                    __memassert_output
                }
            },
            None => quote! { async move #block },
        };
        quote! {
            ::memassert::__private::run_test_async(&#spec, || #future).await
        }
    } else {
        let closure = match ret {
            Some(ret) => quote! { || -> #ret #block },
            None => quote! { || #block },
        };
        quote! {
            ::memassert::__private::run_test(&#spec, #closure)
        }
    };

    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &str, item: &str) -> String {
        let out = track_alloc(args.parse().unwrap(), item.parse().unwrap());
        // Normalise token spacing for readable assertions.
        out.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn sync_fn_keeps_attributes_signature_and_body() {
        let out = expand(
            r#"max = "1 MiB", no_growth = ["a.rs", "b.rs:2"], ignore = "p::Q::grow", repeat = 3, threads = "all""#,
            "#[test] #[should_panic] pub(crate) fn grows() -> Result<(), E> { work()?; Ok(()) }",
        );
        assert!(
            out.starts_with(
                "# [test] # [should_panic] pub (crate) fn grows () -> Result < () , E > {"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                ":: memassert :: __private :: run_test (& :: memassert :: __private :: TestSpec {"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "test : :: core :: concat ! (:: core :: module_path ! () , \"::\" , \"grows\")"
            ),
            "{out}"
        );
        assert!(
            out.contains("max : :: core :: option :: Option :: Some (1048576usize)"),
            "{out}"
        );
        assert!(
            out.contains("no_growth : & [\"a.rs\" , \"b.rs:2\"]"),
            "{out}"
        );
        assert!(out.contains("ignore : & [\"p::Q::grow\"]"), "{out}");
        assert!(out.contains("repeat : 3usize"), "{out}");
        assert!(out.contains("all_threads : true"), "{out}");
        assert!(
            out.contains(".. :: memassert :: __private :: TestSpec :: DEFAULT }"),
            "{out}"
        );
        assert!(
            out.contains("|| -> Result < () , E > { work () ? ; Ok (()) }"),
            "{out}"
        );
        assert!(!out.contains("leaks"), "{out}");
    }

    #[test]
    fn bare_attribute_only_names_the_test() {
        let out = expand("", "fn r#try() {}");
        assert!(out.contains("\"try\""), "{out}");
        assert!(
            out.contains("file : :: core :: file ! () , .. :: memassert"),
            "{out}"
        );
        assert!(out.contains("|| -> () { }"), "{out}");
    }

    #[test]
    fn async_fn_awaits_run_test_async() {
        let out = expand(
            "allocs = 0",
            "async fn t() -> Result<(), E> { x().await?; Ok(()) }",
        );
        assert!(
            out.starts_with("async fn t () -> Result < () , E > {"),
            "{out}"
        );
        assert!(
            out.contains(":: memassert :: __private :: run_test_async (&"),
            "{out}"
        );
        assert!(
            out.contains("|| async move { # [allow (clippy :: let_and_return)] let __memassert_output : Result < () , E > = { x () . await ? ; Ok (()) } ; __memassert_output }) . await"),
            "{out}"
        );
    }

    #[test]
    fn above_tokio_test_moves_below_it() {
        let out = expand(
            "leaks = \"0B\"",
            "#[tokio::test(flavor = \"multi_thread\")] #[should_panic] async fn t() { x().await; }",
        );
        assert_eq!(
            out,
            "# [tokio :: test (flavor = \"multi_thread\")] # [:: memassert :: track_alloc (leaks = \"0B\")] # [should_panic] async fn t () { x () . await ; }"
        );
    }

    #[test]
    fn impl_trait_return_is_not_written_out() {
        let out = expand("", "fn t() -> impl Debug { 1 }");
        assert!(out.contains(", || { 1 })"), "{out}");
        let out = expand("", "async fn t() -> Box<impl Debug> { Box::new(1) }");
        assert!(
            out.contains(", || async move { Box :: new (1) }) . await"),
            "{out}"
        );
    }

    #[test]
    fn snapshot_names() {
        let out = expand("snapshot", "fn grows() {}");
        assert!(
            out.contains("snapshot : :: core :: option :: Option :: Some (| __memassert_report : & :: memassert :: Report | { :: memassert :: assert_snapshot ! (__memassert_report , \"grows\") } ,)"),
            "{out}"
        );
        let out = expand(r#"snapshot = "custom""#, "fn grows() {}");
        assert!(
            out.contains("assert_snapshot ! (__memassert_report , \"custom\")"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_item() {
        let out = expand("maxx = 1", "fn t() {}");
        assert!(out.starts_with(":: core :: compile_error ! {"), "{out}");
        assert!(out.ends_with("fn t () { }"), "{out}");
        let out = expand("", "struct S;");
        assert!(out.contains("can only be placed on a function"), "{out}");
        assert!(out.ends_with("struct S ;"), "{out}");
    }
}
