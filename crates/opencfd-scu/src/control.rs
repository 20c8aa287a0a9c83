//! The solver's control file, `opencfd-scu.in`: parsing, checking and writing.
//!
//! # Format
//!
//! A control file is plain text, one setting per line, written `KEY = values`: the key
//! is an upper-case name, the values after `=` are separated by blanks. Everything from
//! a `#` to the end of its line is a comment; blank lines are skipped; `\r\n` line ends
//! are accepted. Keys may come in any order, but each at most once. Keys are
//! case-sensitive, as in the official reader.
//!
//! The official reader (arXiv 2209.15333, `read_parameters`) is lax; this one checks
//! every value and reports the file, the line, the key and what is wrong
//! ([`CfdError::Control`]); a required key that is absent is reported on line 0 with
//! the word "missing". Where the official reader quietly accepts something, the choices
//! made here are:
//!
//! * a line without `=` whose first character is a digit, a sign or a `.` is a stray
//!   data row (the official example file ends with one) and is skipped; any other line
//!   without `=` is an error, so `DT 0.01` is not silently lost;
//! * keys nobody reads are errors (with the closest known key suggested), not ignored;
//! * extra values after the ones a key takes are errors, not ignored;
//! * `LAP` is accepted and ignored, as officially: the ghost width is fixed at
//!   [`crate::GHOST`] (4);
//! * `HY_*` keys are parsed whenever present (the official example keeps them while a
//!   non-hybrid scheme is chosen) and are only *required* for `SCHEME_HYBRIDAUTO`;
//! * `HY_ZONE<n>` with `n` at or past `HY_PATCH_ZONE` is kept but inactive, as
//!   officially (the example has `HY_PATCH_ZONE = 0` and a `HY_ZONE0`).
//!
//! Faces are ordered x−, x+, y−, y+, z−, z+ in every six-valued key; "x−" is the face at
//! global index 0 of the first direction. Index ranges (filters, hybrid zones) are
//! global, 0-based, `begin ≤ i < end`, with `end` at most the grid size.
//!
//! # Keys
//!
//! | key | values | default | meaning |
//! |-----|--------|---------|---------|
//! | `GRID_3D` | 3 int ≥ 1 | required | global grid points NX NY NZ |
//! | `PARALLEL_3D` | 3 int ≥ 1 | required | MPI blocks per direction |
//! | `LAP` | 1 int | ignored | ghost width (fixed at 4, the value is not used) |
//! | `MSG_BLOCK_SIZE` | 0 or −2 | 0 | halo exchange: 0 plain sends, −2 MPI derived types |
//! | `STREAM` | 0/1 | 0 | 0 one stream, 1 overlap halo exchange with interior work |
//! | `TEST` | 0/1 | 0 | 1: time the first `KSTEP_SHOW` steps, print the host, stop |
//! | `CHARTERIC` | 0/1 | 0 | 1: reconstruct inviscid fluxes in characteristic variables |
//! | `IPERIODIC` | 3 × 0/1 | 0 0 0 | periodic in x, y, z |
//! | `JAC_BOUND` | 3 × 0/1 | 0 0 0 | one-sided closures for the grid metrics at both ends of x, y, z |
//! | `DIF_BOUND` | 6 × 0/1 | 0 … | one-sided/low-order flux-derivative closures at each face |
//! | `NON_REFLETION` | 6 × 0/1 | 0 … | at each face, the boundary point gets no difference of the split flux entering there (official spelling) |
//! | `SCHEME_INVIS` | name | required | inviscid scheme, see [`InviscidSchemeName`] |
//! | `SCHEME_VIS` | name | required | viscous-derivative scheme, see [`CentralDifference`] |
//! | `HY_DP_INTV` | 2 real | required for hybrid | indicator thresholds between the 3 hybrid stages |
//! | `HY_STYLE` | 1 or 2 | required for hybrid | indicator: 1 pressure gradient, 2 Jameson |
//! | `HY_SMOOTH_DP` | 0/1 | 0 | smooth the pressure-gradient indicator |
//! | `HY_PATCH_ZONE` | int 0–10 | 0 | how many `HY_ZONE<n>` are applied |
//! | `HY_ZONE<n>` | 6 int, 1 real | required for n < `HY_PATCH_ZONE` | ib ie jb je kb ke, indicator value forced there |
//! | `RE` | real > 0 | required | Reynolds number |
//! | `AMA` | real > 0 | required | Mach number |
//! | `GAMMA` | real > 1 | required | ratio of specific heats |
//! | `PR` | real > 0 | required | Prandtl number |
//! | `T_REF` | real | 288.15 | reference temperature in K (Sutherland); ≤ 0 means 288.15 |
//! | `EPSL_SW` | real ≥ 0 | 0 | entropy fix of the Steger–Warming eigenvalues |
//! | `DT` | real > 0 | required | time step |
//! | `END_TIME` | real ≥ 0 | required | stop time; 0 stops after the first step |
//! | `KSTEP_SHOW` | int ≥ 1 | required | print residuals every so many steps |
//! | `KSTEP_SAVE` | int ≥ 1 | required | save the flow field every so many steps |
//! | `INIT_STAT` | 0/1 | 0 | 0 start from a uniform field, 1 read `opencfd.dat` |
//! | `IBC` | int | 0 | user boundary: 108 compression corner, 124 lifting body, else none |
//! | `BC_NPARA` | ≤ 100 int | none | integer parameters of `IBC` |
//! | `BC_RPARA` | ≤ 100 real | none | real parameters of `IBC` |
//! | `FILTER_NPARA<n>` | 11 int | — | a filter: every, X Y Z flags, ib ie jb je kb ke, scheme |
//! | `FILTER_RPARA<n>` | 3 real | required with its NPARA | s0, shock threshold, end time |
//! | `ANA_EVENT<n>` | 2 int | — | an analysis: kind (100–107), every so many steps |
//! | `ANA_NPARA<n>` | ≤ 100 int | none | integer parameters of that analysis |
//! | `ANA_RPARA<n>` | ≤ 100 real | none | real parameters of that analysis |
//!
//! Up to [`MAX_FILTERS`] filters and [`MAX_ANALYSIS_EVENTS`] analyses fit the official
//! buffers; they apply in the order of their lines, whatever their numbers `<n>`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CfdError, CfdResult};
use crate::scheme::CentralDifference;

/// Reference temperature used when `T_REF` is absent or not positive (K).
pub const DEFAULT_T_REF: f64 = 288.15;
/// Most values a `BC_*PARA` or `ANA_*PARA` key may hold (the official buffers).
pub const MAX_PARA_VALUES: usize = 100;
/// Most filters: the official non-root ranks hold 10 rows and receive one more than
/// the filter count.
pub const MAX_FILTERS: usize = 9;
/// Most analysis events the official non-root ranks make room for.
pub const MAX_ANALYSIS_EVENTS: usize = 10;
/// Most hybrid patch zones (`HY_PATCH_ZONE`).
pub const MAX_PATCH_ZONES: usize = 10;
/// `IBC` of the compression-corner (ramp) boundary conditions.
pub const IBC_COMPRESSION_CORNER: i64 = 108;
/// `IBC` of the lifting-body boundary conditions.
pub const IBC_LIFTING_BODY: i64 = 124;

/// The error of [`InviscidSchemeName::from_str`] and [`CentralDifference::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheme `{given}` (accepted: {accepted})")]
pub struct UnknownSchemeName {
    /// The text that was given.
    pub given: String,
    /// The accepted names, comma separated.
    pub accepted: String,
}

/// The inviscid (convective-flux) schemes the official `SCHEME_INVIS` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InviscidSchemeName {
    /// `UP7`: linear seventh-order upwind scheme.
    Up7,
    /// `WENO5`: fifth-order weighted essentially non-oscillatory scheme.
    Weno5,
    /// `WENO7`: seventh-order WENO scheme.
    Weno7,
    /// `WENO7_SYMBO`: seventh-order bandwidth-optimised symmetric WENO (WENO-SYMBO).
    Weno7Symbo,
    /// `WENO7_SYMBO_LIM`: WENO-SYMBO with its total-variation limiter on the
    /// symmetric stencil.
    Weno7SymboLim,
    /// `NND2`: second-order non-oscillatory, no-free-parameter dissipative scheme.
    Nnd2,
    /// `OMP6_HR`: sixth-order optimised monotonicity-preserving scheme, robust set.
    Omp6Hr,
    /// `OMP6_LD`: sixth-order optimised monotonicity-preserving scheme,
    /// low-dissipation set.
    Omp6Ld,
    /// `OMP6_CD8`: OMP6 whose linear part is the eighth-order central scheme.
    Omp6Cd8,
    /// `SCHEME_HYBRIDAUTO`: switches point by point between OMP6, WENO7 and NND2
    /// by a shock indicator (see [`HybridSettings`]).
    HybridAuto,
}

impl InviscidSchemeName {
    /// Every accepted scheme, in the official ID order (301–310).
    pub const ALL: [InviscidSchemeName; 10] = [
        Self::Up7,
        Self::Weno5,
        Self::Weno7,
        Self::Weno7Symbo,
        Self::Weno7SymboLim,
        Self::Nnd2,
        Self::Omp6Hr,
        Self::Omp6Ld,
        Self::Omp6Cd8,
        Self::HybridAuto,
    ];

    /// The official spelling in `SCHEME_INVIS`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Up7 => "UP7",
            Self::Weno5 => "WENO5",
            Self::Weno7 => "WENO7",
            Self::Weno7Symbo => "WENO7_SYMBO",
            Self::Weno7SymboLim => "WENO7_SYMBO_LIM",
            Self::Nnd2 => "NND2",
            Self::Omp6Hr => "OMP6_HR",
            Self::Omp6Ld => "OMP6_LD",
            Self::Omp6Cd8 => "OMP6_CD8",
            Self::HybridAuto => "SCHEME_HYBRIDAUTO",
        }
    }

    /// The official numeric scheme ID (301 for `UP7` … 310 for `SCHEME_HYBRIDAUTO`).
    pub fn official_id(&self) -> u32 {
        301 + Self::ALL.iter().position(|s| s == self).unwrap_or(0) as u32
    }

    /// Whether the official code has a characteristic-variable version of the scheme
    /// (`CHARTERIC = 1`); for the others it computes no inviscid term at all.
    pub fn supports_characteristic(&self) -> bool {
        matches!(
            self,
            Self::Weno7Symbo | Self::Weno7SymboLim | Self::HybridAuto
        )
    }
}

