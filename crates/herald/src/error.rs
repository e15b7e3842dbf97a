//! The errors of handlers ([`Error`]) and of client calls ([`CallError`]).
//!
//! Courier's rule at the API boundary: a service answers with its *own* error codes. A
//! handler that gets an error from a call to a different service and returns it as-is (with
//! `?`) answers UNKNOWN, because the downstream's codes mean nothing to this service's
//! callers; a handler that means to pass the code on says so with [`Error::propagate`] or
//! maps it to one of its own app errors.

use std::fmt;

use bytes::Bytes;

use crate::Code;
use crate::app_error::{self, AppError, NoAppError};

/// The error a handler returns: one of the service's app errors, a plain gRPC status, or an
/// error from a downstream call.
pub struct Error<E: AppError = NoAppError> {
    inner: Box<ErrorInner<E>>,
}

/// The error of a client call.
pub struct CallError<E: AppError = NoAppError> {
    inner: Box<CallInner<E>>,
}

struct ErrorInner<E> {
    kind: Kind<E>,
    message: String,
}

enum Kind<E> {
    App(E),
    Status(Code),
    /// From a call to another service, returned as-is: UNKNOWN at this service's boundary.
    Unmapped {
        code: Code,
        method: &'static str,
    },
}

struct CallInner<E> {
    code: Code,
    message: String,
    app: Option<E>,
    method: &'static str,
    /// The error was made by this process (a deadline spent before sending, a breaker
    /// open, a refused connection): the request never reached a server handler.
    local: bool,
}

// === impl Error ===

impl<E: AppError> Error<E> {
    /// One of the service's app errors; it travels with its gRPC code and its own name.
    pub fn app(error: E, message: impl Into<String>) -> Self {
        Self::with_kind(Kind::App(error), message.into())
    }

    /// A plain gRPC status.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self::with_kind(Kind::Status(code), message.into())
    }

    /// INVALID_ARGUMENT.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// INTERNAL.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// UNAVAILABLE.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// A downstream error passed on deliberately, keeping its gRPC code and message (its app
    /// code, which belongs to the other service, is dropped unless it is this service's own).
    pub fn propagate<F: AppError>(error: CallError<F>) -> Self {
        let CallInner {
            code, message, app, ..
        } = *error.inner;
        match app.and_then(same_enum::<F, E>) {
            Some(own) => Self::app(own, message),
            None => Self::new(code, message),
        }
    }

    /// The code the caller will see.
    pub fn code(&self) -> Code {
        match self.inner.kind {
            Kind::App(e) => e.grpc_code(),
            Kind::Status(code) => code,
            Kind::Unmapped { .. } => Code::Unknown,
        }
    }

    /// The app error, if this is one.
    pub fn app_error(&self) -> Option<E> {
        match self.inner.kind {
            Kind::App(e) => Some(e),
            _ => None,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    fn with_kind(kind: Kind<E>, message: String) -> Self {
        Error {
            inner: Box::new(ErrorInner { kind, message }),
        }
    }

    /// The status sent to the caller, applying the API-boundary rule.
    pub(crate) fn into_status(self) -> tonic::Status {
        let ErrorInner { kind, message } = *self.inner;
        match kind {
            Kind::App(e) => {
                let details = app_error::encode_details(e, &message);
                tonic::Status::with_details(e.grpc_code().to_tonic(), message, Bytes::from(details))
            }
            Kind::Status(code) => tonic::Status::new(code.to_tonic(), message),
            Kind::Unmapped { code, method } => {
                tracing::warn!(
                    downstream = method,
                    %code,
                    error = %message,
                    "handler returned a downstream error unmapped; the caller gets UNKNOWN"
                );
                tonic::Status::unknown(format!("unmapped error from downstream call {method}"))
            }
        }
    }
}

/// Returning a downstream error with `?` is allowed, and answers UNKNOWN (unless the error is
/// this very service's own app error: within a service the app code travels).
impl<E: AppError, F: AppError> From<CallError<F>> for Error<E> {
    fn from(error: CallError<F>) -> Self {
        let CallInner {
            code,
            message,
            app,
            method,
            ..
        } = *error.inner;
        match app.and_then(same_enum::<F, E>) {
            Some(own) => Self::app(own, message),
            None => Self::with_kind(Kind::Unmapped { code, method }, message),
        }
    }
}

/// `value` as an `E` when `F` and `E` are the same protobuf enum.
fn same_enum<F: AppError, E: AppError>(value: F) -> Option<E> {
    if F::FULL_NAME.is_empty() || F::FULL_NAME != E::FULL_NAME {
        return None;
    }
    E::from_name(value.name())
}

impl<E: AppError> fmt::Debug for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code());
        match &self.inner.kind {
            Kind::App(e) => d.field("app", e),
            Kind::Status(_) => &mut d,
            Kind::Unmapped { code, method } => d.field("downstream", &(method, code)),
        };
        d.field("message", &self.inner.message).finish()
    }
}

