//! How halo slabs and reductions travel between processes.
//!
//! A run is one process ([`SingleProcess`]) or several MPI ranks (`MpiTransport`,
//! behind the `mpi` cargo feature); the [`Domain`](crate::domain::Domain) gives each
//! rank its blocks and asks the transport only for what crosses a process boundary.

use crate::error::CfdResult;

/// A halo slab on its way to another rank.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Destination rank.
    pub rank: usize,
    /// Identifies the slab (receiving block and face).
    pub tag: i32,
    /// The values.
    pub data: Vec<f64>,
}

/// A halo slab this rank waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// Source rank.
    pub rank: usize,
    /// Identifies the slab.
    pub tag: i32,
    /// Number of values.
    pub len: usize,
}

/// Point-to-point exchange and reductions among the ranks of a run.
pub trait Transport {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn ranks(&self) -> usize;
    /// Sends every outgoing slab and returns the incoming ones, in the order asked.
    fn exchange(&self, outgoing: Vec<Outgoing>, incoming: &[Incoming]) -> CfdResult<Vec<Vec<f64>>>;
    /// As [`Transport::exchange`], running `during` while the slabs travel (the
    /// interior/halo overlap); by default `during` runs first, then the exchange.
    fn exchange_during(
        &self,
        outgoing: Vec<Outgoing>,
        incoming: &[Incoming],
        during: &mut dyn FnMut() -> CfdResult<()>,
    ) -> CfdResult<Vec<Vec<f64>>> {
        during()?;
        self.exchange(outgoing, incoming)
    }
    /// Replaces `values` by their element-wise sum over all ranks.
    fn sum(&self, values: &mut [f64]) -> CfdResult<()>;
}

/// A run in one process: every block is local, nothing crosses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Transport for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        1
    }

    fn exchange(&self, outgoing: Vec<Outgoing>, incoming: &[Incoming]) -> CfdResult<Vec<Vec<f64>>> {
        if outgoing.is_empty() && incoming.is_empty() {
            Ok(Vec::new())
        } else {
            Err(crate::error::CfdError::Config(
                "a single-process run has no other rank to exchange with".into(),
            ))
        }
    }

    fn sum(&self, _values: &mut [f64]) -> CfdResult<()> {
        Ok(())
    }
}
