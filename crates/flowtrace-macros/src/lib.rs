//! `#[flowtrace::main]`: turns an `async fn(LambdaEvent<T>) -> Result<R, E>` into a traced
//! Lambda function. Use it through the `flowtrace` crate.
//!
//! The macro only checks the signature and expands to a call into `flowtrace`; all behaviour
//! lives in the library, where it is tested.

use proc_macro::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, ReturnType, parse_macro_input};

/// Generates `main` for a Lambda handler and runs it under flowtrace.
///
/// ```text
/// #[flowtrace::main]
/// async fn handler(event: LambdaEvent<SqsEvent>) -> Result<(), Error> { Ok(()) }
/// ```
///
/// `#[flowtrace::main(concurrent)]` runs it with `flowtrace::run_concurrent` (the
/// `concurrency` feature) for Lambda Managed Instances.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let handler = parse_macro_input!(item as ItemFn);
    match parse_args(args.into()).and_then(|concurrent| expand(&handler, concurrent)) {
        Ok(tokens) => tokens.into(),
        Err(error) => with_placeholder_main(&handler, error).into(),
    }
}

/// Keeps the user's item and a placeholder `main` beside the error, so the compiler reports
/// only what is wrong with the handler, not a missing `main` as well.
fn with_placeholder_main(handler: &ItemFn, error: Error) -> proc_macro2::TokenStream {
    let error = error.to_compile_error();
    if handler.sig.ident == "main" {
        return quote! { #error fn main() {} };
    }
    quote! {
        #error
        #[allow(dead_code)]
        #handler
        fn main() {}
    }
}

fn parse_args(args: proc_macro2::TokenStream) -> syn::Result<bool> {
    if args.is_empty() {
        return Ok(false);
    }
    let ident: syn::Ident = syn::parse2(args.clone())
        .map_err(|_| Error::new(args.span(), "#[flowtrace::main] takes no arguments, or `concurrent`"))?;
    if ident == "concurrent" {
        Ok(true)
    } else {
        Err(Error::new(ident.span(), "#[flowtrace::main] takes no arguments, or `concurrent`"))
    }
}

fn expand(handler: &ItemFn, concurrent: bool) -> syn::Result<proc_macro2::TokenStream> {
    let signature = &handler.sig;
    if signature.asyncness.is_none() {
        return Err(Error::new(
            signature.fn_token.span(),
            "#[flowtrace::main] goes on an `async fn` handler: `async fn handler(event: LambdaEvent<T>) -> Result<R, E>`",
        ));
    }
    if signature.ident == "main" {
        return Err(Error::new(
            signature.ident.span(),
            "#[flowtrace::main] generates `main` itself: give the handler another name, such as `handler`",
        ));
    }
    if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
        return Err(Error::new(signature.generics.span(), "a #[flowtrace::main] handler cannot be generic"));
    }
    if let Some(FnArg::Receiver(receiver)) = signature.inputs.first() {
        return Err(Error::new(receiver.span(), "a #[flowtrace::main] handler is a free function, not a method"));
    }
    if signature.inputs.len() != 1 {
        let span =
            if signature.inputs.is_empty() { signature.paren_token.span.join() } else { signature.inputs.span() };
        return Err(Error::new(
            span,
            "a #[flowtrace::main] handler takes exactly one argument: `event: LambdaEvent<T>`",
        ));
    }
    if matches!(signature.output, ReturnType::Default) {
        return Err(Error::new(
            signature.ident.span(),
            "a #[flowtrace::main] handler returns `Result<R, E>`: add a return type such as `-> Result<(), Error>`",
        ));
    }
    let name = &signature.ident;
    let run = if concurrent {
        quote! {
            ::flowtrace::__private::start_concurrent(::flowtrace::__private::service_fn(#name))
        }
    } else {
        quote! {
            ::flowtrace::__private::start(::flowtrace::__private::service_fn(#name))
        }
    };
    Ok(quote! {
        #handler

        fn main() -> ::core::result::Result<(), ::flowtrace::Error> {
            #run
        }
    })
}
