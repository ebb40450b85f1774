//! replica-grant-validator's configuration: the common part, where replicas must be and may
//! be, who replicates, which grants each replica needs, and which buckets replicate.

use shared::base::region::Region;
use shared::config::FunctionConfig;
use shared::config::{CommonConfig, Env};

use crate::buckets::{parse_bucket_entry, BucketRef};
use crate::grants::{parse_required_grants, RequiredGrant};

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    /// Regions that must hold a replica of every managed multi-Region primary.
    pub replication_regions: Vec<Region>,
    /// Regions a replica may be in: `ALLOWED_REPLICA_REGIONS`, else the replication Regions.
    pub allowed_regions: Vec<Region>,
    /// The roles S3 replication runs as: each must be able to encrypt with every replica.
    pub replication_roles: Vec<String>,
    /// The grants every replica (of the grant's Regions) must carry.
    pub required_grants: Vec<RequiredGrant>,
    /// Source buckets whose replication rules are checked.
    pub buckets: Vec<BucketRef>,
    /// In enforce mode, also revoke grants no required grant accounts for.
    pub strict_grants: bool,
}

impl Config {
    pub fn region_allowed(&self, region: &str) -> bool {
        self.allowed_regions.iter().any(|r| r == region)
    }
}

/// The grant operations the deployed role may hand out: template.yaml's `kms:GrantOperations`
/// condition on CreateGrant, which a test holds equal to this list.
pub const GRANTABLE_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "DescribeKey",
];

