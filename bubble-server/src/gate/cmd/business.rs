//! Business commands (>= 0x8000): the body goes to the product's handler
//! and its answer comes back under the same code.

use bytes::Bytes;

use bubble_core::{Engine, Error, Result, Session};
use bubble_proto::{Command, Frame};

use super::Reply;

/// A product command and its opaque body.
#[derive(Debug)]
pub struct Business {
    code: u16,
    body: Bytes,
}

impl Business {
    /// Takes the body as it is.
    pub fn parse(frame: &Frame) -> Result<Business> {
        match frame.command {
            Command::Business(code) => Ok(Business {
                code,
                body: frame.body.clone(),
            }),
            other => Err(Error::invalid(format!("{other} is not a business command"))),
        }
    }

    /// Runs the handler registered for the code (`NOT_FOUND` without one).
    pub async fn apply(self, engine: &Engine, session: &Session) -> Result<Reply> {
        let body = engine
            .handle_business(session, self.code, self.body)
            .await?;
        Ok(Reply::raw(Command::Business(self.code), body))
    }
}
