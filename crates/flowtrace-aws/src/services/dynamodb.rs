//! DynamoDB: `PutItem`, `UpdateItem`, `BatchWriteItem` and `TransactWriteItems` write the
//! reserved attribute (a map of `traceparent`/`tracestate`) into the item, where the stream
//! record's `NewImage` carries it to the consumer. Every write span also records the item key
//! hash ([`flowtrace_contract::dynamodb_item_key_hash`]), which the consumer computes from the
//! stream record's `Keys`.

use super::{Request, Undo, string_array};
use crate::config::{Config, table_name};
use crate::inject::{Carrier, Skip, TRACEPARENT, TRACESTATE, skipped};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::create_table::{CreateTableInput, CreateTableOutput};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeAction, AttributeValue, AttributeValueUpdate, ConsumedCapacity, KeySchemaElement, ReturnValue,
};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use flowtrace_contract::{DynamoDbKeyValue, attr, dynamodb_item_key_hash};
use opentelemetry::trace::{SpanKind, SpanRef};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions::attribute as semconv;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// `db.system.name` for DynamoDB.
const SYSTEM: &str = "aws.dynamodb";
/// The largest item DynamoDB stores ("400 KB"; counted conservatively in decimal).
pub(crate) const MAX_ITEM_BYTES: usize = 400_000;

type Item = HashMap<String, AttributeValue>;

/// Key attribute names per table, learned from `CreateTable`/`DescribeTable` and from the
/// `Key` of any call, for the key hash of `PutItem` (whose item does not say which
/// attributes are the key).
fn learned() -> &'static RwLock<HashMap<String, Vec<String>>> {
    static LEARNED: OnceLock<RwLock<HashMap<String, Vec<String>>>> = OnceLock::new();
    LEARNED.get_or_init(|| RwLock::new(HashMap::new()))
}

fn learn<'a>(table: &str, names: impl Iterator<Item = &'a str>) {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    let table = table_name(table);
    // Already known (every call after the first): no copies.
    let known = learned()
        .read()
        .ok()
        .and_then(|map| map.get(table).map(|k| k.iter().map(String::as_str).eq(names.iter().copied())));
    if known != Some(true)
        && let Ok(mut map) = learned().write()
    {
        map.insert(table.to_owned(), names.into_iter().map(str::to_owned).collect());
    }
}

fn learn_schema(table: Option<&str>, schema: Option<&[KeySchemaElement]>) {
    if let (Some(table), Some(schema)) = (table, schema) {
        learn(table, schema.iter().map(|k| k.attribute_name.as_str()));
    }
}

/// The hash of `key`'s attributes, when they are all scalars (and there is at least one).
fn hash_of<'a>(table: &str, key: impl Iterator<Item = (&'a str, &'a AttributeValue)>) -> Option<String> {
    let mut parts = Vec::with_capacity(2);
    for (name, value) in key {
        let value = match value {
            AttributeValue::S(s) => DynamoDbKeyValue::S(s),
            AttributeValue::N(n) => DynamoDbKeyValue::N(n),
            AttributeValue::B(b) => DynamoDbKeyValue::B(b.as_ref()),
            _ => return None,
        };
        parts.push((name, value));
    }
    (!parts.is_empty()).then(|| dynamodb_item_key_hash(table, parts))
}

/// The key hash of a `Key` map.
fn key_hash(table: &str, key: &Item) -> Option<String> {
    hash_of(table, key.iter().map(|(name, value)| (name.as_str(), value)))
}

/// The key hash of a whole item, when the table's key attributes are known (configured, else
/// learned) and all in the item.
fn item_hash(table: &str, item: &Item, config: &Config) -> Option<String> {
    let of_names = |names: &[String]| {
        let key: Vec<(&str, &AttributeValue)> =
            names.iter().map(|name| item.get(name).map(|value| (name.as_str(), value))).collect::<Option<_>>()?;
        hash_of(table, key.into_iter())
    };
    if let Some(names) = config.key_schema(table) {
        return of_names(names);
    }
    let learned = learned().read().ok()?;
    of_names(learned.get(table_name(table))?)
}

