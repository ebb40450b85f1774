//! replica-grant-validator: checks that every managed multi-Region primary's replicas, their
//! grants and key policies, and the S3 replication rules that name them let S3 replication
//! encrypt, and creates the grants that are missing.

use shared::gate::{EventGate, HandledEvents};

pub const FUNCTION: &str = "replica-grant-validator";

/// KMS calls that change what a replica lets S3 replication do, and the S3 call that changes
/// which replica a bucket's replication uses.
pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: &[
        HandledEvents {
            source: "kms.amazonaws.com",
            names: &[
                "CreateGrant",
                "DisableKey",
                "PutKeyPolicy",
                "ReplicateKey",
                "RetireGrant",
                "RevokeGrant",
                "ScheduleKeyDeletion",
                "UpdatePrimaryRegion",
            ],
        },
        HandledEvents {
            source: "s3.amazonaws.com",
            names: &["PutBucketReplication"],
        },
    ],
};
