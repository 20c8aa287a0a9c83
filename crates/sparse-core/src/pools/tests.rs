use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::*;
use crate::RunningAverage;

/// A model of a "conv" weight (prunable), a "fc" weight and a BatchNorm statistic.
fn state(conv: &[f32], fc: &[f32], stat: f32) -> ModelState {
    let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).unwrap();
    ModelState::from_tensors(&BTreeMap::from([
        ("conv.weight".to_string(), t(conv)),
        ("fc.weight".to_string(), t(fc)),
        ("bn.running_mean".to_string(), t(&[stat])),
    ]))
    .unwrap()
}

fn values(s: &ModelState, name: &str) -> Vec<f32> {
    s.get(name).unwrap().to_vec1::<f32>().unwrap()
}

/// Five tickets of decreasing density, as an IMP run leaves them.
fn tickets() -> Vec<ModelState> {
    vec![
        state(
            &[0.9, -0.8, 0.7, -0.6, 0.5, -0.4, 0.3, -0.2],
            &[1.0, 2.0],
            0.5,
        ),
        state(
            &[0.8, -0.7, 0.6, -0.5, 0.4, -0.3, 0.0, 0.0],
            &[1.1, 2.1],
            0.4,
        ),
        state(
            &[0.7, -0.6, 0.5, -0.4, 0.3, 0.0, 0.0, 0.0],
            &[1.2, 2.2],
            0.3,
        ),
        state(
            &[0.6, -0.5, 0.4, -0.3, 0.0, 0.0, 0.0, 0.0],
            &[1.3, 2.3],
            0.2,
        ),
        state(&[0.5, -0.4, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0], &[1.4, 2.4], 0.1),
    ]
}

fn config(method: PoolMethod, search_num: usize) -> PoolConfig {
    PoolConfig::builder(method)
        .prunable(["conv.weight"])
        .search_num(search_num)
        .build()
        .unwrap()
}

/// Higher the closer the fc weight is to `goal` (a score with a known optimum).
fn closeness(goal: f32) -> impl FnMut(&mut ModelState) -> Result<f64> {
    move |s: &mut ModelState| {
        let fc = values(s, "fc.weight");
        Ok(-f64::from((fc[0] - goal).abs()))
    }
}

#[test]
fn candidates_come_in_order_of_adjacency() {
    assert_eq!(candidate_order(3, 6, 5), vec![2, 4, 1, 5]);
    assert_eq!(candidate_order(3, 6, 20), vec![2, 4, 1, 5, 0]);
    assert_eq!(candidate_order(0, 4, 10), vec![1, 2, 3]);
    assert_eq!(candidate_order(3, 4, 10), vec![2, 1, 0]);
    assert_eq!(candidate_order(2, 5, 1), Vec::<usize>::new());
    assert_eq!(candidate_order(0, 1, 5), Vec::<usize>::new());
}

#[test]
fn the_paper_pools_have_the_official_coefficients() {
    let PoolMethod::Greedy { coefficients, .. } = PoolMethod::interpolation() else {
        panic!("a greedy pool")
    };
    assert_eq!(coefficients.len(), 11);
    assert_eq!(coefficients[0], 0.05);
    assert_eq!(coefficients[10], 0.95);
    assert!((coefficients[5] - 0.5).abs() < 1e-12);
    assert_eq!(
        PoolMethod::average(),
        PoolMethod::Greedy {
            coefficients: vec![0.5],
            acceptance: Acceptance::AtLeast
        }
    );
}

#[test]
fn re_pruned_results_keep_the_targets_count_and_never_prune_the_rest() {
    let tickets = tickets();
    let target = 3; // 4 of 8 conv weights remain
    let outcome = lottery_pool(
        &tickets,
        target,
        Some(0.5),
        &config(PoolMethod::interpolation(), 5),
        closeness(1.25),
    )
    .unwrap();
    for step in &outcome.steps {
        assert_eq!(step.scores.len(), 11);
    }
    let conv = values(&outcome.state, "conv.weight");
    assert_eq!(conv.iter().filter(|v| **v != 0.0).count(), 4);
    // the fc weight was interpolated (it moved towards the goal) and never zeroed
    let fc = values(&outcome.state, "fc.weight");
    assert!(fc.iter().all(|v| *v != 0.0));
    assert!(outcome.score > outcome.start_score);
    assert!((fc[0] - 1.25).abs() < (1.3 - 1.25) + 1e-6);
}

#[test]
fn a_zero_coefficient_returns_the_prepared_target() {
    let tickets = tickets();
    // preparation changes the state (as BatchNorm recalibration does)
    let prepare = |s: &mut ModelState| -> Result<f64> {
        prepare_copy(s);
        Ok(1.0)
    };
    let zero = PoolMethod::Greedy {
        coefficients: vec![0.0],
        acceptance: Acceptance::AtLeast,
    };
    let outcome = lottery_pool(&tickets, 2, Some(5.0 / 8.0), &config(zero, 5), prepare).unwrap();
    let mut want = tickets[2].clone();
    prepare_copy(&mut want);
    for name in ["conv.weight", "fc.weight", "bn.running_mean"] {
        assert_eq!(values(&outcome.state, name), values(&want, name), "{name}");
    }
    assert!(outcome.steps.iter().all(|s| s.accepted == Some(0.0)));
}

/// Sets the BatchNorm statistic to 0.75, as a recalibration would change it.
fn prepare_copy(s: &mut ModelState) {
    let mut t = s.tensors().clone();
    t.insert(
        "bn.running_mean".to_string(),
        Tensor::new(&[0.75f32], &Device::Cpu).unwrap(),
    );
    *s = ModelState::from_tensors(&t).unwrap();
}

