//! The MPI transport (cargo feature `mpi`): one rank per process, halo slabs as
//! non-blocking point-to-point messages, reductions as `MPI_Allreduce`.

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Destination, Source};

use crate::error::{CfdError, CfdResult};
use crate::transport::{Incoming, Outgoing, Transport};

/// `MPI_COMM_WORLD` of an initialised MPI environment (finalised when dropped).
pub struct MpiTransport {
    world: SimpleCommunicator,
    // Dropping the universe finalises MPI, so it lives as long as the transport.
    _universe: Universe,
}

impl MpiTransport {
    /// Initialises MPI; fails if it is already initialised.
    pub fn initialize() -> CfdResult<Self> {
        let universe = mpi::initialize()
            .ok_or_else(|| CfdError::Config("MPI is already initialised".into()))?;
        Ok(Self {
            world: universe.world(),
            _universe: universe,
        })
    }
}

impl Transport for MpiTransport {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn ranks(&self) -> usize {
        self.world.size() as usize
    }

    fn exchange(&self, outgoing: Vec<Outgoing>, incoming: &[Incoming]) -> CfdResult<Vec<Vec<f64>>> {
        self.exchange_during(outgoing, incoming, &mut || Ok(()))
    }

    fn exchange_during(
        &self,
        outgoing: Vec<Outgoing>,
        incoming: &[Incoming],
        during: &mut dyn FnMut() -> CfdResult<()>,
    ) -> CfdResult<Vec<Vec<f64>>> {
        let mut computed = Ok(());
        let mut received: Vec<Vec<f64>> = incoming
            .iter()
            .map(|expected| vec![0.0; expected.len])
            .collect();
        mpi::request::scope(|scope| {
            let receives: Vec<_> = received
                .iter_mut()
                .zip(incoming)
                .map(|(buffer, expected)| {
                    self.world
                        .process_at_rank(expected.rank as i32)
                        .immediate_receive_into_with_tag(scope, &mut buffer[..], expected.tag)
                })
                .collect();
            let sends: Vec<_> = outgoing
                .iter()
                .map(|message| {
                    self.world
                        .process_at_rank(message.rank as i32)
                        .immediate_send_with_tag(scope, &message.data[..], message.tag)
                })
                .collect();
            // The requests are posted: compute while the messages travel.
            computed = during();
            for request in sends {
                request.wait();
            }
            for request in receives {
                request.wait();
            }
        });
        computed?;
        Ok(received)
    }

    fn sum(&self, values: &mut [f64]) -> CfdResult<()> {
        let local = values.to_vec();
        self.world
            .all_reduce_into(&local[..], values, SystemOperation::sum());
        Ok(())
    }
}
