use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

use super::*;

/// A model with a prunable "conv" weight (16 entries), an unpruned classifier and a
/// BatchNorm statistic; the conv weight is registered with an all-ones mask.
fn model() -> (VarMap, SparseParams) {
    let varmap = VarMap::new();
    let conv: Vec<f32> = (0..16).map(|i| ((i * 7 % 16) as f32 - 7.5) * 0.1).collect();
    let entries = [
        (
            "conv.weight",
            Tensor::from_vec(conv, (2, 8), &Device::Cpu).unwrap(),
        ),
        (
            "fc.weight",
            Tensor::new(&[0.5f32, -0.25, 1.0], &Device::Cpu).unwrap(),
        ),
        (
            "bn.running_mean",
            Tensor::new(&[0.0f32, 0.0], &Device::Cpu).unwrap(),
        ),
    ];
    let mut params = SparseParams::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (name, t) in entries {
            let var = Var::from_tensor(&t).unwrap();
            data.insert(name.to_string(), var.clone());
            if name == "conv.weight" {
                params.insert(name, var, Mask::ones(&[2, 8])).unwrap();
            }
        }
    }
    (varmap, params)
}

fn var(varmap: &VarMap, name: &str) -> Var {
    varmap.data().lock().unwrap()[name].clone()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// A deterministic stand-in for an epoch of training: every entry moves by an amount
/// that depends on the epoch and its position, then the masks are applied.
fn fake_epoch(varmap: &VarMap, params: &SparseParams, epoch: usize) {
    for name in ["conv.weight", "fc.weight", "bn.running_mean"] {
        let v = var(varmap, name);
        let t = v.as_tensor();
        let delta: Vec<f32> = (0..t.elem_count())
            .map(|i| 0.01 * (epoch as f32 + 1.0) * if i % 3 == 0 { 1.0 } else { -0.5 })
            .collect();
        let delta = Tensor::from_vec(delta, t.dims(), t.device()).unwrap();
        v.set(&(t + delta).unwrap()).unwrap();
    }
    params.apply_masks().unwrap();
}

#[test]
fn rounds_prune_the_final_weights_rewind_everything_and_resume_at_the_rewind_epoch() {
    let (varmap, mut params) = model();
    let schedule = ImpSchedule::builder(4, 0.2)
        .rewind_epoch(1)
        .epochs(3)
        .build()
        .unwrap();
    let mut plans = Vec::new();
    let mut at_round_start: Vec<ModelState> = Vec::new();
    let mut rewind_point: Option<ModelState> = None;
    let mut final_weights: Vec<Vec<f32>> = Vec::new();
    let tickets = iterative_magnitude_pruning(
        &varmap,
        &mut params,
        &schedule,
        |plan, params, after_epoch| {
            plans.push(*plan);
            at_round_start.push(ModelState::capture(&varmap)?);
            let mut best = None;
            for epoch in plan.start_epoch..plan.epochs {
                fake_epoch(&varmap, params, epoch);
                if plan.round == 0 && epoch + 1 == 1 {
                    rewind_point = Some(ModelState::capture(&varmap)?);
                }
                after_epoch(epoch + 1)?;
                // the "best validation epoch" is the first one trained
                if best.is_none() {
                    best = Some(ModelState::capture(&varmap)?);
                }
            }
            final_weights.push(host(var(&varmap, "conv.weight").as_tensor()));
            Ok((best.unwrap(), plan.round as f64))
        },
    )
    .unwrap();
    assert_eq!(tickets.len(), 4);
    assert_eq!(
        plans.iter().map(|p| p.start_epoch).collect::<Vec<_>>(),
        [0, 1, 1, 1]
    );
    // PyTorch's count: round(0.2 · n), ties to even: 16 → 13 → 10 → 8
    let nnz: Vec<usize> = tickets
        .iter()
        .map(|t| t.masks["conv.weight"].nnz())
        .collect();
    assert_eq!(nnz, [16, 13, 10, 8]);
    assert!((tickets[3].density - 0.5).abs() < 1e-12);
    let rewind = rewind_point.unwrap();
    for r in 1..4 {
        // every unpruned entry is back at the rewind point, bit for bit
        for name in ["fc.weight", "bn.running_mean"] {
            assert_eq!(
                host(at_round_start[r].get(name).unwrap()),
                host(rewind.get(name).unwrap()),
                "round {r}: {name}"
            );
        }
        let mask = &tickets[r].masks["conv.weight"];
        let conv = host(at_round_start[r].get("conv.weight").unwrap());
        let want = host(rewind.get("conv.weight").unwrap());
        for i in 0..16 {
            let expected = if mask.is_active(i) { want[i] } else { 0.0 };
            assert_eq!(conv[i], expected, "round {r}: conv entry {i}");
        }
        // the pruned entries are the smallest magnitudes of the previous round's end
        let before = &tickets[r - 1].masks["conv.weight"];
        let last = &final_weights[r - 1];
        let removed: Vec<usize> = before
            .active_indices()
            .into_iter()
            .filter(|&i| !mask.is_active(i))
            .collect();
        let kept_min = mask
            .active_indices()
            .iter()
            .map(|&i| last[i].abs())
            .fold(f32::INFINITY, f32::min);
        assert!(
            removed.iter().all(|&i| last[i].abs() <= kept_min),
            "round {r}"
        );
    }
    // the classifier and the statistics are never pruned
    assert!(
        host(var(&varmap, "fc.weight").as_tensor())
            .iter()
            .all(|v| *v != 0.0)
    );
    // each ticket is the state its round returned
    assert_eq!(tickets[2].score, 2.0);
    assert_eq!(tickets[0].round, 0);
}

#[test]
fn rewinding_to_epoch_zero_restores_the_initialisation() {
    let (varmap, mut params) = model();
    let init = ModelState::capture(&varmap).unwrap();
    let schedule = ImpSchedule::builder(2, 0.5).epochs(2).build().unwrap();
    let mut second_start = None;
    iterative_magnitude_pruning(
        &varmap,
        &mut params,
        &schedule,
        |plan, params, after_epoch| {
            if plan.round == 1 {
                second_start = Some(ModelState::capture(&varmap)?);
            }
            for epoch in plan.start_epoch..plan.epochs {
                fake_epoch(&varmap, params, epoch);
                after_epoch(epoch + 1)?;
            }
            Ok((ModelState::capture(&varmap)?, 0.0))
        },
    )
    .unwrap();
    let start = second_start.unwrap();
    assert_eq!(
        host(start.get("fc.weight").unwrap()),
        host(init.get("fc.weight").unwrap())
    );
}

#[test]
fn bad_schedules_and_a_missing_rewind_point_are_errors() {
    for (builder, name) in [
        (ImpSchedule::builder(0, 0.2), "imp.rounds"),
        (ImpSchedule::builder(3, 0.0), "imp.rate"),
        (ImpSchedule::builder(3, 1.0), "imp.rate"),
        (
            ImpSchedule::builder(3, 0.2).rewind_epoch(2).epochs(2),
            "imp.rewind_epoch",
        ),
        (ImpSchedule::builder(3, 0.2).epochs(0), "imp.rewind_epoch"),
    ] {
        let err = builder.build().unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
    let schedule = ImpSchedule::builder(2, 0.2)
        .rewind_epoch(1)
        .epochs(2)
        .build()
        .unwrap();
    let (varmap, mut params) = model();
    // a training loop that never reports its epochs leaves no rewind point
    let err = iterative_magnitude_pruning(&varmap, &mut params, &schedule, |_, _, _| {
        Ok((ModelState::capture(&varmap)?, 0.0))
    })
    .unwrap_err();
    assert!(err.to_string().contains("rewind point"), "{err}");
    let mut empty = SparseParams::new();
    let err = iterative_magnitude_pruning(&varmap, &mut empty, &schedule, |_, _, _| {
        Ok((ModelState::capture(&varmap)?, 0.0))
    })
    .unwrap_err();
    assert!(err.to_string().contains("params"), "{err}");
}
