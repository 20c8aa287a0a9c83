//! The fetched UCR/UEA sets (`sparse-data fetch ...`), checked when present; when
//! absent the tests say so and pass.

use dsn_tsc::data::{DatasetSource, TsData};
use sparse_data::location::DataLocation;

fn load(name: &str) -> Option<TsData> {
    let location = DataLocation::from_process(None);
    match DatasetSource::parse(name).load(&location) {
        Ok(data) => Some(data),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

#[test]
fn gunpoint_when_present() {
    let Some(d) = load("gunpoint") else { return };
    assert_eq!(
        (d.name.as_str(), d.dims, d.length, d.num_classes()),
        ("GunPoint", 1, 150, 2)
    );
    assert_eq!((d.train.len(), d.test.len()), (50, 150));
    assert_eq!(d.train.values().len(), 50 * 150);
}

#[test]
fn japanese_vowels_pad_to_the_longest_case_of_both_splits() {
    let Some(d) = load("japanesevowels") else {
        return;
    };
    assert_eq!((d.dims, d.num_classes()), (12, 9));
    assert_eq!((d.train.len(), d.test.len()), (270, 370));
    // train cases are at most 26 long, test cases up to 29: both padded to 29
    assert_eq!(d.length, 29);
    assert_eq!(d.train.values().len(), 270 * 12 * 29);
    assert!(
        d.train
            .values()
            .iter()
            .chain(d.test.values())
            .all(|v| v.is_finite())
    );
    // the shortest training case (length 7) ends in zeros in every dimension
    let case = (0..270)
        .find(|&i| {
            let row = &d.train.values()[i * 12 * 29..(i + 1) * 12 * 29];
            row.chunks(29).all(|dim| dim[7..].iter().all(|&v| v == 0.0))
        })
        .expect("a case of length 7");
    let row = &d.train.values()[case * 12 * 29..(case + 1) * 12 * 29];
    assert!(row.chunks(29).any(|dim| dim[..7].iter().any(|&v| v != 0.0)));
}

#[test]
fn basic_motions_when_present() {
    let Some(d) = load("BasicMotions") else {
        return;
    };
    assert_eq!(
        (d.dims, d.length, d.classes.join(" ").as_str()),
        (6, 100, "Standing Running Walking Badminton")
    );
}