#[test]
fn ties_are_accepted_on_at_least_and_refused_on_improves() {
    let tickets = tickets();
    let flat = |_: &mut ModelState| -> Result<f64> { Ok(0.5) };
    let grid = vec![0.25, 0.5];
    let at_least = PoolMethod::Greedy {
        coefficients: grid.clone(),
        acceptance: Acceptance::AtLeast,
    };
    let improves = PoolMethod::Greedy {
        coefficients: grid,
        acceptance: Acceptance::Improves,
    };
    let a = lottery_pool(&tickets, 2, None, &config(at_least, 3), flat).unwrap();
    // equal scores: the first coefficient of the pool is the best one
    assert_eq!(
        a.steps.iter().map(|s| s.accepted).collect::<Vec<_>>(),
        [Some(0.25), Some(0.25)]
    );
    let b = lottery_pool(&tickets, 2, None, &config(improves, 3), flat).unwrap();
    assert!(b.steps.iter().all(|s| s.accepted.is_none()));
    assert_eq!(
        values(&b.state, "fc.weight"),
        values(&tickets[2], "fc.weight")
    );
}

#[test]
fn a_worse_candidate_is_refused_and_the_best_score_never_drops() {
    let tickets = tickets();
    // the target's own fc (1.2) is the optimum: every mix is worse
    let outcome = lottery_pool(
        &tickets,
        2,
        None,
        &config(PoolMethod::interpolation(), 5),
        closeness(1.2),
    )
    .unwrap();
    assert!(outcome.steps.iter().all(|s| s.accepted.is_none()));
    assert_eq!(outcome.score, outcome.start_score);
    let mut last = outcome.start_score;
    for step in &outcome.steps {
        assert!(step.best_score >= last);
        last = step.best_score;
    }
}

#[test]
fn swa_is_the_running_mean_and_ema_the_moving_average() {
    let tickets = tickets();
    let always = |_: &mut ModelState| -> Result<f64> { Ok(0.0) };
    let swa = lottery_pool(&tickets, 2, None, &config(PoolMethod::Swa, 5), always).unwrap();
    let mut mean = RunningAverage::new();
    for i in [2, 1, 3, 0, 4] {
        mean.add(&tickets[i]).unwrap();
    }
    let mean = mean.mean().unwrap();
    for name in ["conv.weight", "fc.weight", "bn.running_mean"] {
        for (a, b) in values(&swa.state, name).iter().zip(values(&mean, name)) {
            assert!((a - b).abs() < 1e-6, "{name}: {a} vs {b}");
        }
    }
    let ema = lottery_pool(
        &tickets,
        2,
        None,
        &config(PoolMethod::Ema { decay: 0.9 }, 3),
        always,
    )
    .unwrap();
    let mut want = tickets[2].clone();
    for i in [1, 3] {
        want.ema_update(&tickets[i], 0.9).unwrap();
    }
    for (a, b) in values(&ema.state, "fc.weight")
        .iter()
        .zip(values(&want, "fc.weight"))
    {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn the_linear_path_scores_every_point_between_two_tickets() {
    let tickets = tickets();
    let path = linear_path(&tickets[1], &tickets[2], &[0.0, 0.5, 1.0], closeness(1.1)).unwrap();
    assert_eq!(path.len(), 3);
    assert!((path[0].1 - 0.0).abs() < 1e-6);
    assert!((path[1].1 + 0.05).abs() < 1e-6);
    assert!((path[2].1 + 0.1).abs() < 1e-6);
}

#[test]
fn bad_input_is_an_error_naming_the_parameter() {
    let tickets = tickets();
    let any = |_: &mut ModelState| -> Result<f64> { Ok(0.0) };
    let err = lottery_pool(&tickets, 5, None, &config(PoolMethod::Swa, 3), any).unwrap_err();
    assert!(err.to_string().contains("target"), "{err}");
    let nan = |_: &mut ModelState| -> Result<f64> { Ok(f64::NAN) };
    let err = lottery_pool(&tickets, 1, None, &config(PoolMethod::Swa, 3), nan).unwrap_err();
    assert!(err.to_string().contains("score"), "{err}");
    for (method, name) in [
        (
            PoolMethod::Greedy {
                coefficients: vec![],
                acceptance: Acceptance::AtLeast,
            },
            "coefficients",
        ),
        (
            PoolMethod::Greedy {
                coefficients: vec![0.5, 1.5],
                acceptance: Acceptance::AtLeast,
            },
            "coefficients",
        ),
        (PoolMethod::Ema { decay: 1.5 }, "decay"),
    ] {
        let err = PoolConfig::builder(method).build().unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
    let err = PoolConfig::builder(PoolMethod::Swa)
        .search_num(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("search_num"), "{err}");
    // a state with other tensors cannot be merged
    let mut odd = tickets.clone();
    odd[1] = ModelState::from_tensors(&BTreeMap::from([(
        "other".to_string(),
        Tensor::new(&[1f32], &Device::Cpu).unwrap(),
    )]))
    .unwrap();
    assert!(lottery_pool(&odd, 2, None, &config(PoolMethod::Swa, 3), any).is_err());
    // an unknown prunable name is an error too
    let wrong = PoolConfig::builder(PoolMethod::average())
        .prunable(["nope"])
        .build()
        .unwrap();
    assert!(lottery_pool(&tickets, 2, Some(0.5), &wrong, any).is_err());
}
