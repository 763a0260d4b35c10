//! The router to a product's own commands (the seed's 多业务接入): frames
//! whose command falls in a registered range go to that range's handler,
//! the app's own before the one registered for every app.

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;

use super::{Engine, Session};
use crate::error::{Error, Result};
use crate::ports::BusinessHandler;
use crate::types::AppId;

/// One registration: for an app (or every app), a command range, a handler.
struct Registration {
    app: Option<AppId>,
    range: RangeInclusive<u16>,
    handler: Arc<dyn BusinessHandler>,
}

/// Every registered business handler.
#[derive(Default)]
pub(super) struct Handlers(Vec<Registration>);

impl Handlers {
    pub(super) fn add(
        &mut self,
        app: Option<AppId>,
        range: RangeInclusive<u16>,
        handler: Arc<dyn BusinessHandler>,
    ) {
        self.0.push(Registration {
            app,
            range,
            handler,
        });
    }

    /// Every range within the business range, none overlapping another of
    /// the same app.
    pub(super) fn validate(&self) -> Result<()> {
        for (i, r) in self.0.iter().enumerate() {
            if *r.range.start() < bubble_proto::BUSINESS_FIRST || r.range.is_empty() {
                return Err(Error::invalid(format!(
                    "business handler range {:?} must lie within {:#06x}..=0xffff",
                    r.range,
                    bubble_proto::BUSINESS_FIRST
                )));
            }
            for other in &self.0[..i] {
                if other.app == r.app
                    && r.range.start() <= other.range.end()
                    && other.range.start() <= r.range.end()
                {
                    return Err(Error::invalid(format!(
                        "business handler ranges {:?} and {:?} overlap for the same app",
                        other.range, r.range
                    )));
                }
            }
        }
        Ok(())
    }

    /// The app's own handler for `command`, else the one for every app.
    fn find(&self, app: &AppId, command: u16) -> Option<Arc<dyn BusinessHandler>> {
        let serving = |r: &&Registration| r.range.contains(&command);
        self.0
            .iter()
            .filter(serving)
            .find(|r| r.app.as_ref() == Some(app))
            .or_else(|| self.0.iter().filter(serving).find(|r| r.app.is_none()))
            .map(|r| r.handler.clone())
    }
}

impl Engine {
    /// Hands a product command to its registered handler.
    pub async fn handle_business(
        &self,
        session: &Session,
        command: u16,
        body: Bytes,
    ) -> Result<Bytes> {
        let handler = self
            .inner
            .handlers
            .find(&session.app, command)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no business handler for command {command:#06x} in app {}",
                    session.app
                ))
            })?;
        handler.handle(&session.caller(), command, body).await
    }
}
