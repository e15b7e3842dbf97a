//! Emits Rust for each service and app error enum, through prost-build's service hook so
//! that it lands in the package's module beside the message types.
//!
//! Per service `Foo` (module names as tonic's, so the layout is familiar):
//! - `foo_contract`: a `static` contract per method and one for the service;
//! - `foo_server`: the handler trait `Foo` and `FooServer`, which adds it to a server;
//! - `foo_client`: `FooClient`, whose calls apply the contract.
//!
//! Generated code names only `herald::codegen` items.

mod app_error;
mod client;
mod contract;
mod server;

use proc_macro2::TokenStream;
use quote::format_ident;

use crate::model::{Method, Model, Service};

/// prost-build's hook: called per service and per package.
#[derive(Debug)]
pub(crate) struct Generator {
    pub(crate) model: Model,
    pub(crate) herald: syn::Path,
    /// Absolute path of the encoded descriptor set, embedded for server reflection.
    pub(crate) descriptors: std::path::PathBuf,
}

/// What generation needs of one method: its model and prost's names for it.
pub(crate) struct MethodGen<'a> {
    pub(crate) model: &'a Method,
    /// Rust method name, snake case.
    pub(crate) ident: syn::Ident,
    /// `STORE`: the contract static.
    pub(crate) contract_ident: syn::Ident,
    /// Request and response types, as paths from inside the generated submodules.
    pub(crate) input: syn::Type,
    pub(crate) output: syn::Type,
    pub(crate) docs: Vec<String>,
}

/// What generation needs of one service.
pub(crate) struct ServiceGen<'a> {
    pub(crate) model: &'a Service,
    /// `Cache`.
    pub(crate) ident: syn::Ident,
    /// `cache`, the stem of the submodules.
    pub(crate) snake: String,
    pub(crate) methods: Vec<MethodGen<'a>>,
    /// The app error type from inside the submodules, or herald's `NoAppError`.
    pub(crate) app_error: syn::Type,
    pub(crate) docs: Vec<String>,
    pub(crate) herald: &'a syn::Path,
}

impl prost_build::ServiceGenerator for Generator {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        let full_name = format!("{}.{}", service.package, service.proto_name);
        let Some(model) = self
            .model
            .services
            .iter()
            .find(|s| s.full_name == full_name)
        else {
            // A service of an imported file not asked for: prost still emits its messages.
            return;
        };
        let herald = &self.herald;
        let methods = service
            .methods
            .iter()
            .filter_map(|m| {
                let model = model.methods.iter().find(|mm| mm.name == m.proto_name)?;
                Some(MethodGen {
                    model,
                    ident: format_ident!("{}", m.name),
                    contract_ident: format_ident!("{}", m.name.to_uppercase()),
                    input: from_submodule(&m.input_type),
                    output: from_submodule(&m.output_type),
                    docs: m.comments.leading.clone(),
                })
            })
            .collect();
        let app_error = match &model.app_error {
            Some(e) => from_submodule(&e.rust_path),
            None => syn::parse_quote!(#herald::codegen::NoAppError),
        };
        let service_gen = ServiceGen {
            model,
            ident: format_ident!("{}", service.name),
            snake: heck::ToSnakeCase::to_snake_case(service.name.as_str()),
            methods,
            app_error,
            docs: service.comments.leading.clone(),
            herald,
        };
        let tokens: TokenStream = [
            contract::generate(&service_gen),
            server::generate(&service_gen),
            client::generate(&service_gen),
        ]
        .into_iter()
        .collect();
        buf.push_str(&pretty(tokens));
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        if self
            .model
            .services
            .iter()
            .any(|s| s.full_name.rsplit_once('.').map(|(p, _)| p) == Some(package))
        {
            let path = self.descriptors.display().to_string();
            buf.push_str(&pretty(quote::quote! {
                /// The encoded `FileDescriptorSet` of this package and its imports: what server
                /// reflection answers with.
                pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(#path);
            }));
        }
        let tokens: TokenStream = self
            .model
            .app_errors
            .iter()
            .filter(|e| e.package == package)
            .map(|e| app_error::generate(e, &self.herald))
            .collect();
        if !tokens.is_empty() {
            buf.push_str(&pretty(tokens));
        }
    }
}

/// A Rust path prost gave relative to the package module, seen from one module deeper.
fn from_submodule(path: &str) -> syn::Type {
    let path = if path.starts_with("::") || path.starts_with("crate::") {
        path.to_owned()
    } else {
        format!("super::{path}")
    };
    syn::parse_str(&path)
        .unwrap_or_else(|e| panic!("prost gave an unparsable type path {path}: {e}"))
}

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("generated code is valid Rust");
    prettyplease::unparse(&file)
}

/// `#[doc = "..."]` lines.
pub(crate) fn doc_attrs(lines: &[String]) -> TokenStream {
    lines
        .iter()
        .map(|line| {
            let line = format!(" {}", line.trim());
            quote::quote!(#[doc = #line])
        })
        .collect()
}
