//! `impl AppError` for each `(herald.rpc_error)` enum.

use proc_macro2::TokenStream;
use quote::quote;

use crate::generate::contract::code_variant;
use crate::model::AppErrorEnum;

pub(crate) fn generate(e: &AppErrorEnum, h: &syn::Path) -> TokenStream {
    let ty: syn::Type = syn::parse_str(&e.rust_path).expect("enum paths are valid Rust");
    let full_name = &e.full_name;
    let arms = e.codes.iter().map(|(number, code)| {
        let variant = code_variant(code);
        quote!(#number => #h::codegen::Code::#variant,)
    });
    quote! {
        impl #h::codegen::AppError for #ty {
            const FULL_NAME: &'static str = #full_name;

            fn grpc_code(self) -> #h::codegen::Code {
                match self as i32 {
                    #(#arms)*
                    _ => #h::codegen::Code::Unknown,
                }
            }

            fn name(self) -> &'static str {
                self.as_str_name()
            }

            fn from_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
        }
    }
}
