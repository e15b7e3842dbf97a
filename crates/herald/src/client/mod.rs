//! The client side: a [`Channel`] to a server, and the calls generated clients make on it.
//!
//! Every call made with a [`Context`](crate::Context) applies the method's contract:
//! `grpc-timeout` is the smaller of the caller's remaining budget, the method's deadline and
//! the contract's response timeout; the request id and the allow-listed headers travel on;
//! a call whose budget is already spent fails here with DEADLINE_EXCEEDED, without sending.

mod call;
mod channel;
mod connector;
mod response_stream;
mod transport;

pub use channel::{Channel, ChannelError};
pub use response_stream::ResponseStream;
