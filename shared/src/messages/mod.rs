//! Messages in the user's language: violations, routes and the next hop, in English and
//! Japanese, rendered from `&'static str` templates with `{name}` placeholders.
//!
//! A [`Violation`] carries the facts its message states as [`Violation::params`], and, where a
//! rule has several sentences, the sentence's key as the `case` param. [`violation`] looks up
//! the template of (rule, case) in the language's catalogue (`violations_en.rs`,
//! `violations_ja.rs`) and fills each placeholder from:
//!
//! 1. the param of that name, translated when its value is a term (a kind of resource, a kind of
//!    address, ...; see [`term`]), else as is (names, prefixes, counts);
//! 2. else a phrase made of several params (`{owner}`: "VNet \"hub\" (tenant \"acme\")"; see
//!    `derived`).
//!
//! The English rendering equals [`Violation::message`] (a test checks it for every rule and
//! case), so the English detail for support and the translated one say the same thing. A
//! violation whose (rule, case) has no template (from a newer server) renders as its English
//! message, or in Japanese as the rule's sentence ([`rule`]).
//!
//! The routes half ([`route_origin`], [`next_hop`], [`location`], [`hop`], [`outcome`],
//! [`next_hop_error`]) renders the structured route types the same way; `routes.rs`.
//!
//! Rule-independent case: `other_tenant` (what [`crate::validate::visible_to`] answers when only
//! another tenant's resources break a rule) has one template for every rule.

use std::collections::BTreeMap;

use crate::rules::RuleId;
use crate::validate::Violation;

mod routes;
mod rules_ja;
mod terms;
mod violations_en;
mod violations_ja;

pub use routes::{hop, hop_reason, location, next_hop, next_hop_error, outcome, route_origin};

/// A language of the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Ja,
}

/// The param that selects a rule's sentence when it has several.
pub const CASE: &str = "case";

/// The case of every rule-independent template (see the module documentation).
pub const OTHER_TENANT: &str = "other_tenant";

/// Every (rule, case) the validator produces, in catalogue order (the English catalogue's keys;
/// the Japanese one has the same, a test checks it).
pub fn cases() -> impl Iterator<Item = (RuleId, &'static str)> {
    violations_en::TEMPLATES.iter().map(|(r, c, _)| (*r, *c))
}

/// The template of (rule, case) in `lang`, if the catalogue has one.
pub fn template(rule: RuleId, case: &str, lang: Lang) -> Option<&'static str> {
    let table = match lang {
        Lang::En => violations_en::TEMPLATES,
        Lang::Ja => violations_ja::TEMPLATES,
    };
    if case == OTHER_TENANT {
        return Some(match lang {
            Lang::En => violations_en::OTHER_TENANT_TEMPLATE,
            Lang::Ja => violations_ja::OTHER_TENANT_TEMPLATE,
        });
    }
    table
        .iter()
        .find(|(r, c, _)| *r == rule && *c == case)
        .map(|(_, _, t)| *t)
}

/// The case of `v` (empty when its rule has one sentence).
pub fn case_of(v: &Violation) -> &str {
    v.params.get(CASE).map(String::as_str).unwrap_or_default()
}

/// `v`'s detail in `lang`, with its facts (see the module documentation).
pub fn violation(v: &Violation, lang: Lang) -> String {
    match template(v.rule, case_of(v), lang) {
        Some(t) => fill(t, lang, &v.params),
        None => match lang {
            Lang::En => v.message.clone(),
            Lang::Ja => rule(v.rule, lang).to_owned(),
        },
    }
}

/// The one-sentence description of `rule` in `lang` (English: [`RuleId::description`]).
pub fn rule(rule: RuleId, lang: Lang) -> &'static str {
    match lang {
        Lang::En => rule.description(),
        Lang::Ja => rules_ja::rule_ja(rule),
    }
}

/// The placeholders of `template`, in order (`{name}` → `name`).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// `template` with each `{name}` replaced by [`value`]; an unknown placeholder is left as it is
/// (a test makes sure none is).
pub fn fill(template: &str, lang: Lang, params: &BTreeMap<String, String>) -> String {
    fill_with(template, &|k| value(lang, k, params))
}

/// The substitution itself: `{name}` → `lookup(name)`, or left as is when `None`.
pub(crate) fn fill_with(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after[..end];
        match lookup(key) {
            Some(v) => out.push_str(&v),
            None => {
                out.push('{');
                out.push_str(key);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The value of placeholder `key`: a param (translated when a term), else a derived phrase.
pub fn value(lang: Lang, key: &str, params: &BTreeMap<String, String>) -> Option<String> {
    match params.get(key) {
        Some(v) => Some(term(lang, key, v).map_or_else(|| v.clone(), str::to_owned)),
        None => terms::derived(lang, key, params),
    }
}

/// The text of a term param (`kind` = `site`, `problem` = `private`, ...) in `lang`, or `None`
/// when the value is not a term (a name, a prefix) and is shown as is.
pub fn term(lang: Lang, key: &str, value: &str) -> Option<&'static str> {
    terms::term(lang, key, value)
}
