//! In-memory adapters for every port: the engine's default on one machine
//! for hot state, and the reference the conformance suite is checked against.
//!
//! Each keeps its state behind one lock, so every operation is atomic and
//! the adapters are correct under any concurrency (not built for huge data).

mod apps;
mod bus;
mod cache;
mod channel;
mod discovery;
mod groups;
mod inbox;
mod jobs;
mod presence;
mod push_tokens;
mod search;

pub use apps::MemoryApps;
pub use bus::MemoryBus;
pub use cache::{DEFAULT_MAX_DEDUP_KEYS, DEFAULT_MAX_WINDOW_ENTRIES, MemoryCache};
pub use channel::MemoryChannelLog;
pub use discovery::MemoryDiscovery;
pub use groups::MemoryGroups;
pub use inbox::MemoryInbox;
pub use jobs::MemoryJobs;
pub use presence::MemoryPresence;
pub use push_tokens::MemoryPushTokens;
pub use search::MemorySearch;
