//! Facts read straight from the SAM template text, so tests can hold the code and
//! `template.yaml` to the same lists.
//!
//! There is no YAML crate here on purpose: CloudFormation's short-form tags (`!GetAtt`, `!Sub`,
//! `!If`, ...) make plain YAML parsers refuse the document. The template is walked by
//! indentation instead, which covers the block mappings and lists it is written in.

/// The `eventName` list of the EventBridge rule `event` of the function resource `function` in the SAM template text.
///
/// The path followed is `Resources` > `function` > `Properties` > `Events` > `event` >
/// `Properties` > `Pattern` > `detail` > `eventName`; every step must be a block mapping. The
/// list may be a block list (`- Name` items, indented under the key or level with it) or an
/// inline flow list (`[A, B]`, which may continue on the following lines). Names may be quoted.
/// The error names the step that is missing or not understood.
pub fn rule_event_names(
    template: &str,
    function: &str,
    event: &str,
) -> Result<Vec<String>, String> {
    event_names_at(
        template,
        &[
            function,
            "Properties",
            "Events",
            event,
            "Properties",
            "Pattern",
            "detail",
        ],
    )
}

/// The `eventName` list under `Resources` / `path` (which ends at a pattern's `detail`): for
/// plain `AWS::Events::Rule` resources, whose pattern is under `Properties.EventPattern`.
pub fn event_names_at(template: &str, path_to_detail: &[&str]) -> Result<Vec<String>, String> {
    let lines = significant_lines(template);
    let mut at = top_level(&lines, "Resources")?;
    let mut path = vec!["Resources"];
    for &key in path_to_detail {
        at = child(&lines, at, key, &path)?;
        let value = value_of(lines[at].text);
        if !value.is_empty() {
            return Err(format!(
                "`{}` is not a block mapping (line {}: `{}`)",
                joined(&path, key),
                lines[at].number,
                value
            ));
        }
        path.push(key);
    }
    let names = child(&lines, at, "eventName", &path)?;
    list(&lines, names, &joined(&path, "eventName"))
}

/// A line that is neither blank nor only a comment.
struct Line<'a> {
    /// 1-based, for messages.
    number: usize,
    /// Leading spaces.
    indent: usize,
    /// The rest, without the trailing comment and surrounding whitespace.
    text: &'a str,
}

fn significant_lines(template: &str) -> Vec<Line<'_>> {
    template
        .lines()
        .enumerate()
        .filter_map(|(index, raw)| {
            let content = raw.trim_start_matches(' ');
            let text = strip_comment(content).trim();
            (!text.is_empty()).then_some(Line {
                number: index + 1,
                indent: raw.len() - content.len(),
                text,
            })
        })
        .collect()
}

/// `text` up to a YAML comment: a `#` at the start or after whitespace, outside quotes.
fn strip_comment(text: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        match quote {
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('\'') if c == '\'' && chars.peek().map(|&(_, next)| next) == Some('\'') => {
                chars.next();
            }
            Some(open) if c == open => quote = None,
            Some(_) => {}
            // A quote opens a quoted scalar only where a value can start, not in `it's`.
            None if (c == '"' || c == '\'')
                && previous.is_none_or(|p| p.is_whitespace() || "[{,:".contains(p)) =>
            {
                quote = Some(c)
            }
            None if c == '#' && previous.is_none_or(char::is_whitespace) => {
                return &text[..index];
            }
            None => {}
        }
        previous = Some(c);
    }
    text
}

/// The mapping key a line starts with (unquoted), or `None` for a list item or a plain scalar.
fn key_of(text: &str) -> Option<&str> {
    if text.starts_with('-') && (text.len() == 1 || text[1..].starts_with(' ')) {
        return None;
    }
    if let Some(open) = text.chars().next().filter(|&c| c == '"' || c == '\'') {
        let close = text[1..].find(open)? + 1;
        return text[close + 1..].starts_with(':').then(|| &text[1..close]);
    }
    // A plain key ends at the first `:` followed by a space or the end of the line.
    let colon = text
        .char_indices()
        .find(|&(i, c)| c == ':' && text[i + 1..].chars().next().is_none_or(|n| n == ' '))?
        .0;
    Some(text[..colon].trim_end())
}