impl fmt::Display for InviscidSchemeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InviscidSchemeName {
    type Err = UnknownSchemeName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|scheme| scheme.name() == s)
            .ok_or_else(|| UnknownSchemeName {
                given: s.to_string(),
                accepted: join_names(Self::ALL.iter().map(|s| s.name())),
            })
    }
}

/// `SCHEME_VIS` names the viscous scheme directly: [`CentralDifference`].
impl FromStr for CentralDifference {
    type Err = UnknownSchemeName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| UnknownSchemeName {
            given: s.to_string(),
            accepted: join_names(Self::ALL.iter().map(|s| s.name())),
        })
    }
}

/// How halos are exchanged between blocks (`MSG_BLOCK_SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HaloExchange {
    /// `0`: pack, send and unpack plain buffers (the default).
    Standard,
    /// `-2`: send strided MPI derived datatypes.
    DerivedType,
}

impl HaloExchange {
    /// The official `MSG_BLOCK_SIZE` value.
    pub fn code(&self) -> i64 {
        match self {
            Self::Standard => 0,
            Self::DerivedType => -2,
        }
    }
}

/// How the right-hand side is scheduled on the device (`STREAM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamMode {
    /// `0`: inviscid then viscous terms, one after the other on one stream.
    Sequential,
    /// `1`: interior work on one stream overlapped with halo exchange and the
    /// block-edge work on others.
    Overlapped,
}

impl StreamMode {
    /// The official `STREAM` value.
    pub fn code(&self) -> i64 {
        match self {
            Self::Sequential => 0,
            Self::Overlapped => 1,
        }
    }
}

/// Where the flow starts (`INIT_STAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InitialState {
    /// `0`: a uniform field (ρ = u = T = 1, v = w = 0) at step 0, time 0.
    Uniform,
    /// `1`: read the field, step and time from `opencfd.dat` (a restart).
    ReadFile,
}

impl InitialState {
    /// The official `INIT_STAT` value.
    pub fn code(&self) -> i64 {
        match self {
            Self::Uniform => 0,
            Self::ReadFile => 1,
        }
    }
}

/// Which shock indicator drives the hybrid scheme (`HY_STYLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HybridIndicator {
    /// `1`: normalised pressure gradient, with optional smoothing and patch zones.
    PressureGradient,
    /// `2`: Jameson's pressure sensor (second difference over sum), summed over the
    /// three directions; smoothing and patch zones are not used.
    Jameson,
}

impl HybridIndicator {
    /// The official `HY_STYLE` value.
    pub fn code(&self) -> i64 {
        match self {
            Self::PressureGradient => 1,
            Self::Jameson => 2,
        }
    }
}

/// A box where the hybrid indicator is overwritten (`HY_ZONE<n>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridZone {
    /// The `<n>` of `HY_ZONE<n>`; only zones with `index < patch_zone_count` apply.
    pub index: usize,
    /// First global index of the box in x, y, z (ib jb kb, 0-based).
    pub begin: [usize; 3],
    /// One past the last global index in x, y, z (ie je ke).
    pub end: [usize; 3],
    /// The indicator value imposed inside the box (the 7th value).
    pub indicator: f64,
}

/// The settings of `SCHEME_HYBRIDAUTO` (the `HY_*` keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HybridSettings {
    /// `HY_DP_INTV`: the two indicator thresholds. At or below the first the point
    /// uses OMP6, up to the second WENO7, above it NND2.
    pub thresholds: [f64; 2],
    /// `HY_STYLE`: which indicator.
    pub indicator: HybridIndicator,
    /// `HY_SMOOTH_DP`: smooth the pressure-gradient indicator (default off).
    pub smooth_indicator: bool,
    /// `HY_PATCH_ZONE`: how many zones apply, `HY_ZONE0` … (default 0, at most
    /// [`MAX_PATCH_ZONES`]).
    pub patch_zone_count: usize,
    /// `HY_ZONE<n>`: every zone given, in file order (active ones and extras).
    pub zones: Vec<HybridZone>,
}

impl HybridSettings {
    /// The zones the official solver applies: those numbered below `patch_zone_count`.
    pub fn active_zones(&self) -> impl Iterator<Item = &HybridZone> {
        self.zones
            .iter()
            .filter(move |z| z.index < self.patch_zone_count)
    }
}

/// The filter operator of a filter (last value of `FILTER_NPARA<n>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FilterScheme {
    /// `1`: ninth-order (nine-point) linear filter; unfinished in the official GPU
    /// code, which aborts when it is used.
    NinePoint,
    /// `2`: shock-detecting optimised filter, weighted by a pressure sensor.
    ShockDetecting,
}

impl FilterScheme {
    /// The official value.
    pub fn code(&self) -> i64 {
        match self {
            Self::NinePoint => 1,
            Self::ShockDetecting => 2,
        }
    }
}

/// One filtering event (`FILTER_NPARA<n>` with `FILTER_RPARA<n>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterSpec {
    /// The `<n>` of the key names.
    pub index: usize,
    /// Apply every so many steps (NPARA value 1, `nstep_filter`, ≥ 1).
    pub every_steps: u64,
    /// Filter along x, y, z (NPARA values 2–4).
    pub directions: [bool; 3],
    /// First global index of the box in x, y, z (NPARA ib jb kb).
    pub begin: [usize; 3],
    /// One past the last global index in x, y, z (NPARA ie je ke). The official code
    /// further keeps the filter 6 points off a non-periodic low face and 5 off a high
    /// one.
    pub end: [usize; 3],
    /// The operator (NPARA value 11).
    pub scheme: FilterScheme,
    /// Filter strength `s0`, 0 < s0 ≤ 1 (RPARA value 1).
    pub strength: f64,
    /// Shock-sensor threshold `rth` ≥ 0 (RPARA value 2).
    pub sensor_threshold: f64,
    /// Filter only while the time is at most this (RPARA value 3).
    pub until_time: f64,
}

/// What an analysis event does (first value of `ANA_EVENT<n>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AnalysisKind {
    /// `100`: look for NaNs and negative temperatures.
    NanAndNegativeTemperature,
    /// `101`: accumulate the time average of ρ, u, v, w, T.
    TimeAverage,
    /// `102`: write the hybrid scheme's per-point choice.
    HybridSchemeMap,
    /// `103`: compute the Q criterion.
    QCriterion,
    /// `104`: append bands of xy planes to `Savedata-XY*.dat` (needs `ANA_NPARA`).
    SavePlanesXy,
    /// `105`: append bands of yz planes (needs `ANA_NPARA`).
    SavePlanesYz,
    /// `106`: append bands of xz planes (needs `ANA_NPARA`).
    SavePlanesXz,
    /// `107`: report how often each hybrid stage is used (hybrid scheme only).
    HybridSchemeProportion,
}

impl AnalysisKind {
    /// Every kind, by code 100 … 107.
    pub const ALL: [AnalysisKind; 8] = [
        Self::NanAndNegativeTemperature,
        Self::TimeAverage,
        Self::HybridSchemeMap,
        Self::QCriterion,
        Self::SavePlanesXy,
        Self::SavePlanesYz,
        Self::SavePlanesXz,
        Self::HybridSchemeProportion,
    ];

    /// The official code (100 … 107).
    pub fn code(&self) -> i64 {
        100 + Self::ALL.iter().position(|k| k == self).unwrap_or(0) as i64
    }

    /// The kind with this official code.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// Whether `ANA_NPARA` describes planes: count, band width, then `count` first
    /// plane indices.
    pub fn saves_planes(&self) -> bool {
        matches!(
            self,
            Self::SavePlanesXy | Self::SavePlanesYz | Self::SavePlanesXz
        )
    }
}

/// One analysis event (`ANA_EVENT<n>`, `ANA_NPARA<n>`, `ANA_RPARA<n>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisEvent {
    /// The `<n>` of the key names.
    pub index: usize,
    /// What to do (`ANA_EVENT` value 1).
    pub kind: AnalysisKind,
    /// Run it every so many steps (`ANA_EVENT` value 2, ≥ 1).
    pub every_steps: u64,
    /// `ANA_NPARA<n>` (empty when absent).
    pub npara: Vec<i64>,
    /// `ANA_RPARA<n>` (empty when absent).
    pub rpara: Vec<f64>,
}

