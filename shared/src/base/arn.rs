//! One ARN type for every ARN the functions read: keys, aliases, roles, topics, alarms.

use std::fmt;

use serde::{Serialize, Serializer};

/// `arn:partition:service:region:account:resource`, kept as written and split once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arn {
    text: String,
    /// Byte offsets of the five `:` separators, so the parts borrow from `text`.
    colons: [usize; 5],
}

impl Arn {
    pub fn parse(text: &str) -> Result<Arn, String> {
        let text = text.trim();
        let mut colons = [0usize; 5];
        let mut found = 0;
        for (i, b) in text.bytes().enumerate() {
            if b == b':' && found < 5 {
                colons[found] = i;
                found += 1;
            }
        }
        let arn = Arn {
            text: text.to_string(),
            colons,
        };
        if found < 5
            || !text.starts_with("arn:")
            || arn.partition().is_empty()
            || arn.service().is_empty()
            || arn.resource().is_empty()
        {
            return Err(format!(
                "{} is not an ARN (arn:partition:service:region:account:resource)",
                crate::base::text::quoted(text, 120)
            ));
        }
        Ok(arn)
    }

    fn part(&self, index: usize) -> &str {
        &self.text[self.colons[index] + 1..self.colons[index + 1]]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn partition(&self) -> &str {
        self.part(0)
    }

    pub fn service(&self) -> &str {
        self.part(1)
    }

    /// Empty for global services (IAM).
    pub fn region(&self) -> &str {
        self.part(2)
    }

    pub fn account(&self) -> &str {
        self.part(3)
    }

    pub fn resource(&self) -> &str {
        &self.text[self.colons[4] + 1..]
    }

    /// The key id of a KMS key ARN (`key/<id>`).
    pub fn kms_key_id(&self) -> Option<&str> {
        (self.service() == "kms")
            .then(|| self.resource().strip_prefix("key/"))
            .flatten()
    }

    /// The alias name (`alias/<name>`) of a KMS alias ARN.
    pub fn kms_alias_name(&self) -> Option<&str> {
        (self.service() == "kms" && self.resource().starts_with("alias/")).then(|| self.resource())
    }

    /// The role name of an IAM role ARN (the last path segment).
    pub fn iam_role_name(&self) -> Option<&str> {
        (self.service() == "iam")
            .then(|| self.resource().strip_prefix("role/"))
            .flatten()
            .map(|path| path.rsplit('/').next().unwrap_or(path))
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Arn {
    type Err = String;
    fn from_str(s: &str) -> Result<Arn, String> {
        Arn::parse(s)
    }
}

impl Serialize for Arn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// An IAM unique id (`AIDA...` user, `AROA...` role; 16 to 128 upper-case letters and digits):
/// what a key policy shows where it named a principal that was since deleted. It names no
/// principal that can make a request: a role created again under the same name gets a new id.
pub fn is_unique_id(text: &str) -> bool {
    ["AIDA", "AROA", "AGPA", "ANPA", "ASIA", "AKIA"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
        && (16..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Twelve digits, as AWS writes account ids.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_key_role_and_alias_arns() {
        let key = Arn::parse(
            "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        )
        .unwrap();
        assert_eq!(
            (key.partition(), key.service(), key.region(), key.account()),
            ("aws-cn", "kms", "cn-north-1", "111122223333")
        );
        assert_eq!(
            key.kms_key_id(),
            Some("mrk-1234abcd12ab34cd56ef1234567890ab")
        );
        let role = Arn::parse("arn:aws:iam::111122223333:role/ops/kms-admin").unwrap();
        assert_eq!(role.region(), "");
        assert_eq!(role.iam_role_name(), Some("kms-admin"));
        assert_eq!(role.kms_key_id(), None);
        let alias = Arn::parse("arn:aws:kms:eu-west-1:111122223333:alias/app-data").unwrap();
        assert_eq!(alias.kms_alias_name(), Some("alias/app-data"));
        // Resources may contain colons (CloudWatch alarms).
        let alarm = Arn::parse("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:a:b").unwrap();
        assert_eq!(alarm.resource(), "alarm:a:b");
    }

    #[test]
    fn non_arns_are_refused_with_the_value_bounded() {
        for bad in [
            "",
            "alias/x",
            "arn:aws:kms",
            "arn::kms:r:a:key/x",
            "arn:aws:kms:r:a:",
        ] {
            assert!(Arn::parse(bad).is_err(), "{bad}");
        }
        let err = Arn::parse(&"x".repeat(10_000)).unwrap_err();
        assert!(err.len() < 300, "{err}");
    }
}