/// What follows the key's colon, trimmed; empty for a block value.
fn value_of(text: &str) -> &str {
    let after_key = match text.chars().next() {
        Some(open @ ('"' | '\'')) => text[1..].find(open).map_or(text.len(), |i| i + 2),
        _ => 0,
    };
    text[after_key..]
        .find(": ")
        .map(|i| &text[after_key + i + 1..])
        .unwrap_or("")
        .trim()
}

fn joined(path: &[&str], key: &str) -> String {
    let mut all = path.to_vec();
    all.push(key);
    all.join(" > ")
}

fn top_level(lines: &[Line], key: &str) -> Result<usize, String> {
    lines
        .iter()
        .position(|line| line.indent == 0 && key_of(line.text) == Some(key))
        .ok_or_else(|| format!("no top-level `{key}:` section"))
}

/// The line of the direct child `key` of the mapping whose key is on line `parent`.
fn child(lines: &[Line], parent: usize, key: &str, path: &[&str]) -> Result<usize, String> {
    let parent_indent = lines[parent].indent;
    let block = lines[parent + 1..]
        .iter()
        .take_while(|line| line.indent > parent_indent);
    let child_indent = lines.get(parent + 1).map(|line| line.indent);
    let mut found = block
        .enumerate()
        .filter(|(_, line)| Some(line.indent) == child_indent && key_of(line.text) == Some(key))
        .map(|(offset, _)| parent + 1 + offset);
    match (found.next(), found.next()) {
        (Some(at), None) => Ok(at),
        (Some(first), Some(second)) => Err(format!(
            "`{}` appears twice (lines {} and {})",
            joined(path, key),
            lines[first].number,
            lines[second].number
        )),
        (None, _) => Err(format!("`{key}` not found under `{}`", path.join(" > "))),
    }
}

