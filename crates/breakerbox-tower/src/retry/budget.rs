//! The engine's retry budget behind tower's `Budget` trait.

use breakerbox::RetryBudget;
use breakerbox::retry::BudgetConfig;
use breakerbox_http::TokioClock;
use std::sync::Arc;

/// The engine's lock-free [`RetryBudget`] (on a [`TokioClock`]) as a
/// [`tower::retry::budget::Budget`], for users of tower's own `Retry` middleware and policies:
/// the same Finagle model as tower's `TpsBudget`, without its lock per request.
///
/// ```
/// use breakerbox::retry::BudgetConfig;
/// use breakerbox_tower::retry::TowerBudget;
/// use tower::retry::budget::Budget;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // No ratio, a floor of 1 retry per second over 1 s.
/// let budget = TowerBudget::new(&BudgetConfig::new(std::time::Duration::from_secs(1), 1, 0.0).unwrap());
/// budget.deposit();
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TowerBudget {
    budget: Arc<RetryBudget>,
}

impl TowerBudget {
    /// A budget per `config`, reading a [`TokioClock`].
    pub fn new(config: &BudgetConfig) -> Self {
        Self {
            budget: Arc::new(RetryBudget::new(config, Arc::new(TokioClock::new()))),
        }
    }

    /// The engine budget.
    pub fn get_ref(&self) -> &RetryBudget {
        &self.budget
    }
}

impl tower::retry::budget::Budget for TowerBudget {
    fn deposit(&self) {
        self.budget.deposit();
    }

    fn withdraw(&self) -> bool {
        self.budget.try_withdraw()
    }
}
