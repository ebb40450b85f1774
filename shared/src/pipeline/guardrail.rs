//! What a function is to the pipeline: its name, the events it handles, its own routes, and
//! its decisions for one key as `read` (I/O) -> `decide` (pure) -> `apply` (writes).

use std::fmt::Debug;

use serde::{Serialize, Serializer};

use crate::aws::kms::KeyInfo;
use crate::aws::AwsClients;
use crate::base::error::GuardrailError;
use crate::config::FunctionConfig;
use crate::notify::metrics::Measures;
use crate::notify::outcome::{Outcome, SweepReport};
use crate::notify::Cause;
use crate::pipeline::audit::Audit;
use crate::pipeline::journal::PlannedWrites;
use crate::pipeline::notices::SweepMemory;
use crate::pipeline::resolve::Resolution;
use crate::pipeline::sweep::Deadline;
use crate::triggers::events::{KeyLocator, Trigger};
use crate::triggers::gate::{EventGate, HandledEvents};

/// Everything a function needs at run time, one shape for all: its configuration, the
/// shared clients, and its own clients (`()` for none), built once at cold start.
pub struct Deps<C, X = ()> {
    pub config: C,
    pub clients: AwsClients,
    pub own: X,
}

/// What the invocation returns: the pipeline's outcome, or the function's own report.
// One value per invocation, returned at once: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response<R> {
    Outcome(Outcome),
    Report(R),
}

/// The report of a function that has none of its own: no value of it exists.
#[derive(Debug)]
pub enum NoReport {}

impl Serialize for NoReport {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}

impl<R> Response<R> {
    /// What the invocation did, in numbers: the pipeline's outcome counted, or the function's
    /// own report by `measure`.
    pub fn measures(&self, measure: fn(&R) -> Measures) -> Measures {
        match self {
            Response::Outcome(outcome) => Measures::of_outcome(outcome),
            Response::Report(report) => measure(report),
        }
    }
}

impl Response<NoReport> {
    pub fn into_outcome(self) -> Outcome {
        match self {
            Response::Outcome(outcome) => outcome,
            Response::Report(never) => match never {},
        }
    }
}

/// How a sweep announces what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMessages {
    /// One message per key that needs one (the default).
    PerKey,
    /// One digest for the whole sweep, written by [`Guardrail::digest`].
    Digest,
}

/// The invocation a route runs in.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    pub deadline: Deadline,
    /// The scheduled event's id, which seeds the sweep's order.
    pub sweep_seed: &'a str,
}

/// One key audited: the pipeline's announcement of it and the function's own detail.
pub struct Audited<D> {
    pub key: KeyInfo,
    pub audit: Audit,
    pub detail: D,
}

/// Shorthand for a guardrail's dependencies.
pub type DepsOf<G> = Deps<<G as Guardrail>::Config, <G as Guardrail>::Clients>;

/// One function. The pipeline owns trigger parsing, the gate, resolution, membership, the
/// sweep, the message frame, delivery and the retry-or-report rule; a function brings only
/// what is its own.
// A Lambda runtime polls one invocation at a time on one task: nothing needs these futures
// to be `Send`, so plain `async fn` is the clearest signature.
#[allow(async_fn_in_trait)]
pub trait Guardrail {
    /// The function's name in messages, logs and skip reasons.
    const NAME: &'static str;
    /// The CloudTrail calls it handles: the one list, which a test holds equal to the
    /// EventBridge rules of `template.yaml`.
    const HANDLED: &'static [HandledEvents];
    /// How its sweep announces.
    const SWEEP_MESSAGES: SweepMessages = SweepMessages::PerKey;
    /// Whether its sweeps fan out on SQS, one part per (account, Region), when
    /// `SWEEP_QUEUE_URL` is set. A function that sweeps in place keeps `false`, and the
    /// fan-out (its queue and state-table calls) is then not linked into its binary.
    const FANS_OUT: bool = false;
    /// Whether the key path (CloudTrail events through the gate, sweeps of managed keys)
    /// serves this function. A function whose every trigger is its own route sets `false`,
    /// and the key path is then not even linked into its binary.
    const KEY_PATH: bool = true;