impl FunctionConfig for Config {
    fn read(env: &mut Env<'_>) -> Config {
        let common = CommonConfig::read(env);
        let replication_regions = env.regions("REPLICATION_REGIONS");
        if replication_regions.is_empty() {
            env.problem("REPLICATION_REGIONS is required: the Regions that must hold a replica of every managed multi-Region key (e.g. us-west-2,eu-central-1)".into());
        }
        let mut allowed_regions = env.regions("ALLOWED_REPLICA_REGIONS");
        if allowed_regions.is_empty() {
            allowed_regions = replication_regions.clone();
        }
        for region in replication_regions
            .iter()
            .filter(|r| !allowed_regions.contains(r))
        {
            env.problem(format!(
                "REPLICATION_REGIONS names {region}, which ALLOWED_REPLICA_REGIONS leaves out: a replica cannot be both required and disallowed"
            ));
        }

        let replication_roles = env.list("REPLICATION_ROLE_ARNS");
        for role in &replication_roles {
            let is_role = shared::base::arn::Arn::parse(role)
                .ok()
                .is_some_and(|a| a.service() == "iam" && a.iam_role_name().is_some());
            if !is_role {
                env.problem(format!(
                    "REPLICATION_ROLE_ARNS entry {} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME): S3 replication runs as a role",
                    shared::base::text::quoted(role, 120)
                ));
            }
        }

        let required_grants = match env.optional("REQUIRED_GRANTS") {
            None => Vec::new(),
            Some(text) => parse_required_grants(&text).unwrap_or_else(|problems| {
                for problem in problems {
                    env.problem(format!("REQUIRED_GRANTS: {problem}"));
                }
                Vec::new()
            }),
        };

        // The template lets the function grant only to the replication roles, and never the
        // power to grant or retire: a grant it could not create is a configuration error now.
        for grant in &required_grants {
            let spec = &grant.spec;
            let grantee = match &spec.grantee {
                shared::aws::grants::Grantee::Principal(p) => p,
                shared::aws::grants::Grantee::Service(s) => s,
            };
            if !replication_roles.iter().any(|r| r == grantee) {
                env.problem(format!(
                    "REQUIRED_GRANTS: grant {} goes to {}, which is not in REPLICATION_ROLE_ARNS: the function may create grants only for the replication roles (list it there, or drop the grant)",
                    shared::base::text::quoted(&spec.name, 80),
                    shared::base::text::quoted(grantee, 120)
                ));
            }
            for power in ["CreateGrant", "RetireGrant"] {
                if spec.operations.contains(power) {
                    env.problem(format!(
                        "REQUIRED_GRANTS: grant {} includes {power}: the function never hands out the power to manage grants; create such a grant yourself",
                        shared::base::text::quoted(&spec.name, 80)
                    ));
                }
            }
            let refused: Vec<&str> = spec
                .operations
                .iter()
                .map(String::as_str)
                .filter(|op| !matches!(*op, "CreateGrant" | "RetireGrant"))
                .filter(|op| !GRANTABLE_OPERATIONS.contains(op))
                .collect();
            if !refused.is_empty() {
                env.problem(format!(
                    "REQUIRED_GRANTS: grant {} includes {}, which the deployed role may not grant (template.yaml's kms:GrantOperations allows only {}): drop them, or create that grant yourself",
                    shared::base::text::quoted(&spec.name, 80),
                    refused.join(", "),
                    GRANTABLE_OPERATIONS.join(", ")
                ));
            }
            let outside: Vec<&str> = grant
                .regions
                .iter()
                .flatten()
                .map(String::as_str)
                .filter(|r| !replication_regions.iter().any(|rr| rr == *r))
                .collect();
            if !outside.is_empty() {
                env.problem(format!(
                    "REQUIRED_GRANTS: grant {} names Regions {}, outside REPLICATION_REGIONS: the deployed role may create grants only in the replication Regions (template.yaml's aws:RequestedRegion); add them to REPLICATION_REGIONS or drop them",
                    shared::base::text::quoted(&spec.name, 80),
                    outside.join(", ")
                ));
            }
        }

        let mut buckets = Vec::new();
        for entry in env.list("REPLICATION_BUCKETS") {
            match parse_bucket_entry(&entry, &common.region) {
                Ok(bucket) => buckets.push(bucket),
                Err(problem) => env.problem(format!("REPLICATION_BUCKETS: {problem}")),
            }
        }

        Config {
            strict_grants: env.bool("STRICT_GRANTS", false),
            common,
            replication_regions,
            allowed_regions,
            replication_roles,
            required_grants,
            buckets,
        }
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::ConfigError;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<&str, &str> = HashMap::from([
            ("ACCOUNT_ID", "111122223333"),
            ("AWS_REGION", "eu-west-1"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
            ),
            (
                "SELF_ROLE_ARN",
                "arn:aws:iam::111122223333:role/replica-grant-validator",
            ),
            ("REPLICATION_REGIONS", "us-west-2,eu-central-1"),
        ]);
        map.extend(pairs.iter().copied());
        Config::from_lookup(&|k| map.get(k).map(|v| v.to_string()))
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        load(pairs).unwrap_err().problems
    }

    #[test]
    fn grants_the_deployed_role_may_not_create_are_refused_at_cold_start() {
        let role = "arn:aws:iam::111122223333:role/s3-replication";
        let sign = format!(
            r#"[{{"Name":"s3-replication","GranteePrincipal":"{role}","Operations":["Encrypt","GenerateDataKeyPair"]}}]"#
        );
        let found = problems(&[("REPLICATION_ROLE_ARNS", role), ("REQUIRED_GRANTS", &sign)]);
        assert!(
            found.iter().any(|p| p.contains("GenerateDataKeyPair")
                && p.contains("kms:GrantOperations allows only Decrypt, Encrypt")),
            "{found:?}"
        );
        let elsewhere = format!(
            r#"[{{"Name":"s3-replication","GranteePrincipal":"{role}","Operations":["Encrypt"],"Regions":["ap-south-1"]}}]"#
        );
        let found = problems(&[
            ("REPLICATION_ROLE_ARNS", role),
            (
                "ALLOWED_REPLICA_REGIONS",
                "us-west-2,eu-central-1,ap-south-1",
            ),
            ("REQUIRED_GRANTS", &elsewhere),
        ]);
        assert!(
            found
                .iter()
                .any(|p| p.contains("ap-south-1") && p.contains("outside REPLICATION_REGIONS")),
            "{found:?}"
        );
    }