impl<E: AppError> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.kind {
            Kind::App(e) => write!(f, "{} ({}): {}", self.code(), e.name(), self.inner.message),
            _ => write!(f, "{}: {}", self.code(), self.inner.message),
        }
    }
}

impl<E: AppError> std::error::Error for Error<E> {}

// === impl CallError ===

impl<E: AppError> CallError<E> {
    /// An error from the server's status.
    pub(crate) fn from_status(method: &'static str, status: &tonic::Status) -> Self {
        let code = Code::from_tonic(status.code());
        let app = app_error::decode_details::<E>(status.details());
        CallError {
            inner: Box::new(CallInner {
                code,
                message: status.message().to_owned(),
                app,
                method,
                local: false,
            }),
        }
    }

    /// An error made here, before the request reached any server.
    pub(crate) fn local(method: &'static str, code: Code, message: impl Into<String>) -> Self {
        CallError {
            inner: Box::new(CallInner {
                code,
                message: message.into(),
                app: None,
                method,
                local: true,
            }),
        }
    }

    /// The same error, known to have reached no server handler (a refused stream, a
    /// request a closing connection handed back): the retry loop may replay it.
    pub(crate) fn into_local(mut self) -> Self {
        self.inner.local = true;
        self
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        self.inner.code
    }

    /// The callee's app error, when it sent one of its enum.
    pub fn app(&self) -> Option<E> {
        self.inner.app
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The method called, as `package.Service/Method`.
    pub fn method(&self) -> &'static str {
        self.inner.method
    }

    /// Whether the error was made by this process and the request reached no handler.
    pub fn is_local(&self) -> bool {
        self.inner.local
    }

    /// Whether the call ran out of time.
    pub fn is_deadline_exceeded(&self) -> bool {
        self.inner.code == Code::DeadlineExceeded
    }
}

impl<E: AppError> fmt::Debug for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallError")
            .field("method", &self.inner.method)
            .field("code", &self.inner.code)
            .field("app", &self.inner.app)
            .field("message", &self.inner.message)
            .field("local", &self.inner.local)
            .finish()
    }
}

impl<E: AppError> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "call to {} failed with {}",
            self.inner.method, self.inner.code
        )?;
        if let Some(app) = self.inner.app {
            write!(f, " ({})", app.name())?;
        }
        if !self.inner.message.is_empty() {
            write!(f, ": {}", self.inner.message)?;
        }
        Ok(())
    }
}

impl<E: AppError> std::error::Error for CallError<E> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app_error::tests::{OtherError, TestError};

    fn remote<E: AppError>(status: tonic::Status) -> CallError<E> {
        CallError::from_status("other.Other/Call", &status)
    }

    #[test]
    fn app_error_travels_with_code_and_name() {
        let status = Error::app(TestError::Full, "ten keys max").into_status();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let back = remote::<TestError>(status);
        assert_eq!(back.app(), Some(TestError::Full));
        assert_eq!(back.code(), Code::FailedPrecondition);
        assert_eq!(back.message(), "ten keys max");
    }

    #[test]
    fn downstream_error_returned_as_is_becomes_unknown() {
        let from_other =
            remote::<OtherError>(Error::app(OtherError::Missing, "gone").into_status());
        assert_eq!(from_other.app(), Some(OtherError::Missing));
        let returned: Error<TestError> = from_other.into();
        assert_eq!(returned.code(), Code::Unknown);
        assert_eq!(returned.app_error(), None);
        let status = returned.into_status();
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert!(
            status.details().is_empty(),
            "the other service's app code must not leak"
        );
    }

    #[test]
    fn own_app_error_travels_within_the_service() {
        let from_self = remote::<TestError>(Error::app(TestError::Missing, "no key").into_status());
        let returned: Error<TestError> = from_self.into();
        assert_eq!(returned.app_error(), Some(TestError::Missing));
        assert_eq!(returned.code(), Code::NotFound);
    }

    #[test]
    fn propagate_keeps_the_code_on_purpose() {
        let from_other =
            remote::<OtherError>(Error::app(OtherError::Missing, "gone").into_status());
        let passed: Error<TestError> = Error::propagate(from_other);
        assert_eq!(passed.code(), Code::NotFound);
        assert_eq!(passed.app_error(), None);
        assert_eq!(passed.into_status().code(), tonic::Code::NotFound);
    }
}
