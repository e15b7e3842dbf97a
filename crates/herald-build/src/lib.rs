//! Code generation for herald, called from a `build.rs`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), herald_build::Error> {
//!     herald_build::compile_protos(&["proto/cache.proto"], &["proto"])
//! }
//! ```
//!
//! The `.proto` files compile with protox, a pure-Rust compiler: no `protoc` is needed. They
//! may `import "herald/options.proto";` with no include path. Then herald's options are read
//! from the descriptors and checked — a method with no deadline from any level, an unknown
//! gRPC code name or a negative duration fails the build with a message that names the
//! method and the fix — and Rust is generated: prost's messages, and per service a handler
//! trait, a server adapter, a typed client and a static contract table.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod error;
mod generate;
mod model;
mod read;
mod resolver;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use prost::Message;
use protox::file::{ChainFileResolver, GoogleFileResolver, IncludeFileResolver};

pub use error::Error;

/// The file, beside the generated code, holding the encoded `FileDescriptorSet`.
const DESCRIPTORS_FILE: &str = "herald_descriptor_set.bin";

/// Compiles `protos` (found under `includes`) into `OUT_DIR`, with the default settings.
///
/// # Errors
/// See [`Builder::compile`].
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(), Error> {
    Builder::new().compile(protos, includes)
}

/// Compiles `protos` (found under `includes`, with herald's options and Google's types built
/// in) into an encoded `FileDescriptorSet` holding them and every file they import. Nothing is
/// checked beyond the protobuf language: for tools that call methods by descriptor (`herald
/// call --proto`), including services that carry no herald options.
///
/// # Errors
/// A file is missing or does not compile.
pub fn descriptor_set(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<Vec<u8>, Error> {
    let mut compiler = compiler(includes);
    compiler.open_files(protos).map_err(Error::compile)?;
    Ok(compiler.encode_file_descriptor_set())
}

/// A protox compiler over `includes`, then herald's options, then Google's well-known types.
fn compiler(includes: &[impl AsRef<Path>]) -> protox::Compiler {
    let mut resolver = ChainFileResolver::new();
    for include in includes {
        resolver.add(IncludeFileResolver::new(include.as_ref().to_path_buf()));
    }
    resolver.add(resolver::HeraldOptions);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    compiler
}

/// Settings of a code generation.
#[must_use]
#[derive(Debug, Clone)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    herald_path: String,
    fallback_deadline: Option<std::time::Duration>,
}

/// What [`Builder::check`] found in a valid contract.
#[derive(Debug)]
pub struct Checked {
    /// Services read, by full name.
    pub services: Vec<String>,
    /// Things allowed but probably not meant (a retried method that is not idempotent).
    pub warnings: Vec<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Builder ===

impl Builder {
    /// Output to `OUT_DIR`; generated code refers to the runtime as `::herald`.
    pub fn new() -> Self {
        Builder {
            out_dir: None,
            herald_path: "::herald".to_owned(),
            fallback_deadline: None,
        }
    }

    /// The deadline of every method of a service that names none at any level — for
    /// contracts one does not own and cannot annotate (a vendor's API, `grpc.testing`).
    /// herald's own rule stays for everything else: a contract you write names its deadlines.
    pub fn fallback_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.fallback_deadline = Some(deadline);
        self
    }

    /// Writes to `dir` instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The path generated code uses for the herald runtime crate (when it is renamed).
    pub fn herald_path(mut self, path: impl Into<String>) -> Self {
        self.herald_path = path.into();
        self
    }

