//! IMP tickets on disk: one checkpoint per round in a ticket directory, in the
//! harness's format (this crate's name, the arm and seed in the metadata, a sha256
//! of every tensor), so `lottery-pools pool --tickets DIR` can pool a user's own
//! run later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sparse_core::imp::Ticket;
use sparse_core::{Mask, ModelState};
use sparse_repro::harness::{self, ArmSpec, Metrics, ModelParts, read_stored, save_variables};

use crate::config::LotteryConfig;
use crate::error::{Error, Result};
use crate::paper::LotteryPools;
use crate::pooling::TicketSet;
use crate::training::RoundRecord;
use sparse_repro::models::Network;

/// The metric a ticket checkpoint carries its round in.
pub const ROUND: &str = "round";
/// The metric a ticket checkpoint carries its remaining share of convolution weights in.
pub const REMAINING: &str = "remaining";

/// The file of round `round` in a ticket directory.
pub fn ticket_file(dir: &Path, round: usize) -> PathBuf {
    dir.join(format!("round-{round:02}.safetensors"))
}

/// Writes every ticket into `dir` (created if needed) as `round-NN.safetensors`,
/// loading each into `net` to save it.
pub fn save_tickets(
    dir: &Path,
    arm: &ArmSpec<LotteryConfig>,
    seed: u64,
    net: &Network,
    tickets: &[Ticket],
    records: &[RoundRecord],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| sparse_repro::HarnessError::io(dir, e))?;
    let extra = BTreeMap::new();
    for (ticket, record) in tickets.iter().zip(records) {
        ticket.state.restore(&net.varmap)?;
        let metrics = Metrics::from([
            (ROUND.to_string(), ticket.round as f64),
            (REMAINING.to_string(), ticket.density),
            ("validation_accuracy".to_string(), record.validation),
            ("test_accuracy".to_string(), record.test),
        ]);
        save_variables::<LotteryPools>(
            &ticket_file(dir, ticket.round),
            arm,
            seed,
            ModelParts {
                varmap: &net.varmap,
                masks: &ticket.masks,
                extra: &extra,
                step: ticket.round as u64,
            },
            &metrics,
        )?;
    }
    Ok(())
}

/// A ticket directory, read back.
#[derive(Debug, Clone)]
pub struct TicketDir {
    /// The arm the tickets were trained as.
    pub arm: ArmSpec<LotteryConfig>,
    /// Their seed.
    pub seed: u64,
    /// The files, by round.
    pub files: Vec<PathBuf>,
}

/// Finds and checks the tickets of `dir`: every `.safetensors` file must be this
/// crate's ticket checkpoint, intact, of one arm and seed, with rounds `0..n`
/// each exactly once.
pub fn read_ticket_dir(dir: &Path) -> Result<TicketDir> {
    let fail = |reason: String| Error::Tickets {
        dir: dir.to_path_buf(),
        reason,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(fail(
            "holds no ticket (round-NN.safetensors files written by lottery-pools)".into(),
        ));
    }
    let mut by_round: BTreeMap<usize, PathBuf> = BTreeMap::new();
    let mut first: Option<(PathBuf, ArmSpec<LotteryConfig>, u64)> = None;
    for path in paths {
        let stored = read_stored::<LotteryPools>(&path)?;
        let round = stored.meta.metrics.get(ROUND).copied().ok_or_else(|| {
            fail(format!(
                "{} is a lottery-pools checkpoint but not an IMP ticket (no `{ROUND}` in its metadata)",
                path.display()
            ))
        })?;
        if !(round >= 0.0 && round.fract() == 0.0) {
            return Err(fail(format!(
                "{} names round {round}, not a round number",
                path.display()
            )));
        }
        let round = round as usize;
        match &first {
            None => first = Some((path.clone(), stored.arm.clone(), stored.seed)),
            Some((first_path, arm, seed)) => {
                if *arm != stored.arm || *seed != stored.seed {
                    return Err(fail(format!(
                        "{} comes from another run (arm `{}`, seed {}) than {} (arm `{}`, seed {})",
                        path.display(),
                        stored.arm.name,
                        stored.seed,
                        first_path.display(),
                        arm.name,
                        seed
                    )));
                }
            }
        }
        if let Some(other) = by_round.insert(round, path.clone()) {
            return Err(fail(format!(
                "{} and {} are both round {round}",
                other.display(),
                path.display()
            )));
        }
    }
    let found: Vec<usize> = by_round.keys().copied().collect();
    if let Some(missing) = (0..found.len()).find(|r| !by_round.contains_key(r)) {
        return Err(fail(format!(
            "round {missing} is missing ({} expected; found rounds {found:?})",
            ticket_file(dir, missing).display()
        )));
    }
    if found.len() < 2 {
        return Err(fail("a pool needs at least two tickets; found one".into()));
    }
    let (_, arm, seed) = first.ok_or_else(|| fail("holds no ticket".into()))?;
    arm.config.validate()?;
    Ok(TicketDir {
        arm,
        seed,
        files: by_round.into_values().collect(),
    })
}

/// Loads every ticket of `dir` into `net` in turn and returns them as the pools
/// take them; each ticket's remaining share comes from its masks.
pub fn load_tickets(dir: &TicketDir, net: &Network) -> Result<TicketSet> {
    let prunable = net.masked_names();
    let mut states = Vec::with_capacity(dir.files.len());
    let mut remaining = Vec::with_capacity(dir.files.len());
    for path in &dir.files {
        let loaded = harness::load_model(path, &net.varmap)?;
        let masks: Vec<&Mask> = prunable
            .iter()
            .map(|name| {
                loaded.masks.get(name).ok_or_else(|| Error::Tickets {
                    dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                    reason: format!("{} has no mask for {name}", path.display()),
                })
            })
            .collect::<Result<_>>()?;
        let nnz: usize = masks.iter().map(|m| m.nnz()).sum();
        let total: usize = masks.iter().map(|m| m.numel()).sum();
        remaining.push(nnz as f64 / total as f64);
        states.push(ModelState::capture(&net.varmap)?);
    }
    Ok(TicketSet { states, remaining })
}
