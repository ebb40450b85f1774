//! Finding tagged keys with the Resource Groups Tagging API: one call per page of up to 100
//! keys, instead of a ListResourceTags call per key.

use aws_sdk_resourcegroupstagging::types::TagFilter;
use aws_sdk_resourcegroupstagging::Client;
use futures::stream::{self, Stream};

use crate::base::arn::Arn;
use crate::base::error::GuardrailError;

/// The Tagging API's name for KMS keys.
const KMS_KEY_TYPE: &str = "kms:key";
/// The largest page GetResources serves.
const PAGE_SIZE: i32 = 100;

fn filter(tag_key: &str, tag_value: &str) -> TagFilter {
    TagFilter::builder().key(tag_key).values(tag_value).build()
}

/// Pages of key ARNs carrying `tag_key=tag_value` in the client's Region, streamed: the
/// first keys are audited while later pages are still being listed. `keep_listing` is asked
/// before each call, so a deadline can stop the listing without a wasted call.
pub fn tagged_key_pages<'a>(
    client: &'a Client,
    region: &'a str,
    tag_key: &'a str,
    tag_value: &'a str,
    keep_listing: impl Fn() -> bool + 'a,
) -> impl Stream<Item = Result<Vec<Arn>, GuardrailError>> + 'a {
    let keep_listing = std::sync::Arc::new(keep_listing);
    // (next token, finished)
    stream::unfold((None::<String>, false), move |(token, done)| {
        let keep_listing = keep_listing.clone();
        async move {
            if done || !keep_listing() {
                return None;
            }
            let page = async {
                client
                    .get_resources()
                    .resource_type_filters(KMS_KEY_TYPE)
                    .tag_filters(filter(tag_key, tag_value))
                    .resources_per_page(PAGE_SIZE)
                    .set_pagination_token(token)
                    .send()
                    .await
                    .map_err(|e| {
                        GuardrailError::aws("GetResources", &format!("tagged keys in {region}"), e)
                    })
            }
            .await;
            match page {
                Ok(out) => {
                    let arns = out
                        .resource_tag_mapping_list()
                        .iter()
                        .filter_map(|m| m.resource_arn())
                        .filter_map(|a| Arn::parse(a).ok())
                        .collect();
                    let next = out
                        .pagination_token()
                        .filter(|t| !t.is_empty())
                        .map(str::to_string);
                    let finished = next.is_none();
                    Some((Ok(arns), (next, finished)))
                }
                Err(e) => Some((Err(e), (None, true))),
            }
        }
    })
}

/// Whether the key at `arn` carries `tag_key=tag_value`, read through the Tagging API: it
/// still answers when the key policy denies this function every KMS call.
pub async fn key_has_tag(
    client: &Client,
    arn: &Arn,
    tag_key: &str,
    tag_value: &str,
) -> Result<bool, GuardrailError> {
    let out = client
        .get_resources()
        .resource_arn_list(arn.as_str())
        .send()
        .await
        .map_err(|e| GuardrailError::aws("GetResources", arn.as_str(), e))?;
    Ok(out.resource_tag_mapping_list().iter().any(|m| {
        m.tags()
            .iter()
            .any(|t| t.key() == tag_key && t.value() == tag_value)
    }))
}
