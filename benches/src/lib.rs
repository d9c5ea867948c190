//! Benchmarks of breakerbox beside the baselines they must match and the peers users would pick
//! instead. See BENCHMARKS.md at the repository root for the table, the targets and the
//! command.
//!
//! - [`driver`]: the one way every closed- and open-path case is driven;
//! - [`proxy`]: the physical-limit model (one state load, one shared counter per call);
//! - [`peers`]: failsafe, recloser and tower-resilience behind the same driver;
//! - [`cases`]: every case of the closed/open suite, as a clonable call;
//! - [`suite`]: the criterion groups shared by the `breakers` and `breakers_prometheus` benches;
//! - [`retry`]: fixtures of the retry pass-through bench and its instruction-count twin,
//!   `retry_instructions` (instruction counts under `valgrind --tool=callgrind` do not depend on
//!   how busy the machine is);
//! - [`storm`]: the retry-storm scenario bench (`--bench storm`): every client stack against a
//!   scripted upstream in real time on loopback.

pub mod cases;
pub mod driver;
pub mod peers;
pub mod proxy;
pub mod retry;
pub mod storm;
pub mod suite;

pub use retry::{NeverRetry, Request, Response, Upstream, call, request};
