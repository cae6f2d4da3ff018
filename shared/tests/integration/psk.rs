//! Shared keys: generation, GW-5 validation and the derived WireGuard preshared key.

use isthmus_shared::model::QualifiedName;
use isthmus_shared::psk::{
    DeriveError, PeerIdentity, SharedKeyError, derive_preshared_key, generate_shared_key, psk_info,
    validate_shared_key,
};

/// A deterministic splitmix64 generator for tests.
pub struct TestRng(pub u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn gw(t: &str, n: &str) -> PeerIdentity {
    PeerIdentity::gateway(&QualifiedName::new(t, n))
}

#[test]
fn gw_4_generated_keys_are_32_alphanumerics_and_distinct() {
    let mut rng = TestRng(7);
    let keys: std::collections::BTreeSet<String> =
        (0..1000).map(|_| generate_shared_key(&mut rng)).collect();
    assert_eq!(keys.len(), 1000);
    for k in &keys {
        assert_eq!(k.len(), 32);
        assert!(validate_shared_key(k).is_ok());
    }
    // Same seed, same key: the randomness is the caller's.
    assert_eq!(
        generate_shared_key(&mut TestRng(1)),
        generate_shared_key(&mut TestRng(1))
    );
}

#[test]
fn gw_4_generated_keys_use_the_whole_alphabet_evenly() {
    let mut rng = TestRng(99);
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..2000 {
        for c in generate_shared_key(&mut rng).chars() {
            *counts.entry(c).or_insert(0u32) += 1;
        }
    }
    assert_eq!(counts.len(), 62);
    // 64,000 characters over 62 symbols: about 1032 each.
    assert!(
        counts.values().all(|&n| (850..1250).contains(&n)),
        "{counts:?}"
    );
}

#[test]
fn gw_5_validation_examples() {
    assert_eq!(validate_shared_key("a"), Ok(()));
    assert_eq!(validate_shared_key(&"Z9".repeat(64)), Ok(()));
    assert_eq!(
        validate_shared_key(&"a".repeat(129)),
        Err(SharedKeyError::TooLong { len: 129 })
    );
    assert_eq!(
        validate_shared_key("abc-123"),
        Err(SharedKeyError::InvalidChar {
            ch: '-',
            position: 4
        })
    );
    assert_eq!(
        validate_shared_key(" abc"),
        Err(SharedKeyError::InvalidChar {
            ch: ' ',
            position: 1
        })
    );
    assert_eq!(validate_shared_key(""), Err(SharedKeyError::Empty));
    let msg = validate_shared_key("abc-123").unwrap_err().to_string();
    assert!(msg.contains("only ASCII letters and digits"), "{msg}");
}

/// Vectors computed with Python's `hmac`/`hashlib` (HKDF-SHA256 by RFC 5869, written out by
/// hand there), independently of the `hkdf` crate.
#[test]
fn derived_psk_test_vectors() {
    let cases = [
        (
            "abc123",
            gw("acme", "hub-gw"),
            gw("acme", "spoke-gw"),
            "f0ed395f5c50c8104e864ea5308df080b14db8ba74cadf0a684823b82c1cfa20",
            "8O05X1xQyBBOhk6lMI3wgLFNuLp0yt8KaEgjuCwc+iA=",
        ),
        (
            "K3yFromTheUser",
            gw("acme", "hub-gw"),
            PeerIdentity::site(&QualifiedName::new("acme", "branch")),
            "4925fbf3b590eacb7a9b90ae87c41e781c5634399e2da2947620cb38eabe690b",
            "SSX787WQ6st6m5Cuh8QeeBxWNDmeLaKUdiDLOOq+aQs=",
        ),
        (
            "abc123",
            gw("acme", "hub-gw"),
            gw("globex", "edge-gw"),
            "5b1bf3f73c99f1e0719ef8585fdec6a4be375003f9d00564c87ab084d7f258d7",
            "Wxvz9zyZ8eBxnvhYX97GpL43UAP50AVkyHqwhNfyWNc=",
        ),
    ];
    for (key, a, b, hex, b64) in cases {
        let k = derive_preshared_key(key, &a, &b).unwrap();
        assert_eq!(k.to_hex(), hex);
        assert_eq!(k.to_base64(), b64);
        // Symmetric: both halves derive the same key.
        assert_eq!(derive_preshared_key(key, &b, &a).unwrap(), k);
    }
}

#[test]
fn derived_psk_is_bound_to_key_and_ends() {
    let a = gw("acme", "a");
    let b = gw("acme", "b");
    let c = gw("acme", "c");
    let ab = derive_preshared_key("k1", &a, &b).unwrap();
    assert_ne!(ab, derive_preshared_key("k2", &a, &b).unwrap());
    assert_ne!(ab, derive_preshared_key("k1", &a, &c).unwrap());
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    assert_ne!(
        psk_info(&gw("t", "ab"), &gw("t", "c")),
        psk_info(&gw("t", "a"), &gw("t", "bc"))
    );
    assert!(matches!(
        derive_preshared_key("k", &a, &a),
        Err(DeriveError::SameEnds(_))
    ));
    assert!(matches!(
        derive_preshared_key("bad-key", &a, &b),
        Err(DeriveError::SharedKey(_))
    ));
    assert!(!format!("{ab:?}").contains(&ab.to_hex()));
}
