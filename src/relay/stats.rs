//! A relay's counters: what it carries, what it refused and why, and what
//! it dropped.

use super::message::{EndReason, Refusal};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Pairs now, and sessions waiting for their partner now.
    pub pairs: u64,
    pub waiting: u64,
    /// Datagrams and bytes read.
    pub received: u64,
    pub received_bytes: u64,
    /// Datagrams and bytes sent (challenges, answers, forwarded data).
    pub sent: u64,
    pub sent_bytes: u64,
    /// Joins without a valid cookie, answered with a challenge.
    pub challenges: u64,
    /// Joins with a valid cookie.
    pub joins: u64,
    /// Pairs formed since the start.
    pub pairs_formed: u64,
    /// Datagrams and payload bytes forwarded from one side to the other.
    pub forwarded: u64,
    pub forwarded_bytes: u64,
    /// Joins refused, by [`Refusal`].
    pub refused_full: u64,
    pub refused_waiting_full: u64,
    pub refused_per_ip: u64,
    pub refused_taken: u64,
    pub refused_subnet: u64,
    /// Sessions ended, by [`EndReason`].
    pub ended_closed: u64,
    pub ended_lifetime: u64,
    pub ended_idle: u64,
    pub ended_no_partner: u64,
    /// Not a relay datagram of our version, or the wrong size for its type.
    pub dropped_malformed: u64,
    /// Larger than `MAX_DATAGRAM`.
    pub dropped_oversized: u64,
    /// A relay → peer message sent to the relay.
    pub dropped_unexpected: u64,
    /// Data or close under an id the relay does not know.
    pub dropped_unknown_id: u64,
    /// Data or close under a known id from another address than the one
    /// that registered it (a spoofed or stale source).
    pub dropped_spoofed: u64,
    /// Data from a side whose partner has not joined yet.
    pub dropped_unpaired: u64,
    /// Data over the pair's rate, and its payload bytes.
    pub dropped_throttled: u64,
    pub throttled_bytes: u64,
    /// Datagrams not queued because the caller did not drain the queue.
    pub transmit_overflow: u64,
}

impl RelayStats {
    pub(crate) fn refused(&mut self, r: Refusal) {
        match r {
            Refusal::Full => self.refused_full += 1,
            Refusal::WaitingFull => self.refused_waiting_full += 1,
            Refusal::PerIp => self.refused_per_ip += 1,
            Refusal::Taken | Refusal::Other(_) => self.refused_taken += 1,
            Refusal::Subnet => self.refused_subnet += 1,
        }
    }

    pub(crate) fn ended(&mut self, r: EndReason) {
        match r {
            EndReason::Closed | EndReason::Other(_) => self.ended_closed += 1,
            EndReason::Lifetime => self.ended_lifetime += 1,
            EndReason::Idle => self.ended_idle += 1,
            EndReason::NoPartner => self.ended_no_partner += 1,
        }
    }

    /// Every counter by name, in declaration order (for a JSON line).
    pub fn fields(&self) -> [(&'static str, u64); 29] {
        [
            ("pairs", self.pairs),
            ("waiting", self.waiting),
            ("received", self.received),
            ("receivedBytes", self.received_bytes),
            ("sent", self.sent),
            ("sentBytes", self.sent_bytes),
            ("challenges", self.challenges),
            ("joins", self.joins),
            ("pairsFormed", self.pairs_formed),
            ("forwarded", self.forwarded),
            ("forwardedBytes", self.forwarded_bytes),
            ("refusedFull", self.refused_full),
            ("refusedWaitingFull", self.refused_waiting_full),
            ("refusedPerIp", self.refused_per_ip),
            ("refusedTaken", self.refused_taken),
            ("refusedSubnet", self.refused_subnet),
            ("endedClosed", self.ended_closed),
            ("endedLifetime", self.ended_lifetime),
            ("endedIdle", self.ended_idle),
            ("endedNoPartner", self.ended_no_partner),
            ("droppedMalformed", self.dropped_malformed),
            ("droppedOversized", self.dropped_oversized),
            ("droppedUnexpected", self.dropped_unexpected),
            ("droppedUnknownId", self.dropped_unknown_id),
            ("droppedSpoofed", self.dropped_spoofed),
            ("droppedUnpaired", self.dropped_unpaired),
            ("droppedThrottled", self.dropped_throttled),
            ("throttledBytes", self.throttled_bytes),
            ("transmitOverflow", self.transmit_overflow),
        ]
    }

    /// One JSON object with every counter (the `hyperswarm-dht` binary
    /// prints it; tests read it).
    pub fn to_json(&self) -> String {
        let body: Vec<String> = self.fields().iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    }
}
