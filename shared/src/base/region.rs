//! An AWS Region code, validated by one rule wherever a Region is read: configuration, ARNs,
//! alarm events, bucket locations.

use std::fmt;
use std::ops::Deref;

use serde::{Serialize, Serializer};

/// A Region code such as `eu-west-1`, `us-gov-west-1` or `cn-north-1`; never a display name
/// such as "EU (Ireland)", which classic SNS alarm messages carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    pub fn parse(text: &str) -> Result<Region, String> {
        if is_region(text) {
            Ok(Region(text.to_string()))
        } else {
            Err(format!(
                "{} is not a Region code such as eu-west-1",
                crate::base::text::quoted(text, 40)
            ))
        }
    }

    /// The value a configuration holds for a Region variable that failed to parse; the
    /// configuration is then refused as a whole, so it never reaches a call.
    pub(crate) fn unset() -> Region {
        Region(String::new())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At least three dash-separated parts of lowercase letters and digits, the first letters
/// only and the last digits only.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

impl Deref for Region {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Region {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Read through [`Region::parse`]: a document never yields a Region the parser refuses.
impl<'de> serde::Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Region, D::Error> {
        let text = String::deserialize(deserializer)?;
        Region::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl PartialEq<str> for Region {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Region {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Region {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Region> for String {
    fn eq(&self, other: &Region) -> bool {
        *self == other.0
    }
}

impl PartialEq<Region> for &str {
    fn eq(&self, other: &Region) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_from_every_partition_parse() {
        for code in [
            "eu-west-1",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-5",
            "us-isob-east-1",
        ] {
            assert_eq!(
                Region::parse(code).map(|r| r.to_string()),
                Ok(code.to_string())
            );
        }
    }

    #[test]
    fn display_names_and_near_misses_are_refused() {
        for text in [
            "EU (Ireland)",
            "eu-west",
            "eu-west-",
            "EU-WEST-1",
            "1u-west-1",
            "eu-west-1a",
            "",
            "eu_west_1",
        ] {
            assert!(Region::parse(text).is_err(), "{text}");
        }
    }
}
