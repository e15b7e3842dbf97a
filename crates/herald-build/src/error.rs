//! Why a contract could not be built.

use std::fmt;

/// A `.proto` that does not compile, a contract that breaks herald's rules, or output that
/// could not be written.
pub struct Error {
    kind: Kind,
}

enum Kind {
    Compile(protox::Error),
    Contract(Vec<String>),
    Generate(std::io::Error),
}

// === impl Error ===

impl Error {
    pub(crate) fn compile(error: protox::Error) -> Self {
        Error {
            kind: Kind::Compile(error),
        }
    }

    pub(crate) fn contract(problems: Vec<String>) -> Self {
        Error {
            kind: Kind::Contract(problems),
        }
    }

    pub(crate) fn generate(error: std::io::Error) -> Self {
        Error {
            kind: Kind::Generate(error),
        }
    }

    /// Each broken rule of the contract, one line each (empty for other errors).
    pub fn problems(&self) -> &[String] {
        match &self.kind {
            Kind::Contract(problems) => problems,
            _ => &[],
        }
    }

    /// Whether the `.proto` itself did not compile (syntax, unknown names or options).
    pub fn is_compile(&self) -> bool {
        matches!(self.kind, Kind::Compile(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Compile(error) => {
                write!(f, "herald-build: the .proto does not compile: {error}")?;
                if let Some(file) = error.file() {
                    write!(f, " (in {file})")?;
                }
                Ok(())
            }
            Kind::Contract(problems) => {
                write!(
                    f,
                    "herald-build: the contract breaks {} rule(s):",
                    problems.len()
                )?;
                for problem in problems {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
            Kind::Generate(error) => {
                write!(f, "herald-build: cannot write generated code: {error}")
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `build.rs` callers `.unwrap()` or `?` from main: show the readable form.
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}
