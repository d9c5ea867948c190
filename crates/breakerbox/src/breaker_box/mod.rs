//! The breaker box: one panel, one circuit breaker per upstream.
//!
//! A [`BreakerBox`] hands out a breaker per request [`Target`], creating it on first use:
//!
//! - a request matching a rule ([`BreakerRule`]: an exact host or `*.suffix`, optionally a path
//!   prefix) gets that rule's named breaker, with the rule's config. Rules are tried in order;
//!   the first match wins. All requests matching one rule share its breaker.
//! - any other request gets a breaker of its own per scheme + host + port, built from the
//!   defaults and named after the host (`api.example.com`, or `api.example.com:8443` on a port
//!   that is not the scheme's default).
//!
//! # The cap
//!
//! A scraper that follows links to millions of hosts must not grow memory or metric labels
//! without bound. The box creates at most [`BoxConfig::max_breakers`] per-target breakers;
//! rule breakers do not count (the config fixes their number). Past the cap, a new target gets
//! the one shared breaker named `overflow`, whose behaviour [`Overflow`] chooses: by default it
//! is MetricsOnly, so such calls pass and are counted but unprotected, and one failing host
//! cannot block the others. Its first use logs a warning. The box also stops remembering new
//! hosts past the cap (their routes are resolved from the rules on each call, without
//! allocating), so its memory is bounded too.
//!
//! # Cost
//!
//! Finding the breaker of a known host is one lock-free hash lookup and a scan of that host's
//! path rules; creating breakers takes a lock.
//!
//! ```
//! use breakerbox::{BoxConfig, BreakerBox, Target};
//!
//! let panel = BreakerBox::new(BoxConfig::default());
//! let a = panel.breaker(&Target::new("https", "api.example.com", 443, "/v1/items"));
//! let b = panel.breaker(&Target::new("https", "api.example.com", 443, "/v1/users"));
//! let c = panel.breaker(&Target::new("https", "cdn.example.com", 443, "/a.png"));
//! assert!(a.ptr_eq(&b));
//! assert!(!a.ptr_eq(&c));
//! assert_eq!(a.name(), "api.example.com");
//! # Ok::<(), breakerbox::InvalidConfig>(())
//! ```

mod report;

pub use report::{BoxSnapshot, Health, HealthStatus};

use crate::circuit_breaker::{
    BreakerName, CircuitBreaker, CircuitOpen, FleetGuard, Listener, OwnedPermit, TransitionEvent,
};
use crate::clock::{MonotonicClock, SharedClock};
use crate::config::{BoxConfig, BreakerConfig, BreakerRule, OVERFLOW_BREAKER, Overflow};
use crate::retry::RetryConfig;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Where a request goes: the parts of its URL that pick its breaker. Borrowed, so building one
/// per request costs nothing.
///
/// A box compares hosts as DNS does: `API.Spotify.com`, `api.spotify.com.` (fully qualified,
/// with its trailing dot) and `api.spotify.com` are one host, with one breaker and the same
/// rules; and the port is the effective one, so `https://h/` and `https://h:443/` are one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
    path: &'a str,
}

impl<'a> Target<'a> {
    /// A target from its URL parts; `port` is the effective port (443 for a plain `https` URL).
    pub fn new(scheme: &'a str, host: &'a str, port: u16, path: &'a str) -> Self {
        Self {
            scheme,
            host,
            port,
            path,
        }
    }

