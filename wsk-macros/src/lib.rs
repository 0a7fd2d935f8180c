//! Procedural macros of [`wsk`](https://docs.rs/wsk).
//!
//! Dependency-free: the macro only scans the impl block's tokens.

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

/// Derives the `HAS_*` constants of an event-callback trait implementation
/// from the methods it defines, as Rust-for-Linux's `#[vtable]` does.
///
/// Each method `on_name` in the impl block adds `const HAS_NAME: bool = true;`
/// unless the block already sets that constant. Only implemented callbacks
/// are then installed in the provider's dispatch table and enabled.
///
/// The attribute is required: it also supplies a hidden associated constant
/// (`USE_VTABLE_ATTR`, as in Rust-for-Linux's `rust/macros/vtable.rs`) that
/// the traits declare without a default, so an impl block without it does
/// not compile — instead of compiling with every `HAS_*` false and silently
/// installing no callback:
///
/// ```compile_fail,E0046
/// struct Peer;
///
/// impl wsk::events::ConnectionEvents for Peer { // error: missing `USE_VTABLE_ATTR`
///     fn on_disconnect(&self, _: &wsk::events::EventContext<'_>, _: wsk::events::DisconnectFlags) {}
/// }
/// ```
///
/// ```
/// struct Peer;
///
/// #[wsk::vtable]
/// impl wsk::events::ConnectionEvents for Peer {
///     fn on_disconnect(&self, _: &wsk::events::EventContext<'_>, _: wsk::events::DisconnectFlags) {}
/// }
///
/// // As if the block had said `const HAS_DISCONNECT: bool = true;`.
/// use wsk::events::ConnectionEvents;
/// assert!(Peer::HAS_DISCONNECT);
/// assert!(!Peer::HAS_RECEIVE && !Peer::HAS_SEND_BACKLOG);
/// ```
#[proc_macro_attribute]
pub fn vtable(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[vtable] takes no arguments");
    }
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let Some(TokenTree::Group(body)) = tokens.last() else {
        return compile_error("#[vtable] applies to an `impl Trait for Type { ... }` block");
    };
    if body.delimiter() != Delimiter::Brace {
        return compile_error("#[vtable] applies to an `impl Trait for Type { ... }` block");
    }

    let inner: Vec<TokenTree> = body.stream().into_iter().collect();
    let mut methods = Vec::new();
    let mut declared = Vec::new();
    for pair in inner.windows(2) {
        if let (TokenTree::Ident(keyword), TokenTree::Ident(name)) = (&pair[0], &pair[1]) {
            let name = name.to_string();
            match keyword.to_string().as_str() {
                "fn" => {
                    if let Some(event) = name.strip_prefix("on_") {
                        methods.push(format!("HAS_{}", event.to_uppercase()));
                    }
                }
                "const" if name.starts_with("HAS_") => declared.push(name),
                _ => {}
            }
        }
    }

    let mut stream = body.stream();
    let marker: TokenStream = "const USE_VTABLE_ATTR: () = ();"
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid constant item"));
    stream.extend(marker);
    for constant in methods.iter().filter(|c| !declared.contains(c)) {
        let extra: TokenStream = format!("const {constant}: bool = true;")
            .parse()
            .unwrap_or_else(|_| unreachable!("a valid constant item"));
        stream.extend(extra);
    }
    let mut group = Group::new(Delimiter::Brace, stream);
    group.set_span(body.span());
    let last = tokens.len() - 1;
    tokens[last] = TokenTree::Group(group);
    tokens.into_iter().collect()
}

fn compile_error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});")
        .parse()
        .unwrap_or_else(|_| unreachable!("a valid macro call"))
}
