//! The wire protocol, in three steps that every request goes through in both
//! servers:
//!
//! 1. [`framer`]: bytes, arriving in whatever pieces TCP delivers, become
//!    lines (or the one framing error, a line that is too long).
//! 2. [`request`]: a line becomes a [`Request`] or an error to send back.
//! 3. [`response`]: an answer becomes exactly one line of text.
//!
//! [`dialect`] puts the three together behind one interface, the
//! [`RequestReader`]: bytes in, requests out, and answers out as bytes,
//! framed for whichever protocol the connection speaks: the line protocol
//! or [`http`], the same requests spelt as HTTP/1.1.
//!
//! None of it touches a socket, so the same code serves a blocking worker and
//! a non-blocking event loop, and the unit tests can feed it any byte stream.

pub mod dialect;
pub mod framer;
pub mod http;
pub mod request;
pub mod response;

pub use dialect::{busy_answer, Incoming, Reply, RequestReader, Work};
pub use framer::{LineFramer, LineTooLong};
pub use request::{parse_request, Request, RequestError};