    /// Reads and checks the contracts of `protos` without generating anything.
    ///
    /// # Errors
    /// A `.proto` that does not compile, or a contract that breaks a rule.
    pub fn check(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<Checked, Error> {
        let Loaded {
            model, warnings, ..
        } = load(protos, includes, self.fallback_deadline)?;
        Ok(Checked {
            services: model.services.into_iter().map(|s| s.full_name).collect(),
            warnings,
        })
    }

    /// Compiles `protos` (paths of files under one of `includes`) and writes one Rust file
    /// per package, to be brought in with `include!(concat!(env!("OUT_DIR"), "/pkg.rs"))`.
    /// Warnings go to cargo; `cargo:rerun-if-changed` is printed for each file.
    ///
    /// # Errors
    /// A `.proto` that does not compile, a contract that breaks a rule (every broken rule is
    /// listed), or output that cannot be written.
    pub fn compile(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let Loaded {
            fds,
            everything,
            model,
            warnings,
        } = load(protos, includes, self.fallback_deadline)?;
        let in_build_script = std::env::var_os("CARGO_MANIFEST_DIR").is_some()
            && std::env::var_os("OUT_DIR").is_some();
        if in_build_script {
            for warning in &warnings {
                println!("cargo:warning=herald-build: {warning}");
            }
            for proto in protos {
                println!("cargo:rerun-if-changed={}", proto.as_ref().display());
            }
        }
        let herald: syn::Path = syn::parse_str(&self.herald_path).map_err(|e| {
            Error::generate(std::io::Error::other(format!(
                "invalid herald_path {:?}: {e}",
                self.herald_path
            )))
        })?;
        // The encoded descriptors, for server reflection: generated code embeds them, with
        // every file they import (herald's options, Google's types), so that a reflection
        // client (grpcurl, `herald call`) can build the whole set.
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::generate(std::io::Error::other(
                        "OUT_DIR is not set: call from build.rs or set out_dir",
                    ))
                })?,
        };
        std::fs::create_dir_all(&out_dir).map_err(Error::generate)?;
        let descriptors =
            std::path::absolute(out_dir.join(DESCRIPTORS_FILE)).map_err(Error::generate)?;
        std::fs::write(&descriptors, everything).map_err(Error::generate)?;
        let mut config = prost_build::Config::new();
        config.out_dir(&out_dir);
        config.service_generator(Box::new(generate::Generator {
            model,
            herald,
            descriptors,
        }));
        config.compile_fds(fds).map_err(Error::generate)
    }
}

/// What compiling the contract gives.
struct Loaded {
    /// The files to generate messages from: the user's own.
    fds: prost_types::FileDescriptorSet,
    /// Every file, imports included, encoded with their options intact.
    everything: Vec<u8>,
    model: model::Model,
    warnings: Vec<String>,
}

/// Compiles and reads: the descriptors to generate messages from, the checked model, and
/// warnings.
fn load(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
    fallback_deadline: Option<std::time::Duration>,
) -> Result<Loaded, Error> {
    let mut compiler = compiler(includes);
    compiler.open_files(protos).map_err(Error::compile)?;
    let asked: Vec<String> = compiler
        .files()
        .filter(|f| !f.is_import() && f.name() != resolver::OPTIONS_NAME)
        .map(|f| f.name().to_owned())
        .collect();
    // herald's extensions must be known even to a contract that imports none of them (one
    // we do not own, compiled with a fallback deadline).
    compiler
        .open_file(resolver::OPTIONS_NAME)
        .map_err(Error::compile)?;

    // Options are read from the encoded bytes: decoded through prost_types they would lose
    // their extension fields.
    let bytes = compiler.encode_file_descriptor_set();
    let pool = prost_reflect::DescriptorPool::decode(bytes.as_slice())
        .map_err(|e| Error::generate(std::io::Error::other(e.to_string())))?;
    let (model, warnings) =
        read::read(&pool, &asked, fallback_deadline).map_err(Error::contract)?;

    let mut fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())
        .map_err(|e| Error::generate(std::io::Error::other(e.to_string())))?;
    // herald's options and Google's types are not the user's to generate.
    fds.file
        .retain(|f| f.name() != resolver::OPTIONS_NAME && f.package() != "google.protobuf");
    Ok(Loaded {
        fds,
        everything: bytes,
        model,
        warnings,
    })
}
