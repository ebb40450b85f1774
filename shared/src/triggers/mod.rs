//! What starts an invocation: EventBridge envelopes, the CloudTrail record inside them, the
//! three shapes of a CloudWatch alarm change, and the gate that admits only handled calls.

pub mod alarm;
pub mod events;
pub mod gate;
pub mod work;
