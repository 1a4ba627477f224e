//! `Extractor` implementations over the places AWS events carry trace context.
// Stub: filled in by the trigger parsing work.
#![allow(missing_docs)]
use opentelemetry::propagation::Extractor;
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Debug)]
pub struct HeaderCarrier<'a>(pub &'a Map<String, Value>);
#[derive(Debug)]
pub struct SnsAttributeCarrier<'a>(pub &'a Map<String, Value>);
#[derive(Debug)]
pub struct SqsAttributeCarrier<'a> { pub message_attributes: Option<&'a Map<String, Value>>, pub system_attributes: Option<&'a Map<String, Value>> }
#[derive(Debug)]
pub struct JsonMapCarrier<'a>(pub &'a Map<String, Value>);
#[derive(Debug)]
pub struct ClientContextCarrier<'a>(pub &'a HashMap<String, String>);

impl Extractor for HeaderCarrier<'_> { fn get(&self, _k: &str) -> Option<&str> { None } fn keys(&self) -> Vec<&str> { vec![] } }
impl Extractor for SnsAttributeCarrier<'_> { fn get(&self, _k: &str) -> Option<&str> { None } fn keys(&self) -> Vec<&str> { vec![] } }
impl Extractor for SqsAttributeCarrier<'_> { fn get(&self, _k: &str) -> Option<&str> { None } fn keys(&self) -> Vec<&str> { vec![] } }
impl Extractor for JsonMapCarrier<'_> { fn get(&self, _k: &str) -> Option<&str> { None } fn keys(&self) -> Vec<&str> { vec![] } }
impl Extractor for ClientContextCarrier<'_> { fn get(&self, k: &str) -> Option<&str> { self.0.get(k).map(String::as_str) } fn keys(&self) -> Vec<&str> { self.0.keys().map(String::as_str).collect() } }