/// Everything an `opencfd-scu.in` control file sets. See the [module docs](self) for
/// the file format and the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// `GRID_3D`: global grid points in x, y, z (each ≥ 1).
    pub grid: [usize; 3],
    /// `PARALLEL_3D`: MPI blocks in x, y, z (each ≥ 1).
    pub blocks: [usize; 3],
    /// `MSG_BLOCK_SIZE`: halo exchange method (default [`HaloExchange::Standard`]).
    pub halo_exchange: HaloExchange,
    /// `STREAM`: device scheduling (default [`StreamMode::Sequential`]).
    pub stream: StreamMode,
    /// `TEST`: time the first `KSTEP_SHOW` steps, print the host name, stop (default off).
    pub test: bool,
    /// `IPERIODIC`: periodic in x, y, z (default none).
    pub periodic: [bool; 3],
    /// `JAC_BOUND`: one-sided closures for the grid-metric derivatives at both ends
    /// of x, y, z (official: any non-zero; default none).
    pub jac_bound: [bool; 3],
    /// `DIF_BOUND`: one-sided / reduced-order flux-derivative closures at the faces
    /// x−, x+, y−, y+, z−, z+ when they are physical boundaries (default none).
    pub dif_bound: [bool; 6],
    /// `NON_REFLETION` (official spelling): at each face x−, x+, y−, y+, z−, z+ the
    /// boundary point gets no difference of the Steger–Warming flux part that enters
    /// through it (f⁺ at a − face, f⁻ at a + face): a simple non-reflecting treatment
    /// (default none).
    pub non_reflection: [bool; 6],
    /// `SCHEME_INVIS`: inviscid scheme.
    pub inviscid: InviscidSchemeName,
    /// `SCHEME_VIS`: viscous-derivative scheme.
    pub viscous: CentralDifference,
    /// The `HY_*` keys, when any is given; used only when `inviscid` is
    /// [`InviscidSchemeName::HybridAuto`] (then they are required).
    pub hybrid: Option<HybridSettings>,
    /// `RE`: Reynolds number (> 0).
    pub re: f64,
    /// `AMA`: free-stream Mach number (> 0).
    pub ama: f64,
    /// `GAMMA`: ratio of specific heats (> 1).
    pub gamma: f64,
    /// `PR`: Prandtl number (> 0).
    pub pr: f64,
    /// `T_REF`: reference temperature in K for Sutherland's law; absent or ≤ 0 in the
    /// file gives [`DEFAULT_T_REF`], so this is always > 0.
    pub t_ref: f64,
    /// `EPSL_SW`: entropy-fix ε of the Steger–Warming eigenvalues (≥ 0, default 0).
    pub epsl_sw: f64,
    /// `DT`: time step (> 0).
    pub dt: f64,
    /// `END_TIME`: stop time (≥ 0); 0 stops after one step.
    pub end_time: f64,
    /// `KSTEP_SHOW`: print residuals every so many steps (≥ 1).
    pub kstep_show: u64,
    /// `KSTEP_SAVE`: save the field every so many steps (≥ 1).
    pub kstep_save: u64,
    /// `INIT_STAT`: initial field (default [`InitialState::Uniform`]).
    pub init_stat: InitialState,
    /// `IBC`: user boundary conditions: [`IBC_COMPRESSION_CORNER`] (108),
    /// [`IBC_LIFTING_BODY`] (124); any other value means none (default 0).
    pub ibc: i64,
    /// `BC_NPARA`: integer parameters of `IBC` (108: mzmax, mtmax, inlet boundary,
    /// wall-not-normal flag; 124: symmetry, with-leading-edge, upper-boundary flag,
    /// mzmax, mtmax).
    pub bc_npara: Vec<i64>,
    /// `BC_RPARA`: real parameters of `IBC` (108: Tw, ε, x disturbance begin/end,
    /// β, x wall begin, x upper-boundary begin, span length; 124: angle of attack,
    /// Tw, ε wall, ε upper, β, wall disturbance begin/end).
    pub bc_rpara: Vec<f64>,
    /// `CHARTERIC`: characteristic-variable flux reconstruction (default off; only
    /// for schemes where [`InviscidSchemeName::supports_characteristic`]).
    pub characteristic: bool,
    /// `FILTER_NPARA<n>` / `FILTER_RPARA<n>`: filters, in file order.
    pub filters: Vec<FilterSpec>,
    /// `ANA_EVENT<n>` / `ANA_NPARA<n>` / `ANA_RPARA<n>`: analyses, in file order.
    pub analyses: Vec<AnalysisEvent>,
}