    /// The URL scheme.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }
    /// The host.
    pub fn host(&self) -> &'a str {
        self.host
    }
    /// The effective port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The path.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The name of this target's own breaker: the host, with the port when it is not the
    /// scheme's default.
    fn breaker_name(&self) -> String {
        let default_port = match self.scheme {
            s if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => 443,
            s if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => 80,
            _ => 0,
        };
        let host = self.host.to_ascii_lowercase();
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Many circuit breakers, one per target: see the [module docs](self). A cheap handle; clones
/// share the box.
///
/// ```
/// use breakerbox::{BoxConfig, BreakerBox, Outcome, Target};
/// use breakerbox::clock::ManualClock;
/// use std::{sync::Arc, time::Duration};
///
/// let clock = ManualClock::new();
/// let panel = BreakerBox::builder(BoxConfig::from_toml(r#"
///     [defaults]
///     consecutive_failures = 5
///
///     [[breakers]]
///     name = "musicbrainz"
///     match = { host = "musicbrainz.org" }
///     consecutive_failures = 3
/// "#)?).clock(Arc::new(clock.clone())).build();
/// let musicbrainz = Target::new("https", "musicbrainz.org", 443, "/ws/2/recording");
/// for _ in 0..3 {
///     let permit = panel.try_acquire(&musicbrainz)?;
///     clock.advance(Duration::from_secs(1)); // MusicBrainz, at one request a second
///     permit.record(Outcome::Failure);
/// }
/// let open = panel.try_acquire(&musicbrainz).unwrap_err();
/// assert_eq!(open.breaker(), "musicbrainz");
/// // Every other host has a breaker of its own, from the defaults.
/// let espn = Target::new("https", "site.api.espn.com", 443, "/apis/v2/scoreboard");
/// assert!(panel.try_acquire(&espn).is_ok());
/// assert_eq!(panel.health().failing, ["musicbrainz"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BreakerBox {
    inner: Arc<BoxInner>,
}

struct BoxInner {
    config: BoxConfig,
    /// `config.defaults`, shared by every per-target breaker (and the overflow one).
    defaults: Arc<BreakerConfig>,
    /// The retry policy of the per-target breakers' requests: `[retry]`, or the default.
    default_retry: Option<Arc<RetryConfig>>,
    /// The fleet guard, when `max_open_fraction` is set.
    guard: Option<Arc<FleetGuard>>,
    rules: Vec<RuleSlot>,
    /// Known hosts (lowercase) and how their requests are routed.
    /// Hashed with foldhash (randomly seeded): SipHash cost more than the rest of a lookup, and
    /// the map's size is capped by `max_breakers`, which bounds what colliding keys could do.
    hosts: papaya::HashMap<Box<str>, Arc<HostRoutes>, foldhash::fast::RandomState>,
    clock: SharedClock,
    listeners: Vec<Listener>,
    call_duration_histogram: bool,
    /// Creation of breakers and host entries; never taken for a known target.
    registry: Mutex<Registry>,
    overflow: OnceLock<CircuitBreaker>,
    overflow_warned: AtomicBool,
    /// Set once the box remembers `max_breakers` hosts or holds that many per-target breakers:
    /// from then on unknown hosts are resolved without the lock.
    full: AtomicBool,
}

struct RuleSlot {
    rule: BreakerRule,
    config: Arc<BreakerConfig>,
    retry: Option<Arc<RetryConfig>>,
    breaker: OnceLock<CircuitBreaker>,
}

/// Every breaker created, in creation order, for snapshots.
#[derive(Default)]
struct Registry {
    per_target: usize,
    breakers: Vec<CircuitBreaker>,
}

/// How requests to one host are routed.
struct HostRoutes {
    /// The rules that can match this host, in order, ending at the first one without a path
    /// prefix (no rule after it can match).
    rules: Vec<usize>,
    /// This host's own breakers, per scheme and port, when no rule takes every path.
    targets: Vec<(Box<str>, u16, CircuitBreaker)>,
}

impl BreakerBox {
    /// A box with the OS monotonic clock and no listeners.
    pub fn new(config: BoxConfig) -> Self {
        Self::builder(config).build()
    }

    /// A builder, to set the clock and listeners shared by every breaker of the box.
    pub fn builder(config: BoxConfig) -> BoxBuilder {
        BoxBuilder {
            config,
            clock: None,
            listeners: Vec::new(),
            call_duration_histogram: false,
        }
    }

    /// The breaker guarding `target`, created on first use.
    pub fn breaker(&self, target: &Target<'_>) -> CircuitBreaker {
        self.with_breaker(target, CircuitBreaker::clone)
    }

