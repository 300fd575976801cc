//! One exchange with the provider: admission by recovery (breaker, limits), the request under the
//! per-attempt timeout, and the result recorded for the breaker, all inside the attempt's CLIENT
//! span.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{Instrument, Span};

use super::Call;
use crate::observe::{record_error, record_response};
use crate::output::LlmOutput;
use crate::provider::{ChatResponse, ProviderError, WireDigest};
use crate::recovery::AttemptResult;

/// What one attempt brought back, for [`Call::judge`].
pub(crate) struct Exchange {
    pub(crate) result: Result<ChatResponse, ProviderError>,
    pub(crate) started_at: SystemTime,
    pub(crate) latency: Duration,
    pub(crate) span: Span,
    /// What went on the wire, when something was sent.
    pub(crate) wire: Option<WireDigest>,
}

impl<T: LlmOutput> Call<'_, T> {
    /// Sends the next request, unless the deadline is spent (`None`: no attempt is made, and the
    /// timeout chain decides what is left). A breaker or limit that refuses the attempt yields its
    /// error without sending anything.
    pub(crate) async fn attempt(&mut self) -> Option<Exchange> {
        let started = Instant::now();
        let remaining = self.deadline.saturating_duration_since(started);
        if remaining.is_zero() {
            return None;
        }
        let harness = self.frame.harness;
        let recovery = harness.recovery();
        let route = &self.route;
        let span = harness
            .telemetry()
            .attempt_span(&route.provider.info(), &self.request);
        let started_at = SystemTime::now();
        let admission = recovery
            .admit_before(
                &route.provider_name,
                &route.model,
                harness.expected_tokens(&self.request),
                Some(self.deadline),
            )
            .await;
        let mut wire = None;
        let result = match admission {
            Ok(admission) => {
                let per_attempt = self.frame.contract.timeout.min(remaining);
                let sent = Instant::now();
                let result = tokio::time::timeout(per_attempt, route.provider.chat(&self.request))
                    .instrument(span.clone())
                    .await
                    .unwrap_or(Err(ProviderError::Timeout(per_attempt)));
                recovery.record(
                    admission,
                    AttemptResult::from_provider(&result, sent.elapsed()),
                );
                wire = route.provider.wire_digest(&self.request);
                result
            }
            Err(rejection) => Err(rejection.into_provider_error()),
        };
        match &result {
            Ok(response) => record_response(&span, response),
            Err(error) => record_error(&span, error),
        }
        Some(Exchange {
            result,
            started_at,
            latency: started.elapsed(),
            span,
            wire,
        })
    }
}