fn key_from(table: &str, key: &Item) -> Option<String> {
    learn(table, key.keys().map(String::as_str));
    key_hash(table, key)
}

pub(crate) fn describe(input: &Input, request: &Request<'_>, attributes: &mut Vec<KeyValue>) -> Option<SpanKind> {
    let config = request.config;
    let mut tables: Vec<&str> = Vec::new();
    let mut hashes: Vec<String> = Vec::new();
    if let Some(input) = input.downcast_ref::<PutItemInput>() {
        if let Some(table) = input.table_name.as_deref() {
            tables.push(table);
            hashes.extend(input.item.as_ref().and_then(|item| item_hash(table, item, config)));
        }
    } else if let Some(input) = input.downcast_ref::<UpdateItemInput>() {
        if let Some(table) = input.table_name.as_deref() {
            tables.push(table);
            hashes.extend(input.key.as_ref().and_then(|key| key_from(table, key)));
        }
    } else if let Some(input) = input.downcast_ref::<DeleteItemInput>() {
        if let Some(table) = input.table_name.as_deref() {
            tables.push(table);
            hashes.extend(input.key.as_ref().and_then(|key| key_from(table, key)));
        }
    } else if let Some(input) = input.downcast_ref::<GetItemInput>() {
        if let Some(table) = input.table_name.as_deref() {
            tables.push(table);
            if let Some(key) = input.key.as_ref() {
                learn(table, key.keys().map(String::as_str));
            }
        }
    } else if let Some(input) = input.downcast_ref::<BatchWriteItemInput>() {
        for (table, requests) in input.request_items.iter().flatten() {
            tables.push(table);
            for request in requests {
                if let Some(put) = &request.put_request {
                    hashes.extend(item_hash(table, &put.item, config));
                }
                if let Some(delete) = &request.delete_request {
                    hashes.extend(key_from(table, &delete.key));
                }
            }
        }
    } else if let Some(input) = input.downcast_ref::<TransactWriteItemsInput>() {
        for item in input.transact_items.iter().flatten() {
            if let Some(put) = &item.put {
                tables.push(&put.table_name);
                hashes.extend(item_hash(&put.table_name, &put.item, config));
            }
            if let Some(update) = &item.update {
                tables.push(&update.table_name);
                hashes.extend(key_from(&update.table_name, &update.key));
            }
            if let Some(delete) = &item.delete {
                tables.push(&delete.table_name);
                hashes.extend(key_from(&delete.table_name, &delete.key));
            }
            if let Some(check) = &item.condition_check {
                tables.push(&check.table_name);
            }
        }
    } else if let Some(input) = input.downcast_ref::<CreateTableInput>() {
        learn_schema(input.table_name.as_deref(), input.key_schema.as_deref());
        tables.extend(input.table_name.as_deref());
    }
    attributes.push(KeyValue::new(semconv::DB_SYSTEM_NAME, SYSTEM));
    attributes.push(KeyValue::new(semconv::DB_OPERATION_NAME, request.operation.clone()));
    tables.sort();
    tables.dedup();
    if let [table] = tables.as_slice() {
        // One table (the common case): its name shared by both attributes when it is no ARN.
        let name = table_name(table);
        let shared: Arc<str> = Arc::from(name);
        let raw = if name.len() == table.len() { Arc::clone(&shared) } else { Arc::from(*table) };
        attributes.push(KeyValue::new(semconv::DB_COLLECTION_NAME, shared));
        attributes.push(KeyValue::new(
            semconv::AWS_DYNAMODB_TABLE_NAMES,
            Value::Array(Array::String(vec![StringValue::from(raw)])),
        ));
    } else if !tables.is_empty() {
        attributes.push(KeyValue::new(semconv::AWS_DYNAMODB_TABLE_NAMES, string_array(tables)));
    }
    match hashes.len() {
        0 => {}
        1 => attributes.push(KeyValue::new(attr::DYNAMODB_ITEM_KEY_HASH, hashes.swap_remove(0))),
        _ => attributes.push(KeyValue::new(attr::DYNAMODB_ITEM_KEY_HASHES, string_array(hashes))),
    }
    Some(SpanKind::Client)
}

