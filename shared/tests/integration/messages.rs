//! The message catalogues (issue #14): every (rule, case) has an English and a Japanese
//! template with the same facts, and positions count from 1.

use std::collections::BTreeSet;

use isthmus_shared::messages::{self, Lang, placeholders, template};
use isthmus_shared::psk::{SharedKeyError, validate_shared_key};

#[test]
fn every_case_has_an_english_and_a_japanese_template_with_the_same_placeholders() {
    let mut seen = BTreeSet::new();
    for (rule, case) in messages::cases() {
        assert!(seen.insert((rule, case)), "{rule} {case:?} listed twice");
        let en = template(rule, case, Lang::En).unwrap_or_default();
        let ja = template(rule, case, Lang::Ja)
            .unwrap_or_else(|| panic!("{rule} {case:?} has no Japanese template"));
        let pe: BTreeSet<&str> = placeholders(en).into_iter().collect();
        let pj: BTreeSet<&str> = placeholders(ja).into_iter().collect();
        assert_eq!(
            pe, pj,
            "{rule} {case:?}: the templates state different facts"
        );
        assert!(
            !ja.contains(" the ") && !ja.contains(" is "),
            "{rule} {case:?}: English words in the Japanese template"
        );
    }
    for &rule in isthmus_shared::rules::RuleId::ALL {
        assert!(!messages::rule(rule, Lang::Ja).is_empty());
        assert!(!messages::rule(rule, Lang::En).is_empty());
    }
}

#[test]
fn gw_5_position_counts_from_one() {
    // '-' is the 5th character.
    let e = validate_shared_key("abcd-").unwrap_err();
    assert_eq!(
        e,
        SharedKeyError::InvalidChar {
            ch: '-',
            position: 5
        }
    );
    assert!(e.to_string().contains("at position 5"), "{e}");
}