    /// Asks `target`'s breaker to admit a call: [`CircuitBreaker::try_acquire_owned`] without
    /// an intermediate handle.
    pub fn try_acquire(&self, target: &Target<'_>) -> Result<OwnedPermit, CircuitOpen> {
        self.with_breaker(target, CircuitBreaker::try_acquire_owned)
    }

    /// Runs `f` on the breaker guarding `target`, created on first use.
    pub fn with_breaker<R>(&self, target: &Target<'_>, f: impl FnOnce(&CircuitBreaker) -> R) -> R {
        let inner = &*self.inner;
        // One spelling per host, as DNS resolves it: case-insensitive, and a fully qualified
        // name's trailing dot (`api.spotify.com.`) names the same host.
        let host = match target.host.strip_suffix('.') {
            Some(bare) if !bare.is_empty() => bare,
            _ => target.host,
        };
        let lowered;
        let host = if has_ascii_uppercase(host.as_bytes()) {
            lowered = host.to_ascii_lowercase();
            &lowered
        } else {
            host
        };
        let target = &Target { host, ..*target };
        {
            let hosts = inner.hosts.pin();
            if let Some(routes) = hosts.get(host) {
                if let Some(b) = inner.route(routes, target) {
                    return f(b);
                }
            }
        }
        if inner.full.load(Ordering::Acquire) {
            return f(inner.resolve_uncached(host, target));
        }
        f(&inner.create(host, target))
    }

    /// Every breaker created so far, in creation order.
    pub fn breakers(&self) -> Vec<CircuitBreaker> {
        lock(&self.inner.registry).breakers.clone()
    }

    /// The breaker a rule names, if the rule exists (created on first use, like all breakers).
    pub fn named(&self, name: &str) -> Option<CircuitBreaker> {
        let slot = self
            .inner
            .rules
            .iter()
            .position(|s| s.rule.name() == name)?;
        Some(self.inner.rule_breaker(slot).clone())
    }

    /// The box's config.
    pub fn config(&self) -> &BoxConfig {
        &self.inner.config
    }

    /// A point-in-time report of every breaker, serde-serializable.
    pub fn snapshot(&self) -> BoxSnapshot {
        BoxSnapshot::new(
            self.breakers()
                .iter()
                .map(CircuitBreaker::snapshot)
                .collect(),
        )
    }

    /// Healthy when no breaker is rejecting calls; otherwise degraded, naming the failing ones.
    pub fn health(&self) -> Health {
        self.snapshot().health()
    }

    /// Publishes every call counted so far by every breaker to `circuit_breaker_calls_total`
    /// (see [`CircuitBreaker::flush_metrics`]); [`snapshot`](Self::snapshot) and
    /// [`health`](Self::health) do it too.
    pub fn flush_metrics(&self) {
        for breaker in self.breakers() {
            breaker.flush_metrics();
        }
    }
}

/// Whether `bytes` holds an ASCII capital, eight bytes at a time: every lookup asks it of its
/// host, and a byte-by-byte scan cost more than the hash.
#[inline]
fn has_ascii_uppercase(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        // Each byte's low seven bits plus 0x3F (0x25) carries into its own high bit from 0x41
        // ('A') (from 0x5B, past 'Z'); no byte overflows into the next. Non-ASCII bytes are
        // masked out by `!w`.
        let low = w & !HIGH;
        let from_a = low.wrapping_add(ONES * 0x3F);
        let past_z = low.wrapping_add(ONES * 0x25);
        if from_a & !past_z & !w & HIGH != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(u8::is_ascii_uppercase)
}

impl fmt::Display for BreakerBox {
    /// The status table: one line per breaker.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.snapshot(), f)
    }
}