/// Whether `input` is a call this service injects into (the carrier is only formatted then).
pub(crate) fn injectable(input: &Input) -> bool {
    input.downcast_ref::<PutItemInput>().is_some()
        || input.downcast_ref::<UpdateItemInput>().is_some()
        || input.downcast_ref::<BatchWriteItemInput>().is_some()
        || input.downcast_ref::<TransactWriteItemsInput>().is_some()
}

pub(crate) fn inject(input: &mut Input, carrier: Carrier, span: &SpanRef<'_>, config: &Config) -> Undo {
    let key = config.reserved_key();
    let value = reserved_value(carrier);
    let mut undo = Undo::default();
    if let Some(input) = input.downcast_mut::<PutItemInput>() {
        if let (Some(table), Some(item)) = (input.table_name.as_deref(), input.item.as_mut())
            && may_put(item, table, key, &value, span, config, None)
        {
            item.insert(key.to_owned(), value);
        }
    } else if let Some(input) = input.downcast_mut::<UpdateItemInput>() {
        let Some(table) = input.table_name.as_deref() else {
            return undo;
        };
        if !config.injects_into_table(table) {
            skipped(span, Skip::TableExcluded, None);
            return undo;
        }
        // Asked for the attributes the update changed: flowtrace's change is not the user's.
        undo.reserved_from_updated_attributes =
            matches!(input.return_values, Some(ReturnValue::UpdatedNew | ReturnValue::UpdatedOld));
        let request_size = input.key.as_ref().map_or(0, item_size)
            + input.expression_attribute_values.as_ref().map_or(0, item_size)
            + input
                .attribute_updates
                .as_ref()
                .map_or(0, |u| u.iter().map(|(n, v)| n.len() + v.value.as_ref().map_or(0, value_size)).sum());
        if request_size + key.len() + value_size(&value) > MAX_ITEM_BYTES {
            skipped(span, Skip::TooLarge, None);
            return Undo::default();
        }
        if input.update_expression.is_none()
            && let Some(updates) = input.attribute_updates.as_mut()
        {
            // The legacy form: one more attribute update (expressions cannot be mixed in).
            if updates.contains_key(key) {
                skipped(span, Skip::AlreadyPresent, None);
                return Undo::default();
            }
            let update = AttributeValueUpdate::builder().value(value).action(AttributeAction::Put).build();
            updates.insert(key.to_owned(), update);
            return undo;
        }
        let merged = merge_update(
            input.update_expression.as_deref(),
            &mut input.expression_attribute_names,
            &mut input.expression_attribute_values,
            key,
            value,
        );
        match merged {
            Ok(expression) => input.update_expression = Some(expression),
            Err(reason) => {
                skipped(span, reason, None);
                return Undo::default();
            }
        }
    } else if let Some(input) = input.downcast_mut::<BatchWriteItemInput>() {
        for (table, requests) in input.request_items.iter_mut().flatten() {
            for (index, request) in requests.iter_mut().enumerate() {
                if let Some(put) = request.put_request.as_mut() {
                    let entry = Some(format!("{table}[{index}]"));
                    if may_put(&put.item, table, key, &value, span, config, entry) {
                        put.item.insert(key.to_owned(), value.clone());
                    }
                }
            }
        }
    } else if let Some(input) = input.downcast_mut::<TransactWriteItemsInput>() {
        for (index, item) in input.transact_items.iter_mut().flatten().enumerate() {
            let entry = Some(index.to_string());
            if let Some(put) = item.put.as_mut() {
                if may_put(&put.item, &put.table_name, key, &value, span, config, entry) {
                    put.item.insert(key.to_owned(), value.clone());
                }
            } else if let Some(update) = item.update.as_mut() {
                if !config.injects_into_table(&update.table_name) {
                    skipped(span, Skip::TableExcluded, entry);
                    continue;
                }
                let merged = merge_update(
                    Some(update.update_expression.as_str()),
                    &mut update.expression_attribute_names,
                    &mut update.expression_attribute_values,
                    key,
                    value.clone(),
                );
                match merged {
                    Ok(expression) => update.update_expression = expression,
                    Err(reason) => skipped(span, reason, entry),
                }
            }
        }
    }
    undo
}

