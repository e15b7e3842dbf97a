//! `foo_client`: the typed client. Every call takes the caller's context and applies the
//! method's contract (deadline, timeout, propagation).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::generate::{MethodGen, ServiceGen, doc_attrs};

pub(crate) fn generate(service: &ServiceGen<'_>) -> TokenStream {
    let h = service.herald;
    let module = format_ident!("{}_client", service.snake);
    let client_ident = format_ident!("{}Client", service.ident);
    let calls = service.methods.iter().map(|m| call(service, m));
    let doc = format!(" A client of `{}`.", service.model.full_name);
    quote! {
        /// The client side of the service.
        pub mod #module {
            #[doc = #doc]
            #[derive(Clone, Debug)]
            pub struct #client_ident {
                channel: #h::codegen::Channel,
            }

            impl #client_ident {
                /// A client calling through `channel`.
                pub fn new(channel: #h::codegen::Channel) -> Self {
                    Self { channel }
                }

                #(#calls)*
            }
        }
    }
}

fn call(service: &ServiceGen<'_>, m: &MethodGen<'_>) -> TokenStream {
    let h = service.herald;
    let e = &service.app_error;
    let contract = format_ident!("{}_contract", service.snake);
    let contract_ident = &m.contract_ident;
    let ident = &m.ident;
    let input = &m.input;
    let output = &m.output;
    let docs = doc_attrs(&m.docs);
    let errors = quote! {
        ///
        /// # Errors
        /// The server's status (with its app error, if any), or a local failure: the
        /// caller's deadline already spent, no connection.
    };
    match (m.model.client_streaming, m.model.server_streaming) {
        (false, false) => quote! {
            #docs
            #errors
            pub async fn #ident(
                &self,
                ctx: &#h::codegen::Context,
                request: #input,
            ) -> Result<#output, #h::codegen::CallError<#e>> {
                self.channel.unary(ctx, &super::#contract::#contract_ident, request).await
            }
        },
        (false, true) => quote! {
            #docs
            #errors
            pub async fn #ident(
                &self,
                ctx: &#h::codegen::Context,
                request: #input,
            ) -> Result<#h::codegen::ResponseStream<#output, #e>, #h::codegen::CallError<#e>> {
                self.channel.server_streaming(ctx, &super::#contract::#contract_ident, request).await
            }
        },
        (true, false) => quote! {
            #docs
            #errors
            pub async fn #ident(
                &self,
                ctx: &#h::codegen::Context,
                requests: impl #h::codegen::Stream<Item = #input> + Send + 'static,
            ) -> Result<#output, #h::codegen::CallError<#e>> {
                self.channel.client_streaming(ctx, &super::#contract::#contract_ident, requests).await
            }
        },
        (true, true) => quote! {
            #docs
            #errors
            pub async fn #ident(
                &self,
                ctx: &#h::codegen::Context,
                requests: impl #h::codegen::Stream<Item = #input> + Send + 'static,
            ) -> Result<#h::codegen::ResponseStream<#output, #e>, #h::codegen::CallError<#e>> {
                self.channel.bidi_streaming(ctx, &super::#contract::#contract_ident, requests).await
            }
        },
    }
}