impl fmt::Debug for BreakerBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBox")
            .field("rules", &self.inner.rules.len())
            .field("breakers", &lock(&self.inner.registry).breakers.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// === impl BoxInner ===

impl BoxInner {
    /// The breaker for `target` among a known host's routes, or `None` when its scheme and port
    /// have no breaker yet.
    fn route<'a>(
        &'a self,
        routes: &'a HostRoutes,
        target: &Target<'_>,
    ) -> Option<&'a CircuitBreaker> {
        for &i in &routes.rules {
            if self.rules[i].rule.matcher().matches_path(target.path) {
                return Some(self.rule_breaker(i));
            }
        }
        routes
            .targets
            .iter()
            .find(|(scheme, port, _)| {
                // Schemes are almost always lowercase already: compare bytes first.
                *port == target.port
                    && (**scheme == *target.scheme || scheme.eq_ignore_ascii_case(target.scheme))
            })
            .map(|(_, _, b)| b)
    }

    fn rules_for(&self, host: &str) -> Vec<usize> {
        let mut matching = Vec::new();
        for (i, slot) in self.rules.iter().enumerate() {
            if slot.rule.matcher().matches_host(host) {
                matching.push(i);
                if slot.rule.matcher().path().is_none() {
                    break;
                }
            }
        }
        matching
    }

    fn rule_breaker(&self, i: usize) -> &CircuitBreaker {
        let slot = &self.rules[i];
        slot.breaker.get_or_init(|| {
            self.register(self.build(
                slot.rule.name().to_owned(),
                slot.config.clone(),
                slot.retry.clone(),
            ))
        })
    }

    fn build(
        &self,
        name: impl Into<BreakerName>,
        config: Arc<BreakerConfig>,
        retry: Option<Arc<RetryConfig>>,
    ) -> CircuitBreaker {
        CircuitBreaker::builder_shared(name, config)
            .clock(self.clock.clone())
            .retry(retry)
            .guard(self.guard.clone())
            .listeners(&self.listeners)
            .call_duration_histogram(self.call_duration_histogram)
            .build()
    }

    fn register(&self, breaker: CircuitBreaker) -> CircuitBreaker {
        lock(&self.registry).breakers.push(breaker.clone());
        breaker
    }

    /// Slow path: a host or target seen for the first time. Every write to the host map happens
    /// here, under the registry lock, so that two threads never create two breakers for one
    /// target nor replace each other's entries.
    fn create(&self, host: &str, target: &Target<'_>) -> CircuitBreaker {
        let hosts = self.hosts.pin();
        let mut registry = lock(&self.registry);
        let known = hosts.get(host).cloned();
        let rules = match &known {
            Some(routes) => routes.rules.clone(),
            None => self.rules_for(host),
        };
        let by_rule = rules
            .iter()
            .copied()
            .find(|&i| self.rules[i].rule.matcher().matches_path(target.path));
        if let Some(i) = by_rule {
            // Remember the host while there is room; past it, resolve from the rules each time.
            if known.is_none() {
                if hosts.len() < self.config.max_breakers {
                    hosts.insert(
                        host.into(),
                        Arc::new(HostRoutes {
                            rules,
                            targets: Vec::new(),
                        }),
                    );
                } else {
                    self.full.store(true, Ordering::Release);
                }
            }
            drop(registry);
            return self.rule_breaker(i).clone();
        }
        if let Some(b) = known
            .as_deref()
            .and_then(|routes| self.route(routes, target))
        {
            return b.clone(); // another thread created it meanwhile
        }
        if registry.per_target >= self.config.max_breakers
            || (known.is_none() && hosts.len() >= self.config.max_breakers)
        {
            self.full.store(true, Ordering::Release);
            drop(registry);
            return self.overflow().clone();
        }
        registry.per_target += 1;
        let breaker = self.build(
            target.breaker_name(),
            self.defaults.clone(),
            self.default_retry.clone(),
        );
        registry.breakers.push(breaker.clone());
        let mut targets = known.map(|r| r.targets.clone()).unwrap_or_default();
        targets.push((
            target.scheme.to_ascii_lowercase().into(),
            target.port,
            breaker.clone(),
        ));
        hosts.insert(host.into(), Arc::new(HostRoutes { rules, targets }));
        breaker
    }

    /// Past the cap: the first matching rule's breaker, or the overflow breaker. Allocates
    /// nothing and takes no lock.
    fn resolve_uncached(&self, host: &str, target: &Target<'_>) -> &CircuitBreaker {
        for (i, slot) in self.rules.iter().enumerate() {
            let matcher = slot.rule.matcher();
            if matcher.matches_host(host) && matcher.matches_path(target.path) {
                return self.rule_breaker(i);
            }
            if matcher.matches_host(host) && matcher.path().is_none() {
                break;
            }
        }
        self.overflow()
    }

    fn overflow(&self) -> &CircuitBreaker {
        if !self.overflow_warned.load(Ordering::Relaxed)
            && !self.overflow_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                max_breakers = self.config.max_breakers,
                overflow = ?self.config.overflow,
                "breaker box is full: new targets share the `overflow` breaker"
            );
        }
        self.overflow.get_or_init(|| {
            let breaker = self.build(
                OVERFLOW_BREAKER,
                self.defaults.clone(),
                self.default_retry.clone(),
            );
            if self.config.overflow == Overflow::MetricsOnly {
                breaker.metrics_only();
            }
            self.register(breaker)
        })
    }
}

