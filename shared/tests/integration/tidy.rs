//! Tidy checks: every rule id is named by a test, enforced by code, and listed in the header of
//! the validator file that enforces it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
    include_str!("ipsec.rs"),
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

/// Rules that forbid nothing, so no code can enforce them: each states a freedom the product
/// keeps by *not* checking something (and a test names it, see above).
const BY_DESIGN: &[(&str, &str)] = &[
    (
        "CONN-1",
        "VNets connect across regions: the validator has no region check",
    ),
    (
        "S2S-3",
        "any WireGuard implementation is a valid site device",
    ),
    (
        "P2S-5",
        "roaming is WireGuard's own: a client's endpoint follows its packets",
    ),
    (
        "P2S-7",
        "throughput is not promised; the cap itself is LIM-4's bucket",
    ),
];

/// Every `.rs` file under `dir`, recursively, as (path, text), sorted by path.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rules named as `RuleId::X` in `text`.
fn rule_ids_used(text: &str) -> BTreeSet<RuleId> {
    RuleId::ALL
        .iter()
        .copied()
        .filter(|r| {
            let needle = format!("RuleId::{r:?}");
            text.match_indices(&needle).any(|(at, _)| {
                !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
            })
        })
        .collect()
}

/// The rule ids of `// enforces: X, Y` markers in `text`.
fn enforces_markers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let comment = l.trim_start().trim_start_matches('/').trim_start();
            comment.strip_prefix("enforces:")
        })
        .flat_map(|ids| ids.split(',').map(|id| id.trim().to_owned()))
        .collect()
}

#[test]
fn every_rule_id_is_enforced_in_shared_or_marked_in_the_worker() {
    let mut found: BTreeSet<String> = sources(&crate_dir().join("src"))
        .iter()
        .flat_map(|(_, text)| rule_ids_used(text))
        .map(|r| r.as_str().to_owned())
        .collect();
    for (path, text) in sources(&crate_dir().join("../worker/src")) {
        for id in enforces_markers(&text) {
            assert!(
                id.parse::<RuleId>().is_ok(),
                "{}: `// enforces: {id}` names no rule",
                path.display()
            );
            found.insert(id);
        }
    }
    for (id, _) in BY_DESIGN {
        assert!(
            !found.contains(*id),
            "{id} is enforced now: take it out of BY_DESIGN"
        );
        found.insert((*id).to_owned());
    }
    let missing: Vec<&str> = RuleId::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|id| !found.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "rule ids neither used as RuleId::X in shared/src nor marked `// enforces: X` in \
         worker/src: {missing:?}"
    );
}

/// The rule ids of a file's `//! Enforces: A, B.` header line (empty when it has none).
fn header_rules(text: &str) -> Option<BTreeSet<String>> {
    text.lines()
        .take_while(|l| l.starts_with("//!"))
        .find_map(|l| l.strip_prefix("//! Enforces:"))
        .map(|ids| {
            ids.trim()
                .trim_end_matches('.')
                .split(',')
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty())
                .collect()
        })
}

#[test]
fn every_validator_file_header_lists_the_rules_it_enforces() {
    let files = sources(&crate_dir().join("src/validate"));
    assert!(files.len() >= 10, "the validator's files moved?");
    for (path, text) in files {
        let used: BTreeSet<String> = rule_ids_used(&text)
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        match header_rules(&text) {
            Some(listed) => assert_eq!(
                listed,
                used,
                "{}: the `//! Enforces:` header differs from the RuleId::X the file uses",
                path.display()
            ),
            None => assert!(
                used.is_empty(),
                "{}: uses {used:?} but has no `//! Enforces:` header",
                path.display()
            ),
        }
    }
}

/// Issue 15: a module has one job; a file past 700 lines is split along its concerns (every
/// crate's sources, not only the four trees the issue named).
#[test]
fn no_source_file_in_the_checked_trees_is_over_700_lines() {
    const MAX_LINES: usize = 700;
    let root = crate_dir().join("..");
    let mut over = Vec::new();
    for tree in [
        "shared/src",
        "worker/src",
        "server/src",
        "frontend/src",
        "client/src",
    ] {
        for (path, text) in sources(&root.join(tree)) {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                over.push(format!("{} ({lines} lines)", path.display()));
            }
        }
    }
    assert!(
        over.is_empty(),
        "split these along their concerns: {over:?}"
    );
}