/// Removes the reserved attribute from `UpdateItem`'s returned attributes.
pub(crate) fn remove_reserved_from_output(output: &mut Output, config: &Config) {
    if let Some(output) = output.downcast_mut::<UpdateItemOutput>()
        && let Some(attributes) = output.attributes.as_mut()
    {
        attributes.remove(config.reserved_key());
        if attributes.is_empty() {
            output.attributes = None;
        }
    }
}

/// The reserved attribute's value: `{"M": {"traceparent": {"S": ...}, "tracestate": ...}}`
/// (the carrier's strings move into it).
fn reserved_value(carrier: Carrier) -> AttributeValue {
    let mut map = HashMap::with_capacity(if carrier.tracestate.is_some() { 2 } else { 1 });
    map.insert(TRACEPARENT.to_owned(), AttributeValue::S(carrier.traceparent));
    if let Some(state) = carrier.tracestate {
        map.insert(TRACESTATE.to_owned(), AttributeValue::S(state));
    }
    AttributeValue::M(map)
}

/// Whether the reserved attribute may be added to a whole item (`PutItem`, batch and
/// transaction puts); when not, the span says why.
fn may_put(
    item: &Item,
    table: &str,
    key: &str,
    value: &AttributeValue,
    span: &SpanRef<'_>,
    config: &Config,
    entry: Option<String>,
) -> bool {
    let reason = if !config.injects_into_table(table) {
        Skip::TableExcluded
    } else if item.contains_key(key) {
        Skip::AlreadyPresent
    } else if item_size(item) + key.len() + value_size(value) > MAX_ITEM_BYTES {
        Skip::TooLarge
    } else {
        return true;
    };
    skipped(span, reason, entry);
    false
}

