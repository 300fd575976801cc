//! How a call ended, read from [`CallEnd::status`].

use crate::contract::FailureClass;
use crate::engine::{CallEnd, EndStatus};
use crate::outcome::ErrorKind;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Answer,
    Default(FailureClass),
    Escalated(FailureClass),
    Failed(ErrorKind),
}

/// Reads the status of a finished call.
pub(crate) fn of(end: &CallEnd<'_>) -> Ended {
    match end.status {
        EndStatus::Answer => Ended::Answer,
        EndStatus::Default(c) => Ended::Default(c),
        EndStatus::Escalated(c) => Ended::Escalated(c),
        EndStatus::Failed(k) => Ended::Failed(k),
    }
}
