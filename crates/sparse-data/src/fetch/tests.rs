//! Offline tests of the fetch logic on fixture artefacts built in temp dirs.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::catalogue::{FileSelection, Presence};

const FIXTURE_FILES: &[&str] = &["a.bin", "b.bin"];

static FIXTURE_SET: Dataset = Dataset {
    name: "fixture",
    description: "test fixture",
    source: "test",
    licence: "test",
    size: "tiny",
    train: None,
    test: None,
    used_by: &[],
    storage: Storage::Fetched(Extraction {
        artefact: "fixture",
        inside: "package/data/",
        files: FileSelection::Names(FIXTURE_FILES),
        dest: "nested/fixture",
        conversion: None,
    }),
    format: crate::catalogue::Format::TextDir,
};

static TEXTS_SET: Dataset = Dataset {
    name: "texts",
    description: "test fixture",
    source: "test",
    licence: "test",
    size: "tiny",
    train: None,
    test: None,
    used_by: &[],
    storage: Storage::Fetched(Extraction {
        artefact: "fixture",
        inside: "pkg/texts/",
        files: FileSelection::Suffix(".txt"),
        dest: "texts",
        conversion: None,
    }),
    format: crate::catalogue::Format::TextDir,
};

fn tar_gz(path: &Path, entries: &[(&str, &[u8])]) {
    let file = File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; write the raw name to mimic a hostile archive.
        let name_bytes = name.as_bytes();
        header.as_old_mut().name[..name_bytes.len()].copy_from_slice(name_bytes);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

fn zip_file(path: &Path, entries: &[(&str, &[u8])]) {
    let file = File::create(path).unwrap();
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap();
}

fn pin_for(artefact: &Path, format: ArchiveFormat, sha256: String) -> Pin {
    Pin {
        id: "fixture".into(),
        registry: Registry::Npm,
        package: "fixture".into(),
        version: "1.0.0".into(),
        command: "npm pack fixture@1.0.0 --pack-destination DIR".into(),
        file: artefact.file_name().unwrap().to_string_lossy().into_owned(),
        format,
        sha256,
        paths: vec!["package/data/*.bin".into(), "pkg/texts/*.txt".into()],
        derived_sha256: Default::default(),
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    artefact: PathBuf,
    fetcher: Fetcher,
    pin: Pin,
}

fn setup_tar() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let artefact = dir.path().join("fixture-1.0.0.tgz");
    tar_gz(
        &artefact,
        &[
            ("package/data/a.bin", b"alpha"),
            ("package/data/b.bin", b"beta"),
            ("package/data/sub/c.bin", b"nested: not taken"),
            ("package/other.txt", b"not taken"),
            ("package/data/../escape.bin", b"hostile"),
        ],
    );
    let pin = pin_for(
        &artefact,
        ArchiveFormat::TarGz,
        sha256_file(&artefact).unwrap(),
    );
    let root = dir.path().join("cache");
    let pins = Pins {
        schema: pins::PINS_SCHEMA,
        comment: String::new(),
        artefacts: vec![pin.clone()],
    };
    let fetcher = Fetcher::with_pins(
        DataLocation::with_roots(&root, dir.path().join("shared")),
        pins,
    );
    Setup {
        _dir: dir,
        root,
        artefact,
        fetcher,
        pin,
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn wrong_checksum_is_rejected_before_extraction() {
    let setup = setup_tar();
    let mut pin = setup.pin.clone();
    pin.sha256 = "0".repeat(64);
    let err = setup
        .fetcher
        .install_from_artefact(&pin, &[&FIXTURE_SET], &setup.artefact)
        .unwrap_err();
    match &err {
        FetchError::ChecksumMismatch {
            file,
            expected,
            actual,
        } => {
            assert_eq!(file, &setup.artefact);
            assert_eq!(expected, &"0".repeat(64));
            assert_eq!(actual, &setup.pin.sha256);
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(err.to_string().contains("fixture-1.0.0.tgz"), "{err}");
    // Nothing extracted, no staging directory left behind.
    assert!(!setup.root.join("nested/fixture").exists());
    assert_eq!(entries(&setup.root.join("nested")), Vec::<String>::new());
    assert_eq!(
        entries(&setup.root.join(DOWNLOADS_DIR)),
        Vec::<String>::new()
    );
}

#[test]
fn checksum_is_checked_before_the_archive_is_read() {
    // Garbage that no archive reader accepts: if extraction ran first, the
    // error would be a read error, not the checksum mismatch.
    let setup = setup_tar();
    let garbage = setup.root.parent().unwrap().join("garbage.tgz");
    std::fs::write(&garbage, b"not a gzip stream").unwrap();
    let err = setup
        .fetcher
        .install_from_artefact(&setup.pin, &[&FIXTURE_SET], &garbage)
        .unwrap_err();
    assert!(matches!(err, FetchError::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn extraction_takes_only_the_selected_files_and_stamps_them() {
    let setup = setup_tar();
    let reports = setup
        .fetcher
        .install_from_artefact(&setup.pin, &[&FIXTURE_SET], &setup.artefact)
        .unwrap();
    let dest = setup.root.join("nested/fixture");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, FetchOutcome::Fetched);
    assert_eq!(reports[0].path, dest);
    assert_eq!(reports[0].files, vec!["a.bin", "b.bin"]);
    assert_eq!(entries(&dest), vec![".complete", "a.bin", "b.bin"]);
    assert_eq!(std::fs::read(dest.join("a.bin")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read_to_string(dest.join(COMPLETE_STAMP)).unwrap(),
        format!("{}\na.bin\nb.bin\n", setup.pin.sha256)
    );
    assert!(!setup.root.join("escape.bin").exists());
    assert!(!setup.root.join("nested/escape.bin").exists());
    assert_eq!(
        FIXTURE_SET.resolve(&setup.fetcher.location),
        Ok(Presence::OnDisk(dest))
    );
}

#[test]
fn second_fetch_of_a_complete_set_does_nothing() {
    let setup = setup_tar();
    setup
        .fetcher
        .install_from_artefact(&setup.pin, &[&FIXTURE_SET], &setup.artefact)
        .unwrap();
    let dest = setup.root.join("nested/fixture");
    // A marker the second fetch would overwrite if it extracted again.
    std::fs::write(dest.join("a.bin"), b"marker").unwrap();
    // The artefact path does not exist: reading it would fail.
    let reports = setup
        .fetcher
        .install_from_artefact(&setup.pin, &[&FIXTURE_SET], Path::new("/nonexistent/x.tgz"))
        .unwrap();
    assert_eq!(reports[0].outcome, FetchOutcome::AlreadyPresent);
    assert_eq!(std::fs::read(dest.join("a.bin")).unwrap(), b"marker");
    // `fetch` (which would download) is also a no-op: it never runs the client.
    let fetcher = Fetcher::with_pins(setup.fetcher.location.clone(), setup.fetcher.pins.clone())
        .clients(Clients {
            npm: "sparseland-no-such-npm".into(),
            ..Clients::default()
        });
    let reports = fetcher.fetch(&[&FIXTURE_SET]).unwrap();
    assert_eq!(reports[0].outcome, FetchOutcome::AlreadyPresent);
}

#[test]
fn incomplete_directory_is_replaced() {
    let setup = setup_tar();
    let dest = setup.root.join("nested/fixture");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("a.bin"), b"half-written").unwrap();
    std::fs::write(dest.join("stale.bin"), b"old").unwrap();
    let reports = setup
        .fetcher
        .install_from_artefact(&setup.pin, &[&FIXTURE_SET], &setup.artefact)
        .unwrap();
    assert_eq!(reports[0].outcome, FetchOutcome::Fetched);
    assert_eq!(entries(&dest), vec![".complete", "a.bin", "b.bin"]);
    assert_eq!(std::fs::read(dest.join("a.bin")).unwrap(), b"alpha");
}

#[test]
fn missing_client_names_the_client_and_the_package() {
    let setup = setup_tar();
    let fetcher = Fetcher::with_pins(setup.fetcher.location.clone(), setup.fetcher.pins.clone())
        .clients(Clients {
            npm: "sparseland-no-such-npm".into(),
            ..Clients::default()
        });
    let err = fetcher.fetch(&[&FIXTURE_SET]).unwrap_err();
    assert!(
        matches!(&err, FetchError::ClientMissing { client, package }
            if client == "sparseland-no-such-npm" && package == "npm package fixture@1.0.0"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("`sparseland-no-such-npm` not found"),
        "{err}"
    );
    assert!(!setup.root.join("nested/fixture").exists());
}

#[test]
fn file_absent_from_the_artefact_is_an_error_and_nothing_is_installed() {
    let setup = setup_tar();
    static WANTS_MORE: Dataset = Dataset {
        storage: Storage::Fetched(Extraction {
            artefact: "fixture",
            inside: "package/data/",
            files: FileSelection::Names(&["a.bin", "missing.bin"]),
            dest: "more",
            conversion: None,
        }),
        ..FIXTURE_SET
    };
    let err = setup
        .fetcher
        .install_from_artefact(&setup.pin, &[&WANTS_MORE], &setup.artefact)
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::NotInArtefact { missing, .. } if missing == &["package/data/missing.bin"]),
        "{err}"
    );
    assert!(!setup.root.join("more").exists());
    assert_eq!(entries(&setup.root), vec![DOWNLOADS_DIR]);
}

#[test]
fn zip_artefact_with_suffix_selection() {
    let dir = tempfile::tempdir().unwrap();
    let artefact = dir.path().join("fixture-1.0.0-py3-none-any.whl");
    zip_file(
        &artefact,
        &[
            ("pkg/texts/one.txt", b"to be"),
            ("pkg/texts/two.txt", b"or not"),
            ("pkg/texts/readme.md", b"skip"),
            ("pkg/other/three.txt", b"skip"),
        ],
    );
    let pin = pin_for(
        &artefact,
        ArchiveFormat::Zip,
        sha256_file(&artefact).unwrap(),
    );
    let root = dir.path().join("cache");
    let pins = Pins {
        schema: pins::PINS_SCHEMA,
        comment: String::new(),
        artefacts: vec![pin.clone()],
    };
    let fetcher = Fetcher::with_pins(DataLocation::with_roots(&root, dir.path()), pins);
    let reports = fetcher
        .install_from_artefact(&pin, &[&TEXTS_SET], &artefact)
        .unwrap();
    assert_eq!(reports[0].files, vec!["one.txt", "two.txt"]);
    assert_eq!(
        std::fs::read(root.join("texts/two.txt")).unwrap(),
        b"or not"
    );
}

#[test]
fn shared_and_embedded_sets_are_not_fetchable() {
    let setup = setup_tar();
    let cora = catalogue::find("cora").unwrap();
    let err = setup.fetcher.fetch(&[cora]).unwrap_err();
    assert!(err.to_string().starts_with("cora is shared data"), "{err}");
    let digits = catalogue::find("digits").unwrap();
    let err = setup.fetcher.fetch(&[digits]).unwrap_err();
    assert!(
        err.to_string().starts_with("digits is embedded data"),
        "{err}"
    );
}

#[test]
fn every_fetched_catalogue_set_has_a_pin() {
    let fetcher = Fetcher::new(DataLocation::with_roots("/x", "/y")).unwrap();
    for dataset in catalogue::all() {
        if let Some(extraction) = dataset.extraction() {
            assert!(
                fetcher.pin_for(dataset, extraction).is_ok(),
                "{}",
                dataset.name
            );
        }
    }
}

#[test]
fn sha256_of_known_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc");
    std::fs::write(&path, b"abc").unwrap();
    assert_eq!(
        sha256_file(&path).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[cfg(unix)]
#[test]
fn apt_get_update_runs_once_when_the_package_is_unknown() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("updated");
    // A stand-in for apt-get: `download` fails like apt-get does until
    // `update` has run, then writes a file (whose checksum will not match).
    let script = dir.path().join("fake-apt-get");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = update ]; then echo run >> '{m}'; exit 0; fi\n\
             if [ -f '{m}' ]; then echo deb > pkg_1_all.deb; exit 0; fi\n\
             echo 'E: Unable to locate package pkg' >&2; exit 100\n",
            m = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pin = Pin {
        id: "fixture".into(),
        registry: Registry::Debian,
        package: "pkg".into(),
        version: "1".into(),
        command: "apt-get download pkg=1".into(),
        file: "pkg_1_all.deb".into(),
        format: ArchiveFormat::Deb,
        sha256: "0".repeat(64),
        paths: vec!["package/data/a.bin".into()],
        derived_sha256: Default::default(),
    };
    let pins = Pins {
        schema: pins::PINS_SCHEMA,
        comment: String::new(),
        artefacts: vec![pin],
    };
    let logged = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let sink = logged.clone();
    let fetcher = Fetcher::with_pins(
        DataLocation::with_roots(dir.path().join("cache"), dir.path()),
        pins,
    )
    .clients(Clients {
        apt_get: script.into_os_string(),
        ..Clients::default()
    })
    .log(move |line| sink.borrow_mut().push(line.to_string()));
    let err = fetcher.fetch(&[&FIXTURE_SET]).unwrap_err();
    assert!(matches!(err, FetchError::ChecksumMismatch { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\n");
    assert!(
        logged
            .borrow()
            .iter()
            .any(|line| line.contains("running `apt-get update` once")),
        "{:?}",
        logged.borrow()
    );
}
