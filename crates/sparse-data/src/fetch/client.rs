//! Running the registry clients (`npm`, `pip`, `apt-get`, `dpkg-deb`).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::FetchError;
use super::pins::{Pin, Registry};

/// The programs used to download and unpack artefacts.
///
/// Each field is the program run for that client; tests replace one with a
/// name that does not exist to check the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    /// npm's client.
    pub npm: OsString,
    /// PyPI's client (`pip`, or `pip3` when only that one is installed).
    pub pip: OsString,
    /// Debian's downloader.
    pub apt_get: OsString,
    /// Debian's package unpacker.
    pub dpkg_deb: OsString,
}

impl Default for Clients {
    fn default() -> Self {
        let pip = if on_path("pip") || !on_path("pip3") {
            "pip"
        } else {
            "pip3"
        };
        Clients {
            npm: "npm".into(),
            pip: pip.into(),
            apt_get: "apt-get".into(),
            dpkg_deb: "dpkg-deb".into(),
        }
    }
}

impl Clients {
    fn program_for(&self, registry: Registry) -> &OsString {
        match registry {
            Registry::Npm => &self.npm,
            Registry::Pypi => &self.pip,
            Registry::Debian => &self.apt_get,
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Downloads `pin`'s artefact into `dir` with its registry's client and
/// returns the path of the downloaded file.
///
/// For Debian, an "unable to locate package" failure runs `apt-get update`
/// once and retries (reported through `log`).
pub(crate) fn download(
    pin: &Pin,
    dir: &Path,
    clients: &Clients,
    log: &dyn Fn(&str),
) -> Result<PathBuf, FetchError> {
    let program = clients.program_for(pin.registry);
    let args: Vec<OsString> = pin
        .command
        .split_whitespace()
        .skip(1)
        .map(|word| {
            if word == "DIR" {
                dir.as_os_str().to_owned()
            } else {
                word.into()
            }
        })
        .collect();
    log(&format!(
        "downloading {} {} ({})",
        pin.registry,
        pin.package_spec(),
        pin.command
    ));
    let mut output = run(program, &args, dir, pin)?;
    if !output.status.success() && pin.registry == Registry::Debian && apt_lacks_package(&output) {
        log("apt-get cannot locate the package: running `apt-get update` once, then retrying");
        let update = run(program, &[OsString::from("update")], dir, pin)?;
        if !update.status.success() {
            return Err(client_failed(program, "update", pin, &update));
        }
        output = run(program, &args, dir, pin)?;
    }
    if !output.status.success() {
        return Err(client_failed(program, &pin.command, pin, &output));
    }
    let file = dir.join(&pin.file);
    if file.is_file() {
        Ok(file)
    } else {
        Err(FetchError::ArtefactMissing {
            package: pin.package_spec(),
            expected: file,
            found: list_dir(dir),
        })
    }
}

/// Unpacks a Debian package into `dest` with `dpkg-deb -x`.
pub(crate) fn dpkg_extract(
    deb: &Path,
    dest: &Path,
    clients: &Clients,
    pin: &Pin,
) -> Result<(), FetchError> {
    let args = [deb.as_os_str().to_owned(), dest.as_os_str().to_owned()];
    let mut command = Command::new(&clients.dpkg_deb);
    command.arg("-x").args(args);
    let output = command
        .output()
        .map_err(|err| spawn_error(err, &clients.dpkg_deb, pin))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(client_failed(&clients.dpkg_deb, "-x", pin, &output))
    }
}

fn run(program: &OsString, args: &[OsString], dir: &Path, pin: &Pin) -> Result<Output, FetchError> {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|err| spawn_error(err, program, pin))
}

fn spawn_error(err: io::Error, program: &OsString, pin: &Pin) -> FetchError {
    if err.kind() == io::ErrorKind::NotFound {
        FetchError::ClientMissing {
            client: program.to_string_lossy().into_owned(),
            package: format!("{} package {}", pin.registry, pin.package_spec()),
        }
    } else {
        FetchError::Io {
            context: format!("running `{}`", program.to_string_lossy()),
            source: err,
        }
    }
}

fn apt_lacks_package(output: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    stderr.contains("unable to locate package") || stderr.contains("was not found")
}

fn client_failed(program: &OsString, what: &str, pin: &Pin, output: &Output) -> FetchError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    FetchError::ClientFailed {
        client: program.to_string_lossy().into_owned(),
        command: what.to_string(),
        package: pin.package_spec(),
        status: output.status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
