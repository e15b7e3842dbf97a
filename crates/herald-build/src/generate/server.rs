//! `foo_server`: the handler trait and the adapter that adds it to a herald server. One
//! function per RPC shape, as tonic-build does.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::generate::{MethodGen, ServiceGen, doc_attrs};

pub(crate) fn generate(service: &ServiceGen<'_>) -> TokenStream {
    let h = service.herald;
    let module = format_ident!("{}_server", service.snake);
    let contract = format_ident!("{}_contract", service.snake);
    let trait_ident = &service.ident;
    let server_ident = format_ident!("{}Server", service.ident);
    let docs = doc_attrs(&service.docs);
    let trait_items = service.methods.iter().map(|m| trait_item(service, m));
    let registrations = service.methods.iter().map(|m| registration(service, m));
    let server_doc = format!(" Adds a [`{trait_ident}`] handler to a herald server.");
    quote! {
        /// The server side of the service: implement the trait, add `...Server::new(handler)`.
        pub mod #module {
            #docs
            pub trait #trait_ident: Send + Sync + 'static {
                #(#trait_items)*
            }

            #[doc = #server_doc]
            #[derive(Debug)]
            pub struct #server_ident<T> {
                handler: #h::codegen::Arc<T>,
            }

            impl<T: #trait_ident> #server_ident<T> {
                /// Serves `handler`.
                pub fn new(handler: T) -> Self {
                    Self::from_arc(#h::codegen::Arc::new(handler))
                }

                /// Serves a handler that is shared with other code.
                pub fn from_arc(handler: #h::codegen::Arc<T>) -> Self {
                    Self { handler }
                }
            }

            impl<T: #trait_ident> #h::codegen::IntoService for #server_ident<T> {
                fn into_methods(self) -> #h::codegen::ServiceMethods {
                    let handler = self.handler;
                    #h::codegen::ServiceMethods::new(&super::#contract::SERVICE)
                        #(#registrations)*
                }
            }
        }
    }
}

fn trait_item(service: &ServiceGen<'_>, m: &MethodGen<'_>) -> TokenStream {
    let h = service.herald;
    let e = &service.app_error;
    let ident = &m.ident;
    let output = &m.output;
    let docs = doc_attrs(&m.docs);
    let request = request_param(service, m);
    if m.model.server_streaming {
        let stream = stream_type(m);
        let stream_doc = format!(" The stream of responses of [`Self::{ident}`].");
        quote! {
            #[doc = #stream_doc]
            type #stream: #h::codegen::Stream<Item = Result<#output, #h::codegen::Error<#e>>> + Send + 'static;
            #docs
            fn #ident(
                &self,
                ctx: &#h::codegen::Context,
                #request,
            ) -> impl #h::codegen::Future<Output = Result<Self::#stream, #h::codegen::Error<#e>>> + Send;
        }
    } else {
        quote! {
            #docs
            fn #ident(
                &self,
                ctx: &#h::codegen::Context,
                #request,
            ) -> impl #h::codegen::Future<Output = Result<#output, #h::codegen::Error<#e>>> + Send;
        }
    }
}

fn request_param(service: &ServiceGen<'_>, m: &MethodGen<'_>) -> TokenStream {
    let h = service.herald;
    let input = &m.input;
    if m.model.client_streaming {
        quote!(requests: #h::codegen::RequestStream<#input>)
    } else {
        quote!(request: #input)
    }
}

/// `GetManyStream` for `get_many`.
fn stream_type(m: &MethodGen<'_>) -> syn::Ident {
    format_ident!(
        "{}Stream",
        heck::ToUpperCamelCase::to_upper_camel_case(m.model.name.as_str())
    )
}

fn registration(service: &ServiceGen<'_>, m: &MethodGen<'_>) -> TokenStream {
    let contract = format_ident!("{}_contract", service.snake);
    let contract_ident = &m.contract_ident;
    let ident = &m.ident;
    let shape = match (m.model.client_streaming, m.model.server_streaming) {
        (false, false) => format_ident!("unary"),
        (false, true) => format_ident!("server_streaming"),
        (true, false) => format_ident!("client_streaming"),
        (true, true) => format_ident!("bidi_streaming"),
    };
    quote! {
        .#shape(&super::#contract::#contract_ident, {
            let handler = handler.clone();
            move |ctx, request| {
                let handler = handler.clone();
                async move { handler.#ident(&ctx, request).await }
            }
        })
    }
}