impl Control {
    /// Reads and checks a control file.
    pub fn from_file(path: &Path) -> CfdResult<Control> {
        let text = std::fs::read_to_string(path).map_err(|source| CfdError::ReadControl {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks the text of a control file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> CfdResult<Control> {
        let reader = Reader::scan(text, file)?;
        reader.build()
    }

    /// The hybrid settings when the hybrid scheme is in use.
    pub fn active_hybrid(&self) -> Option<&HybridSettings> {
        match self.inviscid {
            InviscidSchemeName::HybridAuto => self.hybrid.as_ref(),
            _ => None,
        }
    }

    /// Writes the settings as a control file that [`Control::parse`] reads back to an
    /// equal value (every key written, optional ones included, so the official reader
    /// can read it too).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let o = &mut out;
        line(o, "# OpenCFD-SCU control file");
        kv(o, "GRID_3D", &join(self.grid.iter()));
        kv(o, "PARALLEL_3D", &join(self.blocks.iter()));
        kv(o, "MSG_BLOCK_SIZE", &self.halo_exchange.code().to_string());
        kv(o, "STREAM", &self.stream.code().to_string());
        kv(o, "TEST", &flag(self.test));
        kv(o, "CHARTERIC", &flag(self.characteristic));
        line(o, "");
        kv(o, "IPERIODIC", &flags(&self.periodic));
        kv(o, "JAC_BOUND", &flags(&self.jac_bound));
        kv(o, "DIF_BOUND", &flags(&self.dif_bound));
        kv(o, "NON_REFLETION", &flags(&self.non_reflection));
        line(o, "");
        kv(o, "SCHEME_INVIS", self.inviscid.name());
        kv(o, "SCHEME_VIS", self.viscous.name());
        if let Some(h) = &self.hybrid {
            kv(o, "HY_DP_INTV", &reals(&h.thresholds));
            kv(o, "HY_STYLE", &h.indicator.code().to_string());
            kv(o, "HY_SMOOTH_DP", &flag(h.smooth_indicator));
            kv(o, "HY_PATCH_ZONE", &h.patch_zone_count.to_string());
            for z in &h.zones {
                let value = format!(
                    "{} {} {} {} {} {} {}",
                    z.begin[0],
                    z.end[0],
                    z.begin[1],
                    z.end[1],
                    z.begin[2],
                    z.end[2],
                    real(z.indicator)
                );
                kv(o, &format!("HY_ZONE{}", z.index), &value);
            }
        }
        line(o, "");
        kv(o, "RE", &real(self.re));
        kv(o, "AMA", &real(self.ama));
        kv(o, "GAMMA", &real(self.gamma));
        kv(o, "PR", &real(self.pr));
        kv(o, "T_REF", &real(self.t_ref));
        kv(o, "EPSL_SW", &real(self.epsl_sw));
        line(o, "");
        kv(o, "DT", &real(self.dt));
        kv(o, "END_TIME", &real(self.end_time));
        kv(o, "KSTEP_SHOW", &self.kstep_show.to_string());
        kv(o, "KSTEP_SAVE", &self.kstep_save.to_string());
        kv(o, "INIT_STAT", &self.init_stat.code().to_string());
        line(o, "");
        kv(o, "IBC", &self.ibc.to_string());
        if !self.bc_npara.is_empty() {
            kv(o, "BC_NPARA", &join(self.bc_npara.iter()));
        }
        if !self.bc_rpara.is_empty() {
            kv(o, "BC_RPARA", &reals(&self.bc_rpara));
        }
        for f in &self.filters {
            line(o, "");
            let npara = format!(
                "{} {} {} {} {} {}",
                f.every_steps,
                flags(&f.directions),
                join([f.begin[0], f.end[0]].iter()),
                join([f.begin[1], f.end[1]].iter()),
                join([f.begin[2], f.end[2]].iter()),
                f.scheme.code()
            );
            kv(o, &format!("FILTER_NPARA{}", f.index), &npara);
            let rpara = reals(&[f.strength, f.sensor_threshold, f.until_time]);
            kv(o, &format!("FILTER_RPARA{}", f.index), &rpara);
        }
        for a in &self.analyses {
            line(o, "");
            let event = format!("{} {}", a.kind.code(), a.every_steps);
            kv(o, &format!("ANA_EVENT{}", a.index), &event);
            if !a.npara.is_empty() {
                kv(o, &format!("ANA_NPARA{}", a.index), &join(a.npara.iter()));
            }
            if !a.rpara.is_empty() {
                kv(o, &format!("ANA_RPARA{}", a.index), &reals(&a.rpara));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// Writing helpers.

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push('\n');
}

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

/// Shortest text that reads back to the same `f64`.
fn real(x: f64) -> String {
    format!("{x:?}")
}

fn reals(xs: &[f64]) -> String {
    xs.iter().map(|&x| real(x)).collect::<Vec<_>>().join(" ")
}

fn join<T: fmt::Display>(xs: impl Iterator<Item = T>) -> String {
    xs.map(|x| x.to_string()).collect::<Vec<_>>().join(" ")
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

fn flags(bs: &[bool]) -> String {
    bs.iter().map(|&b| flag(b)).collect::<Vec<_>>().join(" ")
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------
// Reading.

/// Keys without a number suffix.
const FIXED_KEYS: [&str; 31] = [
    "GRID_3D",
    "PARALLEL_3D",
    "LAP",
    "MSG_BLOCK_SIZE",
    "STREAM",
    "TEST",
    "IPERIODIC",
    "JAC_BOUND",
    "DIF_BOUND",
    "NON_REFLETION",
    "SCHEME_INVIS",
    "SCHEME_VIS",
    "RE",
    "AMA",
    "GAMMA",
    "PR",
    "T_REF",
    "EPSL_SW",
    "DT",
    "END_TIME",
    "KSTEP_SHOW",
    "KSTEP_SAVE",
    "INIT_STAT",
    "IBC",
    "BC_NPARA",
    "BC_RPARA",
    "CHARTERIC",
    "HY_DP_INTV",
    "HY_STYLE",
    "HY_SMOOTH_DP",
    "HY_PATCH_ZONE",
];

/// Keys written `PREFIX<n>` with a decimal `n`.
const NUMBERED_PREFIXES: [&str; 6] = [
    "HY_ZONE",
    "FILTER_NPARA",
    "FILTER_RPARA",
    "ANA_EVENT",
    "ANA_NPARA",
    "ANA_RPARA",
];

/// One `KEY = values` line.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    key: String,
    value: String,
}

impl Entry {
    fn tokens(&self) -> Vec<&str> {
        self.value.split_whitespace().collect()
    }
}

/// A key of the file, told apart.
enum KeyName<'a> {
    Fixed,
    Numbered(&'a str, usize),
}

fn classify(key: &str) -> Result<KeyName<'static>, String> {
    if FIXED_KEYS.contains(&key) {
        return Ok(KeyName::Fixed);
    }
    for prefix in NUMBERED_PREFIXES {
        if let Some(suffix) = key.strip_prefix(prefix) {
            let canonical = !suffix.is_empty()
                && suffix.bytes().all(|b| b.is_ascii_digit())
                && (suffix == "0" || !suffix.starts_with('0'));
            return match (canonical, suffix.parse::<usize>()) {
                (true, Ok(n)) => Ok(KeyName::Numbered(prefix, n)),
                _ => Err(format!(
                    "`{prefix}` keys take a decimal number without leading zeros, like `{prefix}0`"
                )),
            };
        }
    }
    let mut message = "unknown key".to_string();
    if let Some(best) = closest_key(key) {
        let _ = write!(message, "; did you mean `{best}`?");
    }
    Err(message)
}

/// The known key nearest to `key` by edit distance, when near enough.
fn closest_key(key: &str) -> Option<String> {
    let upper = key.to_ascii_uppercase();
    let digits: String = upper
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let digits: String = digits.chars().rev().collect();
    let number = if digits.is_empty() {
        "0".to_string()
    } else {
        digits.clone()
    };
    let stem = &upper[..upper.len() - digits.len()];
    let mut candidates: Vec<(String, usize)> = FIXED_KEYS
        .iter()
        .map(|k| (k.to_string(), edit_distance(&upper, k)))
        .collect();
    for prefix in NUMBERED_PREFIXES {
        let d = edit_distance(stem, prefix);
        candidates.push((format!("{prefix}{number}"), d));
    }
    let (best, d) = candidates.into_iter().min_by_key(|(_, d)| *d)?;
    (d <= 2.max(key.len() / 3)).then_some(best)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The lines of a file, sorted out, and the typed reading of their values.
struct Reader<'a> {
    file: &'a str,
    /// Entries in file order.
    entries: Vec<Entry>,
    /// Position in `entries` of each key.
    by_key: HashMap<String, usize>,
}

impl<'a> Reader<'a> {
    /// Splits the text into entries, rejecting malformed lines, unknown keys and
    /// repeated keys.
    fn scan(text: &str, file: &'a str) -> CfdResult<Reader<'a>> {
        let mut reader = Reader {
            file,
            entries: Vec::new(),
            by_key: HashMap::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let number = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let Some((key, value)) = content.split_once('=') else {
                let first = content.chars().next().unwrap_or(' ');
                if first.is_ascii_digit() || matches!(first, '+' | '-' | '.') {
                    continue; // a stray data row, as the official reader allows
                }
                let word = content.split_whitespace().next().unwrap_or("");
                return Err(reader.err(number, word, "expected `KEY = values`"));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(reader.err(number, "", "no key before `=`"));
            }
            classify(key).map_err(|message| reader.err(number, key, message))?;
            if let Some(&first) = reader.by_key.get(key) {
                let message = format!(
                    "duplicate key (first given on line {})",
                    reader.entries[first].line
                );
                return Err(reader.err(number, key, message));
            }
            reader.by_key.insert(key.to_string(), reader.entries.len());
            reader.entries.push(Entry {
                line: number,
                key: key.to_string(),
                value: value.trim().to_string(),
            });
        }
        Ok(reader)
    }

    fn err(&self, line: usize, key: &str, message: impl Into<String>) -> CfdError {
        CfdError::Control {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn bad(&self, entry: &Entry, message: impl Into<String>) -> CfdError {
        self.err(entry.line, &entry.key, message)
    }

    fn missing(&self, key: &str, why: &str) -> CfdError {
        self.err(0, key, format!("missing ({why})"))
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        self.by_key.get(key).map(|&i| &self.entries[i])
    }

    fn required(&self, key: &str) -> CfdResult<&Entry> {
        self.get(key)
            .ok_or_else(|| self.missing(key, "a required key"))
    }

    /// Entries `PREFIX<n>` in file order, with their numbers.
    fn numbered(&self, prefix: &str) -> Vec<(usize, &Entry)> {
        self.entries
            .iter()
            .filter_map(|e| match classify(&e.key) {
                Ok(KeyName::Numbered(p, n)) if p == prefix => Some((n, e)),
                _ => None,
            })
            .collect()
    }

    fn count(&self, entry: &Entry, expected: usize, what: &str) -> CfdResult<Vec<String>> {
        let tokens = entry.tokens();
        if tokens.len() != expected {
            return Err(self.bad(
                entry,
                format!(
                    "expected {expected} value{} ({what}), found {}",
                    if expected == 1 { "" } else { "s" },
                    tokens.len()
                ),
            ));
        }
        Ok(tokens.into_iter().map(str::to_string).collect())
    }

    fn int(&self, entry: &Entry, position: usize, token: &str) -> CfdResult<i64> {
        token.parse::<i64>().map_err(|_| {
            self.bad(
                entry,
                format!("value {} (`{token}`) is not an integer", position + 1),
            )
        })
    }

    fn real(&self, entry: &Entry, position: usize, token: &str) -> CfdResult<f64> {
        match token.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.bad(
                entry,
                format!("value {} (`{token}`) is not a finite number", position + 1),
            )),
        }
    }

    fn ints<const N: usize>(&self, entry: &Entry, what: &str) -> CfdResult<[i64; N]> {
        let tokens = self.count(entry, N, what)?;
        let mut out = [0i64; N];
        for (i, t) in tokens.iter().enumerate() {
            out[i] = self.int(entry, i, t)?;
        }
        Ok(out)
    }

    fn reals<const N: usize>(&self, entry: &Entry, what: &str) -> CfdResult<[f64; N]> {
        let tokens = self.count(entry, N, what)?;
        let mut out = [0f64; N];
        for (i, t) in tokens.iter().enumerate() {
            out[i] = self.real(entry, i, t)?;
        }
        Ok(out)
    }

    fn int_list(&self, entry: &Entry) -> CfdResult<Vec<i64>> {
        let tokens = entry.tokens();
        self.check_list_len(entry, tokens.len())?;
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| self.int(entry, i, t))
            .collect()
    }

    fn real_list(&self, entry: &Entry) -> CfdResult<Vec<f64>> {
        let tokens = entry.tokens();
        self.check_list_len(entry, tokens.len())?;
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| self.real(entry, i, t))
            .collect()
    }

    fn check_list_len(&self, entry: &Entry, len: usize) -> CfdResult<()> {
        if len > MAX_PARA_VALUES {
            return Err(self.bad(
                entry,
                format!("at most {MAX_PARA_VALUES} values, found {len}"),
            ));
        }
        Ok(())
    }

    /// Fails with `message` on `entry`'s line unless `ok`.
    fn ensure(&self, entry: &Entry, ok: bool, message: impl FnOnce() -> String) -> CfdResult<()> {
        if ok {
            Ok(())
        } else {
            Err(self.bad(entry, message()))
        }
    }

    fn flags<const N: usize>(&self, entry: &Entry, what: &str) -> CfdResult<[bool; N]> {
        let values: [i64; N] = self.ints(entry, what)?;
        let mut out = [false; N];
        for (i, &v) in values.iter().enumerate() {
            self.ensure(entry, v == 0 || v == 1, || {
                format!("value {} must be 0 or 1, got {v}", i + 1)
            })?;
            out[i] = v == 1;
        }
        Ok(out)
    }

    fn flag(&self, key: &str) -> CfdResult<bool> {
        match self.get(key) {
            Some(e) => Ok(self.flags::<1>(e, "0 or 1")?[0]),
            None => Ok(false),
        }
    }

    fn positive_counts(&self, entry: &Entry, what: &str) -> CfdResult<[usize; 3]> {
        let values: [i64; 3] = self.ints(entry, what)?;
        let mut out = [0usize; 3];
        for (i, &v) in values.iter().enumerate() {
            self.ensure(entry, v >= 1, || {
                format!("value {} must be at least 1, got {v}", i + 1)
            })?;
            out[i] = v as usize;
        }
        Ok(out)
    }

    /// A real with a lower bound; `strict` excludes the bound itself.
    fn bounded_real(&self, entry: &Entry, lower: f64, strict: bool) -> CfdResult<f64> {
        let [x] = self.reals::<1>(entry, "a number")?;
        let ok = if strict { x > lower } else { x >= lower };
        self.ensure(entry, ok, || {
            format!(
                "must be {} {lower}, got {x}",
                if strict { ">" } else { "≥" }
            )
        })?;
        Ok(x)
    }

    fn required_real(&self, key: &str, lower: f64, strict: bool) -> CfdResult<f64> {
        self.bounded_real(self.required(key)?, lower, strict)
    }

    fn step_count(&self, entry: &Entry, position: usize, v: i64) -> CfdResult<u64> {
        self.ensure(entry, v >= 1, || {
            format!("value {} must be a step count ≥ 1, got {v}", position + 1)
        })?;
        Ok(v as u64)
    }

    /// Index box `[ib ie jb je kb ke]` (values `first`.. of `entry`) inside the grid.
    fn index_box(
        &self,
        entry: &Entry,
        values: &[i64],
        first: usize,
        grid: [usize; 3],
    ) -> CfdResult<([usize; 3], [usize; 3])> {
        let mut begin = [0usize; 3];
        let mut end = [0usize; 3];
        for d in 0..3 {
            let (b, e) = (values[2 * d], values[2 * d + 1]);
            let axis = ["x", "y", "z"][d];
            self.ensure(entry, 0 <= b && b <= e && e <= grid[d] as i64, || {
                format!(
                    "values {} and {} ({axis} range {b}..{e}) must satisfy 0 ≤ begin ≤ end ≤ {}",
                    first + 2 * d + 1,
                    first + 2 * d + 2,
                    grid[d]
                )
            })?;
            begin[d] = b as usize;
            end[d] = e as usize;
        }
        Ok((begin, end))
    }

    /// Reads and checks every key.
    fn build(&self) -> CfdResult<Control> {
        let grid = self.positive_counts(self.required("GRID_3D")?, "NX NY NZ")?;
        let blocks = self.positive_counts(self.required("PARALLEL_3D")?, "blocks in x y z")?;
        if let Some(e) = self.get("LAP") {
            self.ints::<1>(e, "ghost width, ignored")?;
        }
        let halo_exchange = match self.get("MSG_BLOCK_SIZE") {
            None => HaloExchange::Standard,
            Some(e) => match self.ints::<1>(e, "0 or -2")?[0] {
                0 => HaloExchange::Standard,
                -2 => HaloExchange::DerivedType,
                v => return Err(self.bad(e, format!("must be 0 or -2, got {v}"))),
            },
        };
        let stream = if self.flag("STREAM")? {
            StreamMode::Overlapped
        } else {
            StreamMode::Sequential
        };
        let test = self.flag("TEST")?;
        let periodic = self.optional_flags::<3>("IPERIODIC", "x y z")?;
        let jac_bound = self.optional_flags::<3>("JAC_BOUND", "x y z")?;
        let dif_bound = self.optional_flags::<6>("DIF_BOUND", "x- x+ y- y+ z- z+")?;
        let non_reflection = self.optional_flags::<6>("NON_REFLETION", "x- x+ y- y+ z- z+")?;

        let e = self.required("SCHEME_INVIS")?;
        let name = self.count(e, 1, "a scheme name")?.remove(0);
        let inviscid = name
            .parse::<InviscidSchemeName>()
            .map_err(|err| self.bad(e, err.to_string()))?;
        let e = self.required("SCHEME_VIS")?;
        let name = self.count(e, 1, "a scheme name")?.remove(0);
        let viscous = name
            .parse::<CentralDifference>()
            .map_err(|err| self.bad(e, err.to_string()))?;
        let hybrid = self.hybrid(inviscid, grid)?;

        let re = self.required_real("RE", 0.0, true)?;
        let ama = self.required_real("AMA", 0.0, true)?;
        let gamma = self.required_real("GAMMA", 1.0, true)?;
        let pr = self.required_real("PR", 0.0, true)?;
        let t_ref = match self.get("T_REF") {
            Some(e) => self.reals::<1>(e, "a temperature in K")?[0],
            None => DEFAULT_T_REF,
        };
        let t_ref = if t_ref > 0.0 { t_ref } else { DEFAULT_T_REF };
        let epsl_sw = match self.get("EPSL_SW") {
            Some(e) => self.bounded_real(e, 0.0, false)?,
            None => 0.0,
        };
        let dt = self.required_real("DT", 0.0, true)?;
        let end_time = self.required_real("END_TIME", 0.0, false)?;
        let e = self.required("KSTEP_SHOW")?;
        let kstep_show = self.step_count(e, 0, self.ints::<1>(e, "a step count")?[0])?;
        let e = self.required("KSTEP_SAVE")?;
        let kstep_save = self.step_count(e, 0, self.ints::<1>(e, "a step count")?[0])?;
        let init_stat = if self.flag("INIT_STAT")? {
            InitialState::ReadFile
        } else {
            InitialState::Uniform
        };

        let ibc = match self.get("IBC") {
            Some(e) => self.ints::<1>(e, "a boundary-condition code")?[0],
            None => 0,
        };
        let bc_npara = match self.get("BC_NPARA") {
            Some(e) => self.int_list(e)?,
            None => Vec::new(),
        };
        let bc_rpara = match self.get("BC_RPARA") {
            Some(e) => self.real_list(e)?,
            None => Vec::new(),
        };
        let needed = match ibc {
            IBC_COMPRESSION_CORNER => Some((4, 8)),
            IBC_LIFTING_BODY => Some((5, 7)),
            _ => None,
        };
        if let Some((n_int, n_real)) = needed {
            for (key, have, need) in [
                ("BC_NPARA", bc_npara.len(), n_int),
                ("BC_RPARA", bc_rpara.len(), n_real),
            ] {
                if have < need {
                    let message = format!("IBC = {ibc} reads {need} values, found {have}");
                    return Err(match self.get(key) {
                        Some(e) => self.bad(e, message),
                        None => self.missing(key, &message),
                    });
                }
            }
        }

        let characteristic = self.flag("CHARTERIC")?;
        if characteristic && !inviscid.supports_characteristic() {
            let e = self.required("CHARTERIC")?;
            return Err(self.bad(
                e,
                format!(
                    "1 needs WENO7_SYMBO, WENO7_SYMBO_LIM or SCHEME_HYBRIDAUTO; {} has no \
                     characteristic form",
                    inviscid.name()
                ),
            ));
        }

        let filters = self.filters(grid)?;
        let analyses = self.analyses()?;

        Ok(Control {
            grid,
            blocks,
            halo_exchange,
            stream,
            test,
            periodic,
            jac_bound,
            dif_bound,
            non_reflection,
            inviscid,
            viscous,
            hybrid,
            re,
            ama,
            gamma,
            pr,
            t_ref,
            epsl_sw,
            dt,
            end_time,
            kstep_show,
            kstep_save,
            init_stat,
            ibc,
            bc_npara,
            bc_rpara,
            characteristic,
            filters,
            analyses,
        })
    }

    fn optional_flags<const N: usize>(&self, key: &str, what: &str) -> CfdResult<[bool; N]> {
        match self.get(key) {
            Some(e) => self.flags::<N>(e, what),
            None => Ok([false; N]),
        }
    }

    /// The `HY_*` keys: required with the hybrid scheme, optional otherwise.
    fn hybrid(
        &self,
        inviscid: InviscidSchemeName,
        grid: [usize; 3],
    ) -> CfdResult<Option<HybridSettings>> {
        let zones = self.numbered("HY_ZONE");
        let any = ["HY_DP_INTV", "HY_STYLE", "HY_SMOOTH_DP", "HY_PATCH_ZONE"]
            .iter()
            .any(|k| self.get(k).is_some())
            || !zones.is_empty();
        let hybrid_scheme = inviscid == InviscidSchemeName::HybridAuto;
        if !any && !hybrid_scheme {
            return Ok(None);
        }
        let why = if hybrid_scheme {
            "required by SCHEME_INVIS = SCHEME_HYBRIDAUTO"
        } else {
            "required once any HY_* key is given"
        };
        let need = |key: &str| self.get(key).ok_or_else(|| self.missing(key, why));

        let e = need("HY_DP_INTV")?;
        let thresholds = self.reals::<2>(e, "two indicator thresholds")?;
        self.ensure(e, thresholds[0] <= thresholds[1], || {
            format!(
                "thresholds must ascend, got {} then {}",
                thresholds[0], thresholds[1]
            )
        })?;
        let e = need("HY_STYLE")?;
        let indicator = match self.ints::<1>(e, "1 or 2")?[0] {
            1 => HybridIndicator::PressureGradient,
            2 => HybridIndicator::Jameson,
            v => return Err(self.bad(e, format!("must be 1 or 2, got {v}"))),
        };
        let smooth_indicator = self.flag("HY_SMOOTH_DP")?;
        let patch_zone_count = match self.get("HY_PATCH_ZONE") {
            None => 0,
            Some(e) => {
                let [v] = self.ints::<1>(e, "a zone count")?;
                self.ensure(e, (0..=MAX_PATCH_ZONES as i64).contains(&v), || {
                    format!("must be between 0 and {MAX_PATCH_ZONES}, got {v}")
                })?;
                v as usize
            }
        };
        let mut parsed = Vec::with_capacity(zones.len());
        for (index, e) in zones {
            let tokens = self.count(e, 7, "ib ie jb je kb ke indicator")?;
            let mut values = [0i64; 6];
            for (i, t) in tokens[..6].iter().enumerate() {
                values[i] = self.int(e, i, t)?;
            }
            let indicator = self.real(e, 6, &tokens[6])?;
            let (begin, end) = self.index_box(e, &values, 0, grid)?;
            parsed.push(HybridZone {
                index,
                begin,
                end,
                indicator,
            });
        }
        for n in 0..patch_zone_count {
            if !parsed.iter().any(|z| z.index == n) {
                let key = format!("HY_ZONE{n}");
                let why = format!(
                    "HY_PATCH_ZONE = {patch_zone_count} applies HY_ZONE0 to HY_ZONE{}",
                    patch_zone_count - 1
                );
                return Err(self.missing(&key, &why));
            }
        }
        Ok(Some(HybridSettings {
            thresholds,
            indicator,
            smooth_indicator,
            patch_zone_count,
            zones: parsed,
        }))
    }

    fn filters(&self, grid: [usize; 3]) -> CfdResult<Vec<FilterSpec>> {
        let npara = self.numbered("FILTER_NPARA");
        for (n, e) in self.numbered("FILTER_RPARA") {
            self.ensure(e, npara.iter().any(|(m, _)| *m == n), || {
                format!("no FILTER_NPARA{n} to go with it")
            })?;
        }
        let mut filters = Vec::with_capacity(npara.len());
        for (position, (index, e)) in npara.into_iter().enumerate() {
            self.ensure(e, position < MAX_FILTERS, || {
                format!("at most {MAX_FILTERS} filters")
            })?;
            let what = "every, X Y Z flags, ib ie jb je kb ke, scheme";
            let v: [i64; 11] = self.ints(e, what)?;
            let every_steps = self.step_count(e, 0, v[0])?;
            let mut directions = [false; 3];
            for d in 0..3 {
                let f = v[1 + d];
                self.ensure(e, f == 0 || f == 1, || {
                    format!("value {} must be 0 or 1, got {f}", d + 2)
                })?;
                directions[d] = f == 1;
            }
            let (begin, end) = self.index_box(e, &v[4..10], 4, grid)?;
            let scheme = match v[10] {
                1 => FilterScheme::NinePoint,
                2 => FilterScheme::ShockDetecting,
                s => return Err(self.bad(e, format!("value 11 (scheme) must be 1 or 2, got {s}"))),
            };
            let rkey = format!("FILTER_RPARA{index}");
            let r = self
                .get(&rkey)
                .ok_or_else(|| self.missing(&rkey, &format!("FILTER_NPARA{index} is given")))?;
            let [strength, sensor_threshold, until_time] =
                self.reals::<3>(r, "s0, shock threshold, end time")?;
            self.ensure(r, strength > 0.0 && strength <= 1.0, || {
                format!("value 1 (s0) must be in (0, 1], got {strength}")
            })?;
            self.ensure(r, sensor_threshold >= 0.0, || {
                format!("value 2 (threshold) must be ≥ 0, got {sensor_threshold}")
            })?;
            filters.push(FilterSpec {
                index,
                every_steps,
                directions,
                begin,
                end,
                scheme,
                strength,
                sensor_threshold,
                until_time,
            });
        }
        Ok(filters)
    }

    fn analyses(&self) -> CfdResult<Vec<AnalysisEvent>> {
        let events = self.numbered("ANA_EVENT");
        for prefix in ["ANA_NPARA", "ANA_RPARA"] {
            for (n, e) in self.numbered(prefix) {
                self.ensure(e, events.iter().any(|(m, _)| *m == n), || {
                    format!("no ANA_EVENT{n} to go with it")
                })?;
            }
        }
        let mut out = Vec::with_capacity(events.len());
        for (position, (index, e)) in events.into_iter().enumerate() {
            self.ensure(e, position < MAX_ANALYSIS_EVENTS, || {
                format!("at most {MAX_ANALYSIS_EVENTS} analysis events")
            })?;
            let [code, every] = self.ints::<2>(e, "kind, every so many steps")?;
            let kind = AnalysisKind::from_code(code).ok_or_else(|| {
                self.bad(e, format!("value 1 (kind) must be 100 to 107, got {code}"))
            })?;
            let every_steps = self.step_count(e, 1, every)?;
            let nkey = format!("ANA_NPARA{index}");
            let npara = match self.get(&nkey) {
                Some(n) => self.int_list(n)?,
                None => Vec::new(),
            };
            let rpara = match self.get(&format!("ANA_RPARA{index}")) {
                Some(r) => self.real_list(r)?,
                None => Vec::new(),
            };
            if kind.saves_planes() {
                let shape = "plane count, band width, then one first index per plane";
                let n = self
                    .get(&nkey)
                    .ok_or_else(|| self.missing(&nkey, &format!("kind {code} reads {shape}")))?;
                let ok = npara.len() >= 2
                    && npara[0] >= 0
                    && npara[1] >= 1
                    && npara[2..].iter().all(|&j| j >= 0)
                    && npara.len() as i64 - 2 >= npara[0];
                self.ensure(n, ok, || format!("kind {code} reads {shape}"))?;
            }
            out.push(AnalysisEvent {
                index,
                kind,
                every_steps,
                npara,
                rpara,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ramp case with the keys of the official compression-ramp example, written
    /// afresh; ends with a stray data row without `=`, as the official file does.
    const RAMP: &str = "\
# Supersonic flow over a compression ramp
GRID_3D     = 25 240 20
PARALLEL_3D = 1 1 1
STREAM      = 0
CHARTERIC   = 0
TEST        = 0

IPERIODIC     = 0 0 1          # spanwise periodic
JAC_BOUND     = 1 1 1
DIF_BOUND     = 0 1 0 1 0 0
NON_REFLETION = 0 1 0 1 0 0

SCHEME_INVIS = WENO7_SYMBO
#SCHEME_INVIS = SCHEME_HYBRIDAUTO
SCHEME_VIS   = CD8
HY_DP_INTV    = 0.01 0.2
HY_SMOOTH_DP  = 0
HY_STYLE      = 2
HY_PATCH_ZONE = 0
HY_ZONE0      = 10 25 100 240 5 20 20.0

RE      = 5581.4
AMA     = 2.9
GAMMA   = 1.40
PR      = 0.70
T_REF   = 108.1
EPSL_SW = 0.0

DT         = 0.01
END_TIME   = 10
KSTEP_SHOW = 1
KSTEP_SAVE = 1000
INIT_STAT  = 1

IBC = 108
# zones in z, table size, inlet kind, wall-not-normal flag
BC_NPARA = 10 5 1 0
# wall T, amplitude, disturbance x range, beta, wall start, upper start, span
BC_RPARA = 2.84 0.2 -320. -300 0.1 -400. -50. 14.

#FILTER_NPARA0 = 100 1 1 1 0 25 0 240 0 20 2
#ANA_EVENT0 = 101 1
  124  3  6  1  0  1  0.  3.797  0.02  0.  50.  60.
";

    fn parse(text: &str) -> CfdResult<Control> {
        Control::parse(text, "case.in")
    }

    /// The (line, key, message) of a control error; panics on success.
    fn fail(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(CfdError::Control {
                file,
                line,
                key,
                message,
            }) => {
                assert_eq!(file, "case.in");
                (line, key, message)
            }
            Err(other) => panic!("unexpected error kind: {other}"),
            Ok(c) => panic!("parsed but should not: {c:?}"),
        }
    }

    /// `RAMP` with the line starting with `key ` (or `key=`) replaced by `new`
    /// (removed when `new` is empty).
    fn edit(key: &str, new: &str) -> String {
        let mut found = false;
        let mut out = String::new();
        for l in RAMP.lines() {
            let name = l.split('=').next().unwrap_or("").trim();
            if name == key && l.contains('=') && !l.starts_with('#') {
                found = true;
                if !new.is_empty() {
                    out.push_str(new);
                    out.push('\n');
                }
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
        assert!(found, "no line for {key}");
        out
    }

    fn line_of(text: &str, key: &str) -> usize {
        text.lines()
            .position(|l| l.split('=').next().unwrap().trim() == key && !l.starts_with('#'))
            .map(|i| i + 1)
            .unwrap()
    }

    #[test]
    fn ramp_parses_with_the_right_values() {
        let c = parse(RAMP).unwrap();
        assert_eq!(c.grid, [25, 240, 20]);
        assert_eq!(c.blocks, [1, 1, 1]);
        assert_eq!(c.halo_exchange, HaloExchange::Standard);
        assert_eq!(c.stream, StreamMode::Sequential);
        assert!(!c.test && !c.characteristic);
        assert_eq!(c.periodic, [false, false, true]);
        assert_eq!(c.jac_bound, [true; 3]);
        assert_eq!(c.dif_bound, [false, true, false, true, false, false]);
        assert_eq!(c.non_reflection, [false, true, false, true, false, false]);
        assert_eq!(c.inviscid, InviscidSchemeName::Weno7Symbo);
        assert_eq!(c.viscous, CentralDifference::Cd8);
        assert_eq!(c.re, 5581.4);
        assert_eq!(c.ama, 2.9);
        assert_eq!(c.gamma, 1.4);
        assert_eq!(c.pr, 0.7);
        assert_eq!(c.t_ref, 108.1);
        assert_eq!(c.epsl_sw, 0.0);
        assert_eq!(c.dt, 0.01);
        assert_eq!(c.end_time, 10.0);
        assert_eq!((c.kstep_show, c.kstep_save), (1, 1000));
        assert_eq!(c.init_stat, InitialState::ReadFile);
        assert_eq!(c.ibc, IBC_COMPRESSION_CORNER);
        assert_eq!(c.bc_npara, vec![10, 5, 1, 0]);
        assert_eq!(
            c.bc_rpara,
            vec![2.84, 0.2, -320.0, -300.0, 0.1, -400.0, -50.0, 14.0]
        );
        assert!(c.filters.is_empty() && c.analyses.is_empty());
        // HY_* keys are kept but not active with WENO7_SYMBO.
        let h = c.hybrid.as_ref().unwrap();
        assert_eq!(h.thresholds, [0.01, 0.2]);
        assert_eq!(h.indicator, HybridIndicator::Jameson);
        assert_eq!(h.patch_zone_count, 0);
        assert_eq!(h.zones.len(), 1);
        assert_eq!(h.active_zones().count(), 0);
        assert!(c.active_hybrid().is_none());
    }

    #[test]
    fn hybrid_keys_parse() {
        let text = edit("SCHEME_INVIS", "SCHEME_INVIS = SCHEME_HYBRIDAUTO")
            .replace("HY_PATCH_ZONE = 0", "HY_PATCH_ZONE = 1")
            .replace("HY_STYLE      = 2", "HY_STYLE = 1")
            .replace("HY_SMOOTH_DP  = 0", "HY_SMOOTH_DP = 1")
            .replace("CHARTERIC   = 0", "CHARTERIC = 1")
            + "HY_ZONE3 = 0 1 0 2 0 3 -1.5\n";
        let c = parse(&text).unwrap();
        assert_eq!(c.inviscid, InviscidSchemeName::HybridAuto);
        assert!(c.characteristic);
        let h = c.active_hybrid().unwrap();
        assert_eq!(h.indicator, HybridIndicator::PressureGradient);
        assert!(h.smooth_indicator);
        assert_eq!(h.patch_zone_count, 1);
        assert_eq!(
            h.zones,
            vec![
                HybridZone {
                    index: 0,
                    begin: [10, 100, 5],
                    end: [25, 240, 20],
                    indicator: 20.0
                },
                HybridZone {
                    index: 3,
                    begin: [0, 0, 0],
                    end: [1, 2, 3],
                    indicator: -1.5
                },
            ]
        );
        let active: Vec<usize> = h.active_zones().map(|z| z.index).collect();
        assert_eq!(active, vec![0]);
        assert_eq!(parse(&c.to_text()).unwrap(), c);
    }

    #[test]
    fn hybrid_requirements() {
        let hybrid = edit("SCHEME_INVIS", "SCHEME_INVIS = SCHEME_HYBRIDAUTO");
        // Required keys of the hybrid scheme.
        let text = hybrid.replace("HY_STYLE      = 2", "");
        let (line, key, msg) = fail(&text);
        assert_eq!((line, key.as_str()), (0, "HY_STYLE"));
        assert!(
            msg.contains("missing") && msg.contains("SCHEME_HYBRIDAUTO"),
            "{msg}"
        );
        // Style out of range.
        let text = hybrid.replace("HY_STYLE      = 2", "HY_STYLE = 3");
        let (line, key, _) = fail(&text);
        assert_eq!(
            (line, key.as_str()),
            (line_of(&text, "HY_STYLE"), "HY_STYLE")
        );
        // A patch count that needs a zone nobody gave.
        let text = hybrid.replace("HY_PATCH_ZONE = 0", "HY_PATCH_ZONE = 2");
        let (line, key, msg) = fail(&text);
        assert_eq!((line, key.as_str()), (0, "HY_ZONE1"));
        assert!(msg.contains("missing"), "{msg}");
        // A zone outside the grid.
        let text = hybrid.replace("10 25 100 240", "10 26 100 240");
        let (line, key, msg) = fail(&text);
        assert_eq!(
            (line, key.as_str()),
            (line_of(&text, "HY_ZONE0"), "HY_ZONE0")
        );
        assert!(msg.contains("x range"), "{msg}");
        // Descending thresholds, wrong count.
        for bad in ["HY_DP_INTV = 0.3 0.2", "HY_DP_INTV = 0.3"] {
            let text = hybrid.replace("HY_DP_INTV    = 0.01 0.2", bad);
            let (line, key, _) = fail(&text);
            assert_eq!(
                (line, key.as_str()),
                (line_of(&text, "HY_DP_INTV"), "HY_DP_INTV")
            );
        }
        // The hybrid scheme without any HY_* key.
        let mut text = hybrid.clone();
        for k in [
            "HY_DP_INTV",
            "HY_SMOOTH_DP",
            "HY_STYLE",
            "HY_PATCH_ZONE",
            "HY_ZONE0",
        ] {
            text = text
                .lines()
                .filter(|l| !l.starts_with(k))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        let (line, key, _) = fail(&text);
        assert_eq!((line, key.as_str()), (0, "HY_DP_INTV"));
        // Without the hybrid scheme and without HY_* keys there are no settings.
        let plain = text.replace("SCHEME_INVIS = SCHEME_HYBRIDAUTO", "SCHEME_INVIS = UP7");
        assert_eq!(parse(&plain).unwrap().hybrid, None);
    }

    #[test]
    fn round_trip_through_text_and_json() {
        let text = RAMP.to_string()
            + "FILTER_NPARA4 = 100 1 0 1 0 25 3 240 0 20 2\n\
               FILTER_RPARA4 = 1.0 1.e-5 1000000\n\
               FILTER_NPARA1 = 7 0 1 0 6 19 0 240 0 20 1\n\
               FILTER_RPARA1 = 0.5 0 12.5\n\
               ANA_EVENT0 = 101 1\n\
               ANA_EVENT1 = 105 10\n\
               ANA_NPARA1 = 2 5 10 15\n\
               ANA_RPARA1 = 0.125 3e-7\n\
               MSG_BLOCK_SIZE = -2\n\
               LAP = 4\n";
        let c = parse(&text).unwrap();
        assert_eq!(c.halo_exchange, HaloExchange::DerivedType);
        assert_eq!(c.filters.len(), 2);
        assert_eq!(c.filters[0].index, 4, "file order, not number order");
        assert_eq!(c.filters[0].every_steps, 100);
        assert_eq!(c.filters[0].directions, [true, false, true]);
        assert_eq!(c.filters[0].begin, [0, 3, 0]);
        assert_eq!(c.filters[0].end, [25, 240, 20]);
        assert_eq!(c.filters[0].scheme, FilterScheme::ShockDetecting);
        assert_eq!(c.filters[0].sensor_threshold, 1e-5);
        assert_eq!(c.filters[0].until_time, 1e6);
        assert_eq!(c.filters[1].scheme, FilterScheme::NinePoint);
        assert_eq!(c.analyses.len(), 2);
        assert_eq!(c.analyses[0].kind, AnalysisKind::TimeAverage);
        assert!(c.analyses[0].npara.is_empty());
        assert_eq!(c.analyses[1].kind, AnalysisKind::SavePlanesYz);
        assert_eq!(c.analyses[1].every_steps, 10);
        assert_eq!(c.analyses[1].npara, vec![2, 5, 10, 15]);
        assert_eq!(c.analyses[1].rpara, vec![0.125, 3e-7]);

        let written = c.to_text();
        let again = Control::parse(&written, "written.in").unwrap();
        assert_eq!(again, c, "{written}");
        assert_eq!(again.to_text(), written);

        let json = serde_json::to_string(&c).unwrap();
        let back: Control = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);

        // Awkward reals survive the text form bit for bit.
        let mut odd = c.clone();
        odd.dt = 0.1 + 0.2;
        odd.re = 1.0e-300;
        odd.bc_rpara = vec![
            f64::MIN_POSITIVE,
            -1.0 / 3.0,
            6.02e23,
            1e-7,
            0.0,
            -0.0,
            1e21,
            7.0,
        ];
        assert_eq!(parse(&odd.to_text()).unwrap(), odd);
    }

    #[test]
    fn optional_keys_take_official_defaults() {
        let text = "GRID_3D = 8 8 1\nPARALLEL_3D = 1 1 1\nSCHEME_INVIS = UP7\n\
                    SCHEME_VIS = CD6\nRE = 100\nAMA = 0.5\nGAMMA = 1.4\nPR = 0.72\n\
                    DT = 1e-3\nEND_TIME = 0\nKSTEP_SHOW = 10\nKSTEP_SAVE = 100\n";
        let c = parse(text).unwrap();
        assert_eq!(c.t_ref, DEFAULT_T_REF);
        assert_eq!(c.epsl_sw, 0.0);
        assert_eq!(c.halo_exchange, HaloExchange::Standard);
        assert_eq!(c.stream, StreamMode::Sequential);
        assert_eq!(c.periodic, [false; 3]);
        assert_eq!(c.dif_bound, [false; 6]);
        assert_eq!(c.init_stat, InitialState::Uniform);
        assert_eq!(c.ibc, 0);
        assert!(c.bc_npara.is_empty() && c.bc_rpara.is_empty());
        assert!(c.hybrid.is_none() && c.filters.is_empty() && c.analyses.is_empty());
        // A non-positive T_REF means the default, as officially.
        let c = parse(&format!("{text}T_REF = -1\n")).unwrap();
        assert_eq!(c.t_ref, DEFAULT_T_REF);
        // CRLF line ends and an empty list value.
        let crlf = format!("{text}BC_NPARA =\n").replace('\n', "\r\n");
        let c = parse(&crlf).unwrap();
        assert_eq!(c.grid, [8, 8, 1]);
        assert!(c.bc_npara.is_empty());
    }

    #[test]
    fn missing_required_keys_are_named_on_line_zero() {
        for key in [
            "GRID_3D",
            "PARALLEL_3D",
            "SCHEME_INVIS",
            "SCHEME_VIS",
            "RE",
            "AMA",
            "GAMMA",
            "PR",
            "DT",
            "END_TIME",
            "KSTEP_SHOW",
            "KSTEP_SAVE",
        ] {
            let (line, k, msg) = fail(&edit(key, ""));
            assert_eq!((line, k.as_str()), (0, key));
            assert!(msg.contains("missing"), "{key}: {msg}");
        }
    }

    #[test]
    fn out_of_range_values_name_key_and_line() {
        let cases = [
            ("GRID_3D", "GRID_3D = 25 0 20"),
            ("PARALLEL_3D", "PARALLEL_3D = 1 -1 1"),
            ("GAMMA", "GAMMA = 1.0"),
            ("GAMMA", "GAMMA = 0.9"),
            ("RE", "RE = 0"),
            ("RE", "RE = -5"),
            ("AMA", "AMA = 0"),
            ("PR", "PR = -0.7"),
            ("DT", "DT = 0"),
            ("END_TIME", "END_TIME = -1"),
            ("EPSL_SW", "EPSL_SW = -0.1"),
            ("KSTEP_SHOW", "KSTEP_SHOW = 0"),
            ("KSTEP_SAVE", "KSTEP_SAVE = -3"),
            ("STREAM", "STREAM = 2"),
            ("TEST", "TEST = -1"),
            ("CHARTERIC", "CHARTERIC = 5"),
            ("INIT_STAT", "INIT_STAT = 2"),
            ("IPERIODIC", "IPERIODIC = 0 0 2"),
            ("DIF_BOUND", "DIF_BOUND = 0 1 0 1 0 3"),
            ("NON_REFLETION", "NON_REFLETION = 1 1 1 1 1 -1"),
            ("JAC_BOUND", "JAC_BOUND = 1 1 9"),
            ("SCHEME_INVIS", "SCHEME_INVIS = WENO9"),
            ("SCHEME_VIS", "SCHEME_VIS = cd8"),
        ];
        for (key, new) in cases {
            let text = edit(key, new);
            let (line, k, msg) = fail(&text);
            assert_eq!(
                (line, k.as_str()),
                (line_of(&text, key), key),
                "{new}: {msg}"
            );
        }
        let text = RAMP.to_string() + "MSG_BLOCK_SIZE = 3\n";
        let (line, key, _) = fail(&text);
        assert_eq!(
            (line, key.as_str()),
            (line_of(&text, "MSG_BLOCK_SIZE"), "MSG_BLOCK_SIZE")
        );
        let (_, _, msg) = fail(&edit("SCHEME_INVIS", "SCHEME_INVIS = WENO9"));
        assert!(
            msg.contains("WENO7_SYMBO_LIM"),
            "lists accepted names: {msg}"
        );
    }

    #[test]
    fn malformed_values_name_key_and_line() {
        let cases = [
            ("GRID_3D", "GRID_3D = 25 240", "expected 3 values"),
            ("GRID_3D", "GRID_3D = 25 240 20 4", "expected 3 values"),
            ("GRID_3D", "GRID_3D = 25 2.5e2 20", "not an integer"),
            ("RE", "RE = fast", "not a finite number"),
            ("RE", "RE = inf", "not a finite number"),
            ("RE", "RE = 5581.4 1", "expected 1 value"),
            ("DT", "DT =", "expected 1 value"),
            ("BC_RPARA", "BC_RPARA = 2.84 0.2 x", "value 3"),
            ("SCHEME_VIS", "SCHEME_VIS = CD8 CD6", "expected 1 value"),
        ];
        for (key, new, expected) in cases {
            let text = edit(key, new);
            let (line, k, msg) = fail(&text);
            assert_eq!((line, k.as_str()), (line_of(&text, key), key), "{new}");
            assert!(msg.contains(expected), "{new}: {msg}");
        }
    }

    #[test]
    fn unknown_duplicate_and_malformed_lines() {
        // Unknown key with a suggestion.
        let text = RAMP.replace("AMA     = 2.9", "AMAA = 2.9");
        let (line, key, msg) = fail(&text);
        assert_eq!((line, key.as_str()), (line_of(&text, "AMAA"), "AMAA"));
        assert!(msg.contains("unknown") && msg.contains("`AMA`"), "{msg}");
        let text = RAMP.to_string() + "filter_npara2 = 1\n";
        let (_, key, msg) = fail(&text);
        assert_eq!(key, "filter_npara2");
        assert!(msg.contains("FILTER_NPARA2"), "{msg}");
        // Numbered keys need a plain number.
        for bad in ["FILTER_NPARA = 1", "ANA_EVENT01 = 101 1", "HY_ZONEx = 1"] {
            let text = RAMP.to_string() + bad + "\n";
            let (line, _, msg) = fail(&text);
            assert_eq!(line, text.lines().count(), "{bad}");
            assert!(msg.contains("decimal number"), "{bad}: {msg}");
        }
        // Duplicates.
        let text = RAMP.to_string() + "DT = 0.02\n";
        let (line, key, msg) = fail(&text);
        assert_eq!((line, key.as_str()), (text.lines().count(), "DT"));
        assert!(
            msg.contains(&format!("line {}", line_of(RAMP, "DT"))),
            "{msg}"
        );
        // A key line that lost its `=`; a data row is fine.
        let text = edit("DT", "DT 0.01");
        let (line, key, _) = fail(&text);
        assert_eq!((line, key.as_str()), (line_of(RAMP, "DT"), "DT"));
        let text = RAMP.to_string() + "= 3\n";
        let (_, key, msg) = fail(&text);
        assert_eq!(key, "");
        assert!(msg.contains("no key"), "{msg}");
    }

    #[test]
    fn cross_key_checks() {
        // Characteristic reconstruction with a scheme that has none.
        let text = edit("SCHEME_INVIS", "SCHEME_INVIS = WENO5")
            .replace("CHARTERIC   = 0", "CHARTERIC = 1");
        let (line, key, msg) = fail(&text);
        assert_eq!(
            (line, key.as_str()),
            (line_of(&text, "CHARTERIC"), "CHARTERIC")
        );
        assert!(msg.contains("WENO5"), "{msg}");
        // IBC 108 reads four integers and eight reals.
        let text = edit("BC_NPARA", "BC_NPARA = 10 5 1");
        let (line, key, msg) = fail(&text);
        assert_eq!(
            (line, key.as_str()),
            (line_of(&text, "BC_NPARA"), "BC_NPARA")
        );
        assert!(msg.contains("108"), "{msg}");
        let (line, key, _) = fail(&edit("BC_RPARA", ""));
        assert_eq!((line, key.as_str()), (0, "BC_RPARA"));
        // With no user boundary, the lists are free.
        let c =
            parse(&edit("IBC", "IBC = 0").replace("BC_NPARA = 10 5 1 0", "BC_NPARA = 1")).unwrap();
        assert_eq!(c.bc_npara, vec![1]);
        // Too many values.
        let long = vec!["1"; MAX_PARA_VALUES + 1].join(" ");
        let text = edit("BC_NPARA", &format!("BC_NPARA = {long}"));
        let (_, key, msg) = fail(&text);
        assert_eq!(key, "BC_NPARA");
        assert!(msg.contains("at most 100"), "{msg}");
    }

    #[test]
    fn filter_and_analysis_errors() {
        let good_filter =
            "FILTER_NPARA0 = 100 1 1 1 0 25 0 240 0 20 2\nFILTER_RPARA0 = 1.0 1e-5 1e6\n";
        assert_eq!(
            parse(&(RAMP.to_string() + good_filter))
                .unwrap()
                .filters
                .len(),
            1
        );
        let cases = [
            (
                "FILTER_NPARA0 = 100 1 1 1 0 25 0 240 0 20 2\n",
                "FILTER_RPARA0",
                true,
            ),
            ("FILTER_RPARA3 = 1 0 1\n", "FILTER_RPARA3", false),
            (
                "FILTER_NPARA0 = 0 1 1 1 0 25 0 240 0 20 2\nFILTER_RPARA0 = 1 0 1\n",
                "FILTER_NPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 2 1 0 25 0 240 0 20 2\nFILTER_RPARA0 = 1 0 1\n",
                "FILTER_NPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 1 1 0 25 0 241 0 20 2\nFILTER_RPARA0 = 1 0 1\n",
                "FILTER_NPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 1 1 9 8 0 240 0 20 2\nFILTER_RPARA0 = 1 0 1\n",
                "FILTER_NPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 1 1 0 25 0 240 0 20 3\nFILTER_RPARA0 = 1 0 1\n",
                "FILTER_NPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 1 1 0 25 0 240 0 20\nFILTER_RPARA0 = 1 0 1\n",
                "FILTER_NPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 1 1 0 25 0 240 0 20 2\nFILTER_RPARA0 = 1.5 0 1\n",
                "FILTER_RPARA0",
                false,
            ),
            (
                "FILTER_NPARA0 = 5 1 1 1 0 25 0 240 0 20 2\nFILTER_RPARA0 = 1 -1 1\n",
                "FILTER_RPARA0",
                false,
            ),
            ("ANA_EVENT0 = 99 1\n", "ANA_EVENT0", false),
            ("ANA_EVENT0 = 101 0\n", "ANA_EVENT0", false),
            ("ANA_EVENT0 = 101\n", "ANA_EVENT0", false),
            ("ANA_NPARA2 = 1\n", "ANA_NPARA2", false),
            ("ANA_RPARA2 = 1\n", "ANA_RPARA2", false),
            ("ANA_EVENT0 = 104 5\n", "ANA_NPARA0", true),
            (
                "ANA_EVENT0 = 104 5\nANA_NPARA0 = 3 1 4 8\n",
                "ANA_NPARA0",
                false,
            ),
            (
                "ANA_EVENT0 = 106 5\nANA_NPARA0 = 1 0 4\n",
                "ANA_NPARA0",
                false,
            ),
        ];
        for (extra, key, missing) in cases {
            let text = RAMP.to_string() + extra;
            let (line, k, msg) = fail(&text);
            assert_eq!(k, key, "{extra}: {msg}");
            if missing {
                assert_eq!(line, 0, "{extra}");
                assert!(msg.contains("missing"), "{extra}: {msg}");
            } else {
                assert_eq!(line, line_of(&text, key), "{extra}: {msg}");
            }
        }
        // Limits on the number of filters and analyses.
        let mut text = RAMP.to_string();
        for n in 0..=MAX_FILTERS {
            text +=
                &format!("FILTER_NPARA{n} = 1 1 0 0 0 25 0 240 0 20 2\nFILTER_RPARA{n} = 1 0 1\n");
        }
        let (line, key, _) = fail(&text);
        let last = format!("FILTER_NPARA{MAX_FILTERS}");
        assert_eq!((line, key.as_str()), (line_of(&text, &last), last.as_str()));
        let mut text = RAMP.to_string();
        for n in 0..=MAX_ANALYSIS_EVENTS {
            text += &format!("ANA_EVENT{n} = 100 1\n");
        }
        let (_, key, _) = fail(&text);
        assert_eq!(key, format!("ANA_EVENT{MAX_ANALYSIS_EVENTS}"));
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in InviscidSchemeName::ALL {
            assert_eq!(s.name().parse::<InviscidSchemeName>().unwrap(), s);
            assert_eq!(s.to_string(), s.name());
        }
        for s in CentralDifference::ALL {
            assert_eq!(s.name().parse::<CentralDifference>().unwrap(), s);
        }
        assert_eq!(InviscidSchemeName::Up7.official_id(), 301);
        assert_eq!(InviscidSchemeName::Weno7Symbo.official_id(), 304);
        assert_eq!(InviscidSchemeName::HybridAuto.official_id(), 310);
        assert_eq!(CentralDifference::Cd8.official_id(), 204);
        assert!("weno5".parse::<InviscidSchemeName>().is_err());
        assert!("CD4".parse::<CentralDifference>().is_err());
        for k in AnalysisKind::ALL {
            assert_eq!(AnalysisKind::from_code(k.code()), Some(k));
        }
        assert_eq!(AnalysisKind::SavePlanesXz.code(), 106);
    }

    #[test]
    fn from_file_reads_and_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opencfd-scu.in");
        std::fs::write(&path, RAMP).unwrap();
        assert_eq!(Control::from_file(&path).unwrap(), parse(RAMP).unwrap());
        std::fs::write(&path, RAMP.replace("RE      = 5581.4", "RE = 0")).unwrap();
        match Control::from_file(&path) {
            Err(CfdError::Control { file, key, .. }) => {
                assert_eq!(file, path.display().to_string());
                assert_eq!(key, "RE");
            }
            other => panic!("{other:?}"),
        }
        let absent = dir.path().join("absent.in");
        assert!(matches!(
            Control::from_file(&absent),
            Err(CfdError::ReadControl { .. })
        ));
    }
}
