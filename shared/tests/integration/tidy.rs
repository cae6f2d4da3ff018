//! Tidy checks: every rule id is named by a test.

use isthmus_shared::rules::RuleId;

const SOURCES: &[&str] = &[
    include_str!("rules.rs"),
    include_str!("faq.rs"),
    include_str!("routes.rs"),
    include_str!("psk.rs"),
    include_str!("desired.rs"),
    include_str!("props.rs"),
    include_str!("isolation.rs"),
    include_str!("reserved.rs"),
];

#[test]
fn every_rule_id_is_named_by_a_test() {
    let names: Vec<&str> = SOURCES
        .iter()
        .flat_map(|s| s.lines())
        .filter_map(|l| l.trim().strip_prefix("fn "))
        .map(|l| l.split('(').next().unwrap_or(""))
        .collect();
    let mut missing = Vec::new();
    for rule in RuleId::ALL {
        let id = rule.as_str().to_ascii_lowercase().replace('-', "_");
        let hit = names
            .iter()
            .any(|n| n.starts_with(&format!("{id}_")) || n.contains(&format!("_{id}_")));
        if !hit {
            missing.push(rule.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "rule ids without a test naming them: {missing:?}"
    );
}

#[test]
fn every_rule_has_a_description() {
    for rule in RuleId::ALL {
        assert!(rule.description().ends_with('.'), "{rule}");
    }
}