/// An upper bound of the size DynamoDB counts for an item (names plus values).
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len() + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(|s| s.len() + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::M(m) => 3 + m.iter().map(|(n, v)| 1 + n.len() + value_size(v)).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Adds `SET <#name> = <:value>` to an update expression, with placeholders that collide
/// with none of the user's; the user's clauses, names and values stay as they were.
pub(crate) fn merge_update(
    expression: Option<&str>,
    names: &mut Option<HashMap<String, String>>,
    values: &mut Option<HashMap<String, AttributeValue>>,
    key: &str,
    value: AttributeValue,
) -> Result<String, Skip> {
    let expression = expression.unwrap_or("");
    // The user updates the reserved attribute themselves: theirs wins.
    if names.as_ref().is_some_and(|n| n.values().any(|v| v == key)) || contains_word(expression, key) {
        return Err(Skip::AlreadyPresent);
    }
    let name = free_placeholder('#', names.as_ref().map(|n| n.keys()));
    let placeholder = free_placeholder(':', values.as_ref().map(|v| v.keys()));
    let action = format!("{name} = {placeholder}");
    let merged = if expression.trim().is_empty() {
        format!("SET {action}")
    } else {
        match find_set_clause(expression) {
            // `SET a = :a` → `SET #flowtrace = :flowtrace, a = :a`
            Some(after_set) => {
                let (head, tail) = expression.split_at(after_set);
                let tail = tail.trim_start();
                if tail.is_empty() {
                    return Err(Skip::UnmergeableExpression);
                }
                format!("{head} {action}, {tail}")
            }
            // `REMOVE b` → `SET #flowtrace = :flowtrace REMOVE b`
            None => format!("SET {action} {expression}"),
        }
    };
    names.get_or_insert_with(HashMap::new).insert(name, key.to_owned());
    values.get_or_insert_with(HashMap::new).insert(placeholder, value);
    Ok(merged)
}

/// `#flowtrace`, or `#flowtrace1`, `#flowtrace2`... when taken.
fn free_placeholder<'a>(sigil: char, taken: Option<impl Iterator<Item = &'a String>>) -> String {
    let taken: Vec<&String> = taken.map(Iterator::collect).unwrap_or_default();
    let base = format!("{sigil}flowtrace");
    let mut candidate = base.clone();
    let mut n = 0_u32;
    while taken.iter().any(|t| **t == candidate) {
        n += 1;
        candidate = format!("{base}{n}");
    }
    candidate
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `word` appears in `expression` as a bare attribute name (not part of a longer
/// name, a placeholder or a path segment's neighbour).
fn contains_word(expression: &str, word: &str) -> bool {
    let bytes = expression.as_bytes();
    expression.match_indices(word).any(|(at, _)| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i)).copied();
        let after = bytes.get(at + word.len()).copied();
        !before.is_some_and(|b| is_word_byte(b) || b == b'#' || b == b':') && !after.is_some_and(is_word_byte)
    })
}