/// The plain names of the list that is the value of the key on line `at`.
fn list(lines: &[Line], at: usize, what: &str) -> Result<Vec<String>, String> {
    let value = value_of(lines[at].text);
    if value.starts_with('[') {
        return flow_list(lines, at, value, what);
    }
    if !value.is_empty() {
        return Err(format!(
            "`{what}` is `{value}` (line {}), not a list",
            lines[at].number
        ));
    }
    let key_indent = lines[at].indent;
    let mut items = lines[at + 1..]
        .iter()
        .take_while(|line| {
            line.indent > key_indent || (line.indent == key_indent && is_item(line.text))
        })
        .peekable();
    let Some(item_indent) = items.peek().map(|line| line.indent) else {
        return Err(format!("`{what}` has no value (line {})", lines[at].number));
    };
    let mut names = Vec::new();
    for line in items {
        if line.indent < item_indent || (line.indent == item_indent && !is_item(line.text)) {
            if names.is_empty() {
                return Err(format!(
                    "`{what}` is a mapping (line {}: `{}`), not a list",
                    line.number, line.text
                ));
            }
            break;
        }
        if line.indent > item_indent {
            return Err(format!(
                "`{what}` item continues or nests on line {}: `{}`",
                line.number, line.text
            ));
        }
        names.push(plain_name(line.text[1..].trim(), what, line.number)?);
    }
    Ok(names)
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `[A, "B", 'C']`, possibly continued on the following lines.
fn flow_list(lines: &[Line], at: usize, first: &str, what: &str) -> Result<Vec<String>, String> {
    let mut text = first.to_string();
    let mut next = at + 1;
    while !text.contains(']') {
        let line = lines
            .get(next)
            .filter(|line| line.indent > lines[at].indent)
            .ok_or_else(|| {
                format!(
                    "`{what}` flow list opened on line {} is not closed",
                    lines[at].number
                )
            })?;
        text.push(' ');
        text.push_str(line.text);
        next += 1;
    }
    let close = text.rfind(']').unwrap_or(text.len());
    if !text[close + 1..].trim().is_empty() {
        return Err(format!(
            "`{what}` has text after its flow list (line {})",
            lines[at].number
        ));
    }
    let mut names = Vec::new();
    for item in split_outside_quotes(&text[1..close]) {
        let item = item.trim();
        // YAML allows a trailing comma.
        if !item.is_empty() {
            names.push(plain_name(item, what, lines[at].number)?);
        }
    }
    Ok(names)
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ',' => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            None => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A list item that must be a name: unquoted, not a mapping, list or tagged value.
fn plain_name(item: &str, what: &str, line: usize) -> Result<String, String> {
    let nested = item.is_empty()
        || item.starts_with(['{', '[', '!', '&', '*', '|', '>'])
        || key_of(item).is_some();
    if nested {
        return Err(format!(
            "`{what}` item `{item}` (line {line}) is not a plain name"
        ));
    }
    Ok(unquote(item))
}

fn unquote(text: &str) -> String {
    let quoted = |q: char| text.len() >= 2 && text.starts_with(q) && text.ends_with(q);
    if quoted('"') {
        text[1..text.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else if quoted('\'') {
        text[1..text.len() - 1].replace("''", "'")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::rule_event_names;

    const TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: >-
  Not a key: Resources: nor eventName: here.

Resources:
  PolicyDriftFunctionRole:
    Type: AWS::IAM::Role
  PolicyDriftFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          SELF_ROLE_ARN: !GetAtt PolicyDriftFunctionRole.Arn # a tag plain YAML refuses
      Events:
        Sweep:
          Type: Schedule
          Properties:
            Schedule: rate(6 hours)
        KeyChanged:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.kms]
              detail:
                eventSource: [kms.amazonaws.com]
                eventName:
                  - PutKeyPolicy   # the policy
                  # the function's own calls are excluded below

                  - "DisableKey"
                  - 'CreateAlias'
                $or:
                  - userIdentity:
                      arn:
                        - anything-but: !GetAtt PolicyDriftFunctionRole.Arn
  Other:
    Type: AWS::SNS::Topic

Outputs:
  Arn:
    Value: !GetAtt PolicyDriftFunction.Arn
"#;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    fn with_event_names(yaml: &str) -> String {
        format!(
            "Resources:\n  F:\n    Properties:\n      Events:\n        E:\n          Properties:\n            Pattern:\n              detail:\n{yaml}"
        )
    }

    #[test]
    fn block_list_with_comments_quotes_and_tags() {
        assert_eq!(
            rule_event_names(TEMPLATE, "PolicyDriftFunction", "KeyChanged"),
            Ok(names(&["PutKeyPolicy", "DisableKey", "CreateAlias"]))
        );
    }

    #[test]
    fn flow_list() {
        let template =
            with_event_names("                eventName: [PutKeyPolicy, \"DisableKey\", 'a,b',]\n");
        assert_eq!(
            rule_event_names(&template, "F", "E"),
            Ok(names(&["PutKeyPolicy", "DisableKey", "a,b"]))
        );
    }

    #[test]
    fn flow_list_over_several_lines() {
        let template = with_event_names(
            "                eventName: [PutKeyPolicy, # first\n                  DisableKey]\n                eventSource: [kms.amazonaws.com]\n",
        );
        assert_eq!(
            rule_event_names(&template, "F", "E"),
            Ok(names(&["PutKeyPolicy", "DisableKey"]))
        );
    }

    #[test]
    fn block_list_level_with_its_key() {
        let template = with_event_names(
            "                eventName:\n                - PutKeyPolicy\n                - DisableKey\n                eventSource: [kms.amazonaws.com]\n",
        );
        assert_eq!(
            rule_event_names(&template, "F", "E"),
            Ok(names(&["PutKeyPolicy", "DisableKey"]))
        );
    }

    #[test]
    fn four_space_indentation_and_quoted_keys() {
        let template = "Resources:\n    F:\n        Properties:\n            Events:\n                E:\n                    Properties:\n                        Pattern:\n                            \"detail\":\n                                'eventName':\n                                    - CreateKey\n";
        assert_eq!(
            rule_event_names(template, "F", "E"),
            Ok(names(&["CreateKey"]))
        );
    }

    #[test]
    fn other_event_of_the_function_has_no_pattern() {
        let error = rule_event_names(TEMPLATE, "PolicyDriftFunction", "Sweep").unwrap_err();
        assert_eq!(
            error,
            "`Pattern` not found under `Resources > PolicyDriftFunction > Properties > Events > Sweep > Properties`"
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        let error = rule_event_names(TEMPLATE, "PolicyDrift", "KeyChanged").unwrap_err();
        assert_eq!(error, "`PolicyDrift` not found under `Resources`");

        let error = rule_event_names(TEMPLATE, "PolicyDriftFunction", "KeyChange").unwrap_err();
        assert_eq!(
            error,
            "`KeyChange` not found under `Resources > PolicyDriftFunction > Properties > Events`"
        );

        let error = rule_event_names("Outputs:\n  A:\n    Value: b\n", "F", "E").unwrap_err();
        assert_eq!(error, "no top-level `Resources:` section");

        let error = rule_event_names("Resources:\n", "F", "E").unwrap_err();
        assert_eq!(error, "`F` not found under `Resources`");
    }

    #[test]
    fn malformed_event_name_lists_are_refused() {
        let error = rule_event_names(
            &with_event_names("                eventSource: [x]\n"),
            "F",
            "E",
        )
        .unwrap_err();
        assert_eq!(
            error,
            "`eventName` not found under `Resources > F > Properties > Events > E > Properties > Pattern > detail`"
        );

        let error = rule_event_names(
            &with_event_names("                eventName:\n                eventSource: [x]\n"),
            "F",
            "E",
        )
        .unwrap_err();
        assert!(error.contains("`Resources > F > Properties > Events > E > Properties > Pattern > detail > eventName` has no value"), "{error}");

        let error = rule_event_names(
            &with_event_names("                eventName: PutKeyPolicy\n"),
            "F",
            "E",
        )
        .unwrap_err();
        assert!(
            error.contains("is `PutKeyPolicy` (line 9), not a list"),
            "{error}"
        );

        let error = rule_event_names(
            &with_event_names(
                "                eventName:\n                  - anything-but: Decrypt\n",
            ),
            "F",
            "E",
        )
        .unwrap_err();
        assert!(
            error.contains("item `anything-but: Decrypt` (line 10) is not a plain name"),
            "{error}"
        );

        let error = rule_event_names(
            &with_event_names("                eventName: [PutKeyPolicy,\n"),
            "F",
            "E",
        )
        .unwrap_err();
        assert!(
            error.contains("flow list opened on line 9 is not closed"),
            "{error}"
        );

        let error = rule_event_names(
            &with_event_names(
                "                eventName:\n                  - A\n                    B\n",
            ),
            "F",
            "E",
        )
        .unwrap_err();
        assert!(
            error.contains("item continues or nests on line 11"),
            "{error}"
        );

        let error = rule_event_names(
            &with_event_names("                eventName:\n                  prefix: Put\n"),
            "F",
            "E",
        )
        .unwrap_err();
        assert!(
            error.contains("is a mapping (line 10: `prefix: Put`), not a list"),
            "{error}"
        );
    }

    #[test]
    fn inline_mapping_and_duplicate_keys_are_refused() {
        let template = "Resources:\n  F:\n    Properties:\n      Events:\n        E:\n          Properties:\n            Pattern: {detail: {eventName: [A]}}\n";
        assert_eq!(
            rule_event_names(template, "F", "E"),
            Err("`Resources > F > Properties > Events > E > Properties > Pattern` is not a block mapping (line 7: `{detail: {eventName: [A]}}`)".to_string())
        );

        let template = "Resources:\n  F:\n    Type: A\n  F:\n    Type: B\n";
        assert_eq!(
            rule_event_names(template, "F", "E"),
            Err("`Resources > F` appears twice (lines 2 and 4)".to_string())
        );
    }
}
