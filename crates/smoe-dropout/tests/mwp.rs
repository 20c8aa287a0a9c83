//! The math-word-problem task: the BERT tokenizer on the data, the target
//! vocabulary, inconsistent reference equations, greedy decoding, and the smoke
//! preset end to end.

use candle_core::{D, Device, Tensor};
use smoe_dropout::mode::Mode;
use smoe_dropout::mwp::data::{BOS, EOS, MwpData, bert_tokenizer, is_consistent, wordpieces};
use smoe_dropout::mwp::training::{build, train};
use smoe_dropout::presets::{self, ArmKind};
use smoe_dropout::schedule::KMode;
use sparse_data::data::mwp::MwpProblem;
use sparse_repro::cli::Preset;
use sparse_repro::harness::{self, DataPolicy};
use sparse_repro::progress::ProgressMode;

fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[test]
fn the_bert_tokenizer_round_trips_every_mawps_question() {
    let tokenizer = bert_tokenizer(None).unwrap();
    let data = MwpData::load("mawps", None).unwrap();
    let unk = tokenizer.token_to_id("[UNK]").unwrap();
    for example in data.train.iter().chain(&data.test) {
        let question = &example.problem.question;
        let ids = wordpieces(&tokenizer, question).unwrap();
        assert_eq!(ids[0], tokenizer.token_to_id("[CLS]").unwrap());
        assert!(!ids.contains(&unk), "{question}");
        let text = tokenizer.decode(&ids[1..ids.len() - 1], true).unwrap();
        assert_eq!(squeeze(&text), squeeze(question), "{question}");
        // the compact ids map back to these WordPiece ids (test tokens unseen in
        // training become [UNK] = 1)
        let back: Vec<u32> = example
            .source
            .iter()
            .map(|&c| data.source_vocab[c as usize])
            .collect();
        let known: Vec<bool> = example.source.iter().map(|&c| c != 1).collect();
        for ((b, id), known) in back.iter().zip(&ids).zip(known) {
            if known {
                assert_eq!(b, id);
            }
        }
    }
}

#[test]
fn targets_spell_the_equations_and_inconsistent_references_leave_training_only() {
    let data = MwpData::load("mawps", None).unwrap();
    assert!(data.dropped_inconsistent > 0 && data.dropped_inconsistent < 30);
    assert_eq!(
        data.train.len() + data.dropped_inconsistent,
        1537,
        "fold 0 holds 1537 training problems"
    );
    assert_eq!(data.test.len(), 384);
    assert_eq!(
        data.test_inconsistent,
        data.test
            .iter()
            .filter(|e| !is_consistent(&e.problem))
            .count()
    );
    for example in &data.train {
        assert!(is_consistent(&example.problem));
        assert_eq!(example.target.last(), Some(&EOS));
        assert_eq!(data.equation(&example.target), example.problem.equation);
    }
}

#[test]
fn unseen_test_words_become_unknown_and_unknown_constants_leave_no_target() {
    let tokenizer = bert_tokenizer(None).unwrap();
    let problem = |question: &str, equation: &[&str], answer: f64| MwpProblem {
        question: question.to_string(),
        numbers: vec![3.0, 4.0],
        equation: equation.iter().map(|s| s.to_string()).collect(),
        answer,
    };
    let train = vec![
        problem(
            "tom has number0 apples and number1 pears .",
            &["+", "number0", "number1"],
            7.0,
        ),
        problem(
            "tom has number0 apples , eats number1 .",
            &["-", "number0", "number1"],
            -1.0,
        ),
        problem(
            "a bad one with number0 .",
            &["+", "number0", "number1"],
            99.0,
        ),
    ];
    let test = vec![problem(
        "zebra has number0 apples and number1 pears .",
        &["*", "number0", "100.0"],
        300.0,
    )];
    let data = MwpData::from_problems("toy", &tokenizer, train, test).unwrap();
    assert_eq!(data.dropped_inconsistent, 1);
    assert_eq!(data.test_inconsistent, 0);
    assert!(data.test[0].source.contains(&1), "zebra is [UNK]");
    assert!(
        data.test[0].target.is_empty(),
        "100.0 is not a training constant"
    );
    assert_eq!(
        &data.target_vocab[..9],
        [
            "<pad>", "<s>", "</s>", "+", "-", "*", "/", "number0", "number1"
        ]
    );
}

#[test]
fn greedy_decoding_is_the_argmax_of_the_decoder_fed_its_own_output() {
    let data = MwpData::load("mawps", None).unwrap();
    let config =
        presets::mwp_config(Preset::Smoke, ArmKind::SmoeDropout, KMode::LinearIncrease).unwrap();
    let (_, model) = build(&config, &data, 3).unwrap();
    for example in data.test.iter().take(4) {
        let n = example.source.len();
        let source = Tensor::from_vec(example.source.clone(), (1, n), &Device::Cpu).unwrap();
        let keep = Tensor::ones((1, n), candle_core::DType::F32, &Device::Cpu).unwrap();
        let out = model.greedy(&source, &keep, 2).unwrap().remove(0);
        let mut input = vec![BOS];
        input.extend_from_slice(&out[..out.len() - 1]);
        let length = input.len();
        let input = Tensor::from_vec(input, (1, length), &Device::Cpu).unwrap();
        let memory = model.encode(&source, &keep, 2, &mut Mode::Eval).unwrap();
        let logits = model
            .decode(&memory, &keep, &input, 2, &mut Mode::Eval)
            .unwrap();
        let best: Vec<u32> = logits.argmax(D::Minus1).unwrap().to_vec1().unwrap();
        assert_eq!(best, out);
    }
}

#[test]
fn frozen_routers_and_the_smoke_preset_end_to_end() {
    let data = MwpData::load("mawps", None).unwrap();
    let mut config =
        presets::mwp_config(Preset::Smoke, ArmKind::SmoeDropout, KMode::LinearIncrease).unwrap();
    config.steps = 6;
    config.schedule.total_steps = 6;
    let run = train(&config, &data, 0, ProgressMode::Quiet, "t").unwrap();
    assert_eq!(run.outcome.routers_unchanged, Some(true));
    assert_eq!(run.outcome.test_accuracy.len(), 3);
    assert_eq!(
        (run.outcome.train_problems, run.outcome.test_problems),
        (64, 32)
    );

    let root = tempfile::tempdir().unwrap();
    let args = smoe_dropout::paper::SmoeArgs {
        task: presets::Task::Mwp,
        ..Default::default()
    };
    let check = harness::check_resume::<smoe_dropout::SmoeDropout>(
        Preset::Smoke,
        &args,
        None,
        None,
        root.path(),
        2,
    )
    .unwrap();
    assert_eq!(check.taken_from_records, 2);
    let run = root.path().join("uninterrupted");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    for claim in [
        "self-slimmable-mawps",
        "routers-frozen-mawps",
        "smoe-dropout-vs-dense-mawps",
    ] {
        assert!(report.contains(claim), "{claim}");
    }
    assert!(run.join("mawps-accuracy-by-k.svg").is_file());
    let evaluated = harness::evaluate::<smoe_dropout::SmoeDropout>(
        &run.join("checkpoints/mawps-smoe-dropout-seed1.safetensors"),
        None,
        DataPolicy::NoFetch,
    )
    .unwrap();
    assert_eq!(evaluated.measured.to_bits(), evaluated.recorded.to_bits());
    assert!(evaluated.metrics.contains_key("test_accuracy_k2"));
}