/// The byte offset just past a top-level `SET` keyword (any case), if the expression has a
/// SET clause. Words inside function calls, placeholders (`#set`, `:set`) and longer names
/// (`settings`) are not keywords; `SET`, `REMOVE`, `ADD` and `DELETE` are reserved words, so
/// a bare attribute cannot be named so.
fn find_set_clause(expression: &str) -> Option<usize> {
    let bytes = expression.as_bytes();
    let mut depth = 0_i32;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            _ if is_word_byte(b) => {
                let start = i;
                while bytes.get(i).copied().is_some_and(is_word_byte) {
                    i += 1;
                }
                let prefixed =
                    start.checked_sub(1).and_then(|p| bytes.get(p)).is_some_and(|p| matches!(p, b'#' | b':' | b'.'));
                if depth == 0 && !prefixed && expression.get(start..i).is_some_and(|w| w.eq_ignore_ascii_case("SET")) {
                    return Some(i);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

pub(crate) fn record_output(output: &Output, span: &SpanRef<'_>) {
    let capacity: Option<&ConsumedCapacity> = if let Some(output) = output.downcast_ref::<PutItemOutput>() {
        output.consumed_capacity.as_ref()
    } else if let Some(output) = output.downcast_ref::<UpdateItemOutput>() {
        output.consumed_capacity.as_ref()
    } else if let Some(output) = output.downcast_ref::<DeleteItemOutput>() {
        output.consumed_capacity.as_ref()
    } else {
        if let Some(output) = output.downcast_ref::<CreateTableOutput>()
            && let Some(table) = &output.table_description
        {
            learn_schema(table.table_name.as_deref(), table.key_schema.as_deref());
        }
        if let Some(output) = output.downcast_ref::<DescribeTableOutput>()
            && let Some(table) = &output.table
        {
            learn_schema(table.table_name.as_deref(), table.key_schema.as_deref());
        }
        None
    };
    if let Some(capacity) = capacity {
        let json = serde_json::json!({
            "TableName": capacity.table_name,
            "CapacityUnits": capacity.capacity_units,
            "ReadCapacityUnits": capacity.read_capacity_units,
            "WriteCapacityUnits": capacity.write_capacity_units,
        });
        span.set_attribute(KeyValue::new(semconv::AWS_DYNAMODB_CONSUMED_CAPACITY, string_array([json.to_string()])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(expression: Option<&str>, names: &[(&str, &str)], values: &[&str]) -> Result<(String, Vec<String>), Skip> {
        let mut names: Option<HashMap<String, String>> =
            (!names.is_empty()).then(|| names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        let mut values: Option<HashMap<String, AttributeValue>> = (!values.is_empty())
            .then(|| values.iter().map(|k| ((*k).to_owned(), AttributeValue::S("v".into()))).collect());
        let merged = merge_update(expression, &mut names, &mut values, "_flowtrace", AttributeValue::Null(true))?;
        let mut keys: Vec<String> =
            names.unwrap().into_iter().filter(|(_, v)| v == "_flowtrace").map(|(k, _)| k).collect();
        keys.extend(values.unwrap().into_keys().filter(|k| k.starts_with(":flowtrace")));
        Ok((merged, keys))
    }

    #[test]
    fn merges_into_every_clause_shape() {
        assert_eq!(merge(None, &[], &[]).unwrap().0, "SET #flowtrace = :flowtrace");
        assert_eq!(merge(Some("SET a = :a"), &[], &[":a"]).unwrap().0, "SET #flowtrace = :flowtrace, a = :a");
        assert_eq!(
            merge(Some("REMOVE b ADD c :one"), &[], &[":one"]).unwrap().0,
            "SET #flowtrace = :flowtrace REMOVE b ADD c :one"
        );
        assert_eq!(
            merge(Some("remove b set #s = list_append(#s, :x) delete d :y"), &[("#s", "set")], &[":x", ":y"])
                .unwrap()
                .0,
            "remove b set #flowtrace = :flowtrace, #s = list_append(#s, :x) delete d :y"
        );
        assert_eq!(
            merge(Some("ADD settings :n"), &[], &[":n"]).unwrap().0,
            "SET #flowtrace = :flowtrace ADD settings :n",
            "`settings` is not the SET keyword"
        );
        let (merged, keys) =
            merge(Some("SET #flowtrace = :flowtrace"), &[("#flowtrace", "theirs")], &[":flowtrace"]).unwrap();
        assert_eq!(merged, "SET #flowtrace1 = :flowtrace1, #flowtrace = :flowtrace", "never clobbers the user's");
        assert!(keys.contains(&"#flowtrace1".to_owned()) && keys.contains(&":flowtrace1".to_owned()), "{keys:?}");
    }

    #[test]
    fn leaves_the_reserved_attribute_to_the_user() {
        assert_eq!(merge(Some("SET #k = :v"), &[("#k", "_flowtrace")], &[":v"]), Err(Skip::AlreadyPresent));
        assert_eq!(merge(Some("REMOVE _flowtrace"), &[], &[]), Err(Skip::AlreadyPresent));
        assert!(merge(Some("REMOVE _flowtraces"), &[], &[]).is_ok());
    }

    #[test]
    fn item_size_counts_nested_values() {
        let mut item = Item::new();
        item.insert("id".into(), AttributeValue::S("abc".into()));
        item.insert("m".into(), AttributeValue::M([("k".to_owned(), AttributeValue::N("12".into()))].into()));
        assert!(item_size(&item) > 2 + 3 + 1 + 2);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merging_never_panics_and_keeps_the_users_text(expression in "[ -~]{0,40}") {
            let mut names = None;
            let mut values = None;
            if let Ok(merged) = merge_update(Some(&expression), &mut names, &mut values, "_flowtrace", AttributeValue::Null(true)) {
                let ours = "#flowtrace = :flowtrace";
                prop_assert!(merged.contains(ours));
                // Removing our action gives back the user's expression (modulo whitespace).
                let back = merged.replacen(&format!("SET {ours} "), "", 1).replacen(&format!(" {ours},"), "", 1).replacen(&format!("SET {ours}"), "", 1);
                let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                prop_assert_eq!(squash(&back), squash(&expression));
            }
        }
    }
}