    type Config: FunctionConfig;
    /// Its own clients beyond the shared ones.
    type Clients;
    /// What `read` gathers about one key.
    type Facts;
    /// What `decide` concludes: findings and the writes that fix them.
    type Plan;
    /// What the function keeps of each audited key for its own report (`()` for nothing).
    type Detail;
    /// Its own invocation result, beside the pipeline's `Outcome`.
    type Report: Serialize + Debug;

    fn gate() -> EventGate {
        EventGate {
            function: Self::NAME,
            handled: Self::HANDLED,
        }
    }

    /// Triggers the key path does not take: IAM, S3 and alarm events, or a setting that makes
    /// every trigger a skip. `None` sends the trigger down the pipeline.
    async fn route(
        deps: &DepsOf<Self>,
        trigger: &Trigger,
        invocation: Invocation<'_>,
    ) -> Option<Result<Response<Self::Report>, GuardrailError>> {
        let _ = (deps, trigger, invocation);
        None
    }

    /// The key an event or sweep about `resolved` leads to (a replica's primary). The default
    /// is the key itself.
    async fn target(
        deps: &DepsOf<Self>,
        resolved: Resolution,
        locator: &KeyLocator,
    ) -> Result<Resolution, GuardrailError> {
        let _ = (deps, locator);
        Ok(resolved)
    }

    /// The facts of one managed, settled key: I/O only. `cause` says which CloudTrail call or
    /// sweep led here (who made a change can make it approved rather than drift).
    async fn read(
        deps: &DepsOf<Self>,
        key: &KeyInfo,
        cause: Cause<'_>,
    ) -> Result<Self::Facts, GuardrailError>;

    /// What is wrong with the key and what would fix it: pure, from configuration and facts.
    fn decide(config: &Self::Config, key: &KeyInfo, facts: Self::Facts) -> Self::Plan;

    /// Records what the plan decided in the function's own store, before any write to the key
    /// (policy-drift's per-key desired state); may decide again when the store changed under
    /// it. The default records nothing.
    async fn commit(
        deps: &DepsOf<Self>,
        key: &KeyInfo,
        plan: Self::Plan,
    ) -> Result<Self::Plan, GuardrailError> {
        let _ = (deps, key);
        Ok(plan)
    }

    /// The writes `apply` will make for `plan`, recorded in the state table before the first
    /// one, so that a crash or a failed publish after them is still announced. `None`: none
    /// (report mode, nothing to correct).
    fn planned_writes(config: &Self::Config, plan: &Self::Plan) -> Option<PlannedWrites> {
        let _ = (config, plan);
        None
    }

    /// The writes the plan calls for (none in report mode), and what to announce.
    async fn apply(deps: &DepsOf<Self>, key: &KeyInfo, plan: Self::Plan) -> (Audit, Self::Detail);

    /// The response of an event or sweep that went through the key path.
    fn respond(outcome: Outcome, details: Vec<Self::Detail>) -> Response<Self::Report> {
        let _ = details;
        Response::Outcome(outcome)
    }

    /// The counts of an invocation that ended in the function's own report, for its metrics
    /// (none by default).
    fn measure(report: &Self::Report) -> Measures {
        let _ = report;
        Measures::default()
    }

    /// With [`SweepMessages::Digest`]: announces the sweep once and makes its response.
    /// `memory` (absent when the sweep wrote, which is always news) tells a digest unchanged
    /// since it was announced from one to send.
    async fn digest(
        deps: &DepsOf<Self>,
        time: Option<&str>,
        sweep: SweepReport,
        audited: Vec<Audited<Self::Detail>>,
        memory: Option<&SweepMemory<'_>>,
    ) -> Result<Response<Self::Report>, GuardrailError> {
        let _ = (deps, time, audited, memory);
        Ok(Response::Outcome(Outcome::Sweep(sweep)))
    }
}
