//! Who may hold a connection: a ticket per accepted socket, taken before
//! anything is read from it, within three caps — connections in all (kept
//! below the process's descriptor limit), connections per source address,
//! and connections still in their handshake.
//!
//! The ticket is dropped with the connection, which gives every slot back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused; the label of its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The gate holds as many connections as it may.
    Full,
    /// This source address holds as many as one address may.
    PerAddress,
    /// Too many connections are still in their handshake.
    Unauthenticated,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::PerAddress => "per_address",
            Refusal::Unauthenticated => "unauthenticated",
        }
    }

    /// What the client reads in its `UNAVAILABLE` error frame.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Full => "this gate is at its connection limit; ask the selector for another",
            Refusal::PerAddress => {
                "too many connections from your address; close some or try again later"
            }
            Refusal::Unauthenticated => {
                "too many connections are in their handshake; try again shortly"
            }
        }
    }
}

/// The caps, as configured.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    /// Connections in all.
    pub max_connections: usize,
    /// Connections per source address (0: no cap).
    pub max_per_address: usize,
    /// Connections accepted but not yet through their handshake.
    pub max_unauthenticated: usize,
}

/// The gate's connection caps, shared by every listener.
pub struct Admission {
    limits: AdmissionLimits,
    total: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    lingering: Arc<Semaphore>,
}

/// Refused sockets read out before their close, at most, at once.
const LINGERING_REFUSALS: usize = 64;

impl Admission {
    /// Caps as given (see [`connection_limit`] for the total).
    pub fn new(limits: AdmissionLimits) -> Admission {
        Admission {
            limits,
            total: Arc::new(Semaphore::new(limits.max_connections)),
            unauthenticated: Arc::new(Semaphore::new(limits.max_unauthenticated)),
            per_address: Arc::default(),
            lingering: Arc::new(Semaphore::new(LINGERING_REFUSALS)),
        }
    }

    /// The caps in force.
    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    /// A ticket for a connection from `ip`, or why not. Checked in the order
    /// a client can act on: its own address first, then the gate.
    pub fn admit(&self, ip: IpAddr) -> Result<Ticket, Refusal> {
        let address = self.address_slot(ip)?;
        let unauthenticated = self
            .unauthenticated
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Unauthenticated)?;
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        Ok(Ticket {
            _total: total,
            _address: address,
            unauthenticated: Some(unauthenticated),
        })
    }

    fn address_slot(&self, ip: IpAddr) -> Result<Option<AddressSlot>, Refusal> {
        if self.limits.max_per_address == 0 {
            return Ok(None);
        }
        let mut counts = self.per_address.lock().expect("poisoned");
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.limits.max_per_address {
            return Err(Refusal::PerAddress);
        }
        *count += 1;
        Ok(Some(AddressSlot {
            ip,
            counts: self.per_address.clone(),
        }))
    }

    /// A slot to close a refused socket gracefully, if one is free (see
    /// [`super::transport`]).
    pub fn lingering_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.lingering.clone().try_acquire_owned().ok()
    }

    /// Connections still in their handshake.
    pub fn unauthenticated(&self) -> usize {
        self.limits.max_unauthenticated - self.unauthenticated.available_permits()
    }
}

/// One connection's slots; dropping it gives them back.
pub struct Ticket {
    _total: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
    unauthenticated: Option<OwnedSemaphorePermit>,
}

impl Ticket {
    /// The handshake is done: the connection no longer counts as
    /// unauthenticated.
    pub fn authenticated(&mut self) {
        self.unauthenticated = None;
    }
}

struct AddressSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("poisoned");
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Keep the map as small as the set of connected addresses.
                counts.remove(&self.ip);
            }
        }
    }
}

/// The connection cap in force: the configured one, lowered so that
/// `reserve` descriptors stay free for everything else the process opens
/// (the HTTP listener's clients, the cluster port, the stores' pools, the
/// search index's files) when the descriptor limit is `nofile`. A gate full
/// of clients then refuses the next one with an error frame instead of
/// failing to accept at all, and the admin API keeps working.
pub fn connection_limit(configured: usize, nofile: u64, reserve: usize) -> usize {
    let room = usize::try_from(nofile)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserve);
    configured.min(room).max(1)
}

/// Raises the soft descriptor limit to the hard one (as Go and Erlang do at
/// start) and returns it.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the descriptor limit; assuming 1024");
            1024
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_connections: usize, max_per_address: usize, max_unauth: usize) -> Admission {
        Admission::new(AdmissionLimits {
            max_connections,
            max_per_address,
            max_unauthenticated: max_unauth,
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn one_address_is_held_to_its_cap_while_others_still_connect() {
        let gate = admission(10, 2, 10);
        let _a1 = gate.admit(A).unwrap();
        let a2 = gate.admit(A).unwrap();
        assert_eq!(gate.admit(A).err(), Some(Refusal::PerAddress));
        let _b1 = gate.admit(B).unwrap();
        drop(a2);
        assert!(gate.admit(A).is_ok(), "a closed connection frees its slot");
    }

    #[test]
    fn the_gate_refuses_when_full_and_gives_every_slot_back() {
        let gate = admission(2, 0, 10);
        let a = gate.admit(A).unwrap();
        let _b = gate.admit(B).unwrap();
        assert_eq!(gate.admit(B).err(), Some(Refusal::Full));
        drop(a);
        assert!(gate.admit(B).is_ok());
        assert!(
            gate.per_address.lock().unwrap().is_empty(),
            "no cap, no map"
        );
    }

    #[test]
    fn handshakes_in_progress_are_capped_until_they_authenticate() {
        let gate = admission(10, 0, 2);
        let mut first = gate.admit(A).unwrap();
        let _second = gate.admit(A).unwrap();
        assert_eq!(gate.admit(B).err(), Some(Refusal::Unauthenticated));
        assert_eq!(gate.unauthenticated(), 2);
        first.authenticated();
        assert_eq!(gate.unauthenticated(), 1);
        assert!(gate.admit(B).is_ok());
    }

    #[test]
    fn a_refused_connection_takes_no_slot() {
        let gate = admission(1, 1, 1);
        let _held = gate.admit(A).unwrap();
        assert_eq!(gate.admit(A).err(), Some(Refusal::PerAddress));
        assert_eq!(gate.admit(B).err(), Some(Refusal::Unauthenticated));
        assert_eq!(gate.per_address.lock().unwrap().get(&B), None);
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_rest_of_the_process() {
        assert_eq!(connection_limit(200_000, 1024, 256), 768);
        assert_eq!(connection_limit(500, 1_048_576, 256), 500);
        assert_eq!(connection_limit(500, 100, 256), 1, "never zero");
    }
}
