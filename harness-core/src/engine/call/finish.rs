//! The last step: complete the report, tell the observers, and build what the caller gets — the
//! one place an [`Outcome`] or a [`TaskError`] is made.

use super::{Ended, Frame};
use crate::observe::{CallEnd, EndStatus, record_call_end};
use crate::outcome::{Outcome, Resolution, TaskError, TaskResult};

impl Frame<'_> {
    /// Ends the call.
    pub(crate) fn finish<T>(self, ended: Ended<T>) -> TaskResult<T> {
        let Frame {
            harness,
            contract,
            inputs,
            request,
            mut report,
            provenance,
            started,
        } = self;
        report.elapsed = started.elapsed();
        report.cost_usd = harness.prices().report_cost(&report);
        let (status, value, candidate, reason) = match &ended {
            Ended::Answer { json, .. } => (EndStatus::Answer, Some(json), None, None),
            Ended::Default { class, .. } => (
                EndStatus::Default(*class),
                None,
                None,
                report.actions.last().map(|a| a.detail.as_str()),
            ),
            Ended::Escalated {
                escalation,
                candidate,
            } => (
                EndStatus::Escalated(escalation.class),
                None,
                candidate.as_ref(),
                Some(escalation.reason.as_str()),
            ),
            Ended::Failed { kind, message, .. } => {
                (EndStatus::Failed(*kind), None, None, Some(message.as_str()))
            }
        };
        let end = CallEnd {
            contract,
            report: &report,
            request: &request,
            inputs: &inputs,
            status,
            value,
            reason,
            candidate,
            actor: harness.actor(),
        };
        record_call_end(&tracing::Span::current(), &end);
        for observer in harness.observers() {
            observer.on_call_end(&end);
        }
        let resolution = match ended {
            Ended::Answer { value, .. } => Resolution::Answer(value),
            Ended::Default { value, class } => Resolution::Default { value, class },
            Ended::Escalated { escalation, .. } => Resolution::Escalated(escalation),
            Ended::Failed {
                kind,
                message,
                validation,
                provider_error,
            } => {
                return Err(TaskError::new(
                    kind,
                    message,
                    validation,
                    provider_error,
                    report,
                ));
            }
        };
        Ok(Outcome {
            resolution,
            provenance,
            report,
        })
    }
}