// === impl BoxBuilder ===

/// Builds a [`BreakerBox`].
#[must_use]
pub struct BoxBuilder {
    config: BoxConfig,
    clock: Option<SharedClock>,
    listeners: Vec<Listener>,
    call_duration_histogram: bool,
}

impl BoxBuilder {
    /// The clock every breaker reads (default: [`MonotonicClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A transition listener for every breaker of the box.
    pub fn listener(mut self, listener: impl Fn(&TransitionEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Whether every breaker of the box records `circuit_breaker_call_duration_seconds` (default:
    /// off): see [`Builder::call_duration_histogram`](crate::circuit_breaker::Builder::call_duration_histogram).
    pub fn call_duration_histogram(mut self, on: bool) -> Self {
        self.call_duration_histogram = on;
        self
    }

    /// Builds the box.
    pub fn build(self) -> BreakerBox {
        let config = self.config;
        let rules = config
            .rules()
            .iter()
            .enumerate()
            .map(|(i, rule)| RuleSlot {
                config: Arc::new(rule.merged(config.defaults())),
                retry: config.retry_for(Some(i)).map(Arc::new),
                rule: rule.clone(),
                breaker: OnceLock::new(),
            })
            .collect();
        BreakerBox {
            inner: Arc::new(BoxInner {
                rules,
                hosts: papaya::HashMap::with_hasher(foldhash::fast::RandomState::default()),
                clock: self
                    .clock
                    .unwrap_or_else(|| Arc::new(MonotonicClock::new())),
                listeners: self.listeners,
                call_duration_histogram: self.call_duration_histogram,
                registry: Mutex::new(Registry::default()),
                overflow: OnceLock::new(),
                overflow_warned: AtomicBool::new(false),
                full: AtomicBool::new(false),
                defaults: Arc::new(config.defaults().clone()),
                default_retry: config.retry_for(None).map(Arc::new),
                guard: config
                    .max_open_fraction()
                    .map(|fraction| Arc::new(FleetGuard::new(fraction))),
                config,
            }),
        }
    }
}

impl fmt::Debug for BoxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxBuilder")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::has_ascii_uppercase;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The word-at-a-time scan agrees with the byte-by-byte one, for any bytes (ASCII or
        /// not, around 'A', 'Z', '@' and '[', and any length).
        #[test]
        fn uppercase_scan_matches_the_bytewise_one(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![b'@', b'A', b'Z', b'[', b'a', b'z', 0xC1, 0xDA, 0xFF]),
                ],
                0..40,
            ),
        ) {
            proptest::prop_assert_eq!(
                has_ascii_uppercase(&bytes),
                bytes.iter().any(u8::is_ascii_uppercase)
            );
        }
    }

    #[test]
    fn finds_capitals_anywhere() {
        assert!(!has_ascii_uppercase(b"api.spotify.com"));
        assert!(has_ascii_uppercase(b"api.Spotify.com"));
        assert!(has_ascii_uppercase(b"api.spotify.coM"));
        assert!(has_ascii_uppercase(b"Z"));
        assert!(!has_ascii_uppercase("bücher.example".as_bytes()));
    }
}
