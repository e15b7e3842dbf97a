//! `foo_contract`: one `static MethodContract` per method and the `ServiceContract`.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::generate::ServiceGen;
use crate::model::{BreakerPolicy, ClientPolicy, RetryPolicy};

pub(crate) fn generate(service: &ServiceGen<'_>) -> TokenStream {
    let h = service.herald;
    let module = format_ident!("{}_contract", service.snake);
    let service_name = &service.model.full_name;
    let statics = service.methods.iter().map(|m| {
        let ident = &m.contract_ident;
        let name = &m.model.name;
        let path = format!("/{service_name}/{name}");
        let kind = match (m.model.client_streaming, m.model.server_streaming) {
            (false, false) => quote!(Unary),
            (false, true) => quote!(ServerStreaming),
            (true, false) => quote!(ClientStreaming),
            (true, true) => quote!(BidiStreaming),
        };
        let deadline = option_millis(h, m.model.deadline);
        let client = client_policy(h, &m.model.client);
        let doc = format!(" The contract of `{service_name}/{name}`.");
        quote! {
            #[doc = #doc]
            pub static #ident: #h::codegen::MethodContract = #h::codegen::MethodContract {
                service: #service_name,
                method: #name,
                path: #path,
                kind: #h::codegen::RpcKind::#kind,
                deadline: #deadline,
                client: #client,
            };
        }
    });
    let idents = service.methods.iter().map(|m| &m.contract_ident);
    let app_error = match &service.model.app_error {
        Some(e) => {
            let name = &e.full_name;
            quote!(Some(#name))
        }
        None => quote!(None),
    };
    let doc = format!(" The contract of service `{service_name}`, generated from its `.proto`.");
    quote! {
        #[doc = #doc]
        pub mod #module {
            #(#statics)*

            /// The service's contract.
            pub static SERVICE: #h::codegen::ServiceContract = #h::codegen::ServiceContract {
                name: #service_name,
                methods: &[#(&#idents),*],
                app_error: #app_error,
                descriptor_set: super::FILE_DESCRIPTOR_SET,
            };
        }
    }
}

fn client_policy(h: &syn::Path, policy: &ClientPolicy) -> TokenStream {
    let timeout = option_millis(h, policy.timeout);
    let idempotent = policy.idempotent;
    let retry = match &policy.retry {
        Some(retry) => {
            let r = retry_policy(h, retry);
            quote!(Some(#r))
        }
        None => quote!(None),
    };
    let breaker = match &policy.circuit_breaker {
        Some(breaker) => {
            let b = breaker_policy(h, breaker);
            quote!(Some(#b))
        }
        None => quote!(None),
    };
    quote! {
        #h::codegen::ClientPolicy {
            timeout: #timeout,
            idempotent: #idempotent,
            retry: #retry,
            circuit_breaker: #breaker,
        }
    }
}

fn retry_policy(h: &syn::Path, retry: &RetryPolicy) -> TokenStream {
    let RetryPolicy {
        max_attempts,
        multiplier,
        ..
    } = retry;
    let initial = millis(h, retry.initial_backoff);
    let max = millis(h, retry.max_backoff);
    let codes = retry.retriable.iter().map(|c| code_variant(c));
    quote! {
        #h::codegen::RetryPolicy {
            max_attempts: #max_attempts,
            initial_backoff: #initial,
            max_backoff: #max,
            multiplier: #multiplier,
            retriable: &[#(#h::codegen::Code::#codes),*],
        }
    }
}

fn breaker_policy(h: &syn::Path, breaker: &BreakerPolicy) -> TokenStream {
    let BreakerPolicy {
        failure_ratio,
        minimum_requests,
        ..
    } = breaker;
    let window = millis(h, breaker.window);
    let open_for = millis(h, breaker.open_for);
    quote! {
        #h::codegen::BreakerPolicy {
            window: #window,
            failure_ratio: #failure_ratio,
            minimum_requests: #minimum_requests,
            open_for: #open_for,
        }
    }
}

fn millis(h: &syn::Path, d: Duration) -> TokenStream {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    quote!(#h::codegen::millis(#ms))
}

fn option_millis(h: &syn::Path, d: Option<Duration>) -> TokenStream {
    match d {
        Some(d) => {
            let m = millis(h, d);
            quote!(Some(#m))
        }
        None => quote!(None),
    }
}

/// `NOT_FOUND` → `NotFound`.
pub(crate) fn code_variant(name: &str) -> syn::Ident {
    format_ident!("{}", heck::ToUpperCamelCase::to_upper_camel_case(name))
}