    #[test]
    fn given_only_replication_regions_then_those_are_also_the_allowed_ones() {
        let config = load(&[]).unwrap();
        assert_eq!(config.replication_regions, ["us-west-2", "eu-central-1"]);
        assert!(config.region_allowed("eu-central-1"));
        assert!(!config.region_allowed("ap-south-1"));
        assert!(!config.strict_grants);
        assert!(config.required_grants.is_empty() && config.buckets.is_empty());
    }

    #[test]
    fn given_a_full_configuration_then_every_part_is_read() {
        let config = load(&[
            ("ALLOWED_REPLICA_REGIONS", "us-west-2,eu-central-1,ap-south-1"),
            (
                "REPLICATION_ROLE_ARNS",
                "arn:aws:iam::111122223333:role/s3-replication",
            ),
            (
                "REQUIRED_GRANTS",
                r#"[{"Name":"s3-replication","GranteePrincipal":"arn:aws:iam::111122223333:role/s3-replication","Operations":["Encrypt","GenerateDataKey"]}]"#,
            ),
            ("REPLICATION_BUCKETS", "app-data, logs@us-east-1"),

            ("STRICT_GRANTS", "true"),
        ])
        .unwrap();
        assert!(config.region_allowed("ap-south-1"));
        assert_eq!(config.required_grants.len(), 1);
        assert_eq!(config.buckets.len(), 2);
        assert_eq!(config.buckets[0].region, "eu-west-1");
        assert_eq!(config.buckets[1].region, "us-east-1");
        assert!(config.strict_grants);
    }

    #[test]
    fn given_no_replication_regions_then_the_error_says_what_to_set() {
        let found = problems(&[("REPLICATION_REGIONS", "")]);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("REPLICATION_REGIONS is required")),
            "{found:?}"
        );
    }

    #[test]
    fn given_every_part_wrong_then_every_problem_is_listed_at_once() {
        let found = problems(&[
            ("REPLICATION_REGIONS", "us-west-2,mars-1"),
            ("ALLOWED_REPLICA_REGIONS", "eu-central-1"),
            ("REPLICATION_ROLE_ARNS", "s3.amazonaws.com"),
            (
                "REQUIRED_GRANTS",
                r#"[{"Name":"s3","GranteePrincipal":"s3.amazonaws.com","Operations":["Encrypt"]}]"#,
            ),
            ("REPLICATION_BUCKETS", "Not_A_Bucket"),
            ("STRICT_GRANTS", "maybe"),
        ]);
        let has = |needle: &str| found.iter().any(|p| p.contains(needle));
        assert!(has("REPLICATION_REGIONS entry \"mars-1\""), "{found:?}");
        assert!(has("ALLOWED_REPLICA_REGIONS leaves out"), "{found:?}");
        assert!(has("REPLICATION_ROLE_ARNS entry"), "{found:?}");
        assert!(has("REQUIRED_GRANTS: "), "{found:?}");
        assert!(has("GranteeServicePrincipal"), "{found:?}");
        assert!(has("REPLICATION_BUCKETS: "), "{found:?}");
        assert!(has("STRICT_GRANTS"), "{found:?}");
    }

    #[test]
    fn given_a_grant_the_function_may_not_create_then_it_is_a_configuration_error() {
        let found = problems(&[
            (
                "REPLICATION_ROLE_ARNS",
                "arn:aws:iam::111122223333:role/s3-replication",
            ),
            (
                "REQUIRED_GRANTS",
                r#"[{"Name":"partner","GranteePrincipal":"arn:aws:iam::444455556666:role/partner","Operations":["Decrypt"]},
                    {"Name":"delegate","GranteePrincipal":"arn:aws:iam::111122223333:role/s3-replication","Operations":["Encrypt","CreateGrant"]}]"#,
            ),
        ]);
        assert!(
            found
                .iter()
                .any(|p| p.contains("\"partner\" goes to")
                    && p.contains("not in REPLICATION_ROLE_ARNS")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("\"delegate\" includes CreateGrant")),
            "{found:?}"
        );
    }
}
