//! Known-answer tests: RFC 8439 2.8.2 (ChaCha20-Poly1305, as RFC 7634 uses it), the GCM
//! specification's test case 4 (AES-128-GCM), RFC 7748 5.2 (X25519); the other values are
//! computed by an independent reference (Python's hmac, hashlib and `cryptography`, from the
//! formulas of RFC 7296 2.13-2.17).

use super::keys::{child_keys, ike_keys, macs_equal, psk_auth, skeyseed};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Entropy that repeats one byte: deterministic private values.
struct Repeat(u8);

impl Entropy for Repeat {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        out.fill(self.0);
        Ok(())
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

#[test]
fn prf_plus_matches_the_rfc_7296_2_13_reference() {
    let k: Vec<u8> = (0..32).collect();
    let s = b"Ni|Nr|SPIi|SPIr";
    let got = Prf::HmacSha256.plus(&k, s, 100).expect("prf+");
    assert_eq!(
        got.expose(),
        hex(
            "53c84cde72fd7c6ad66d83e8c2b5f60526edf011e9c91a3c09711fa47daedeecd4b99f0c696da3810e3d5d475efa27a7ebd4fa20cf32ec6b02bf5365c1f1606e81b9ec83219d0f89d66daaa2ca14c0ae452c9365892c29323d385f77ae9160aa2252eca7"
        )
    );
    let got = Prf::HmacSha384.plus(&k, s, 100).expect("prf+");
    assert_eq!(
        got.expose(),
        hex(
            "ed88bfa06f6e8481ae5bcaf7db18bfab1e379618e5a26f7f1e6f9949d1127e3e1fff9ab074790f019be6b8fd5677eb29b54e63c60aa17c5fb6605f2cba1fe75b2eaf856cda5e637aef35f849caa90072f62bee3f8daa0a5a824d279e55be6695eb30816a"
        )
    );
}

#[test]
fn prf_plus_refuses_more_than_255_blocks() {
    assert_eq!(
        Prf::HmacSha256.plus(b"k", b"s", 255 * 32 + 1),
        Err(CryptoError::PrfPlusTooLong)
    );
    assert!(Prf::HmacSha256.plus(b"k", b"s", 255 * 32).is_ok());
}

#[test]
fn ike_sa_keys_auth_and_child_keys_match_the_reference() {
    let (ni, nr, gir) = (vec![0x11; 32], vec![0x22; 32], Secret::new(vec![0x33; 32]));
    let seed = skeyseed(Prf::HmacSha256, &ni, &nr, &gir);
    assert_eq!(
        seed.expose(),
        hex("27d5c053aba7808dccba40fc66bfa0094129483e592db687e7345ec0550da58e")
    );
    let k = ike_keys(
        Prf::HmacSha256,
        Aead::AesGcm16_256,
        &seed,
        &ni,
        &nr,
        0x0102_0304_0506_0708,
        0x1112_1314_1516_1718,
    )
    .expect("keys");
    assert_eq!(
        k.sk_d.expose(),
        hex("df4ad28668da8188ce5defec720ccf0c251f31cdf3a882fd5f855743dc144686")
    );
    assert_eq!(
        k.sk_ei.expose(),
        hex("c9ae3d42239d6c8bbf6a6ef5a1caf7cec80ea790d4d352afa83b76ce6f5c3c6c00689060")
    );
    assert_eq!(
        k.sk_er.expose(),
        hex("bbd7e4453dc5195c4a1f27d7ac0c4e52418349c6934c39421ea57ca39d64b919ac44bb5b")
    );
    assert_eq!(
        k.sk_pi.expose(),
        hex("1ebdedbf7e79b38d87ef01ed4d08143494d703625c83cebcade673827ec93a64")
    );
    assert_eq!(
        k.sk_pr.expose(),
        hex("3559b414b4091b801552e64a534781e0a73af40d90e9386412738b2b053adc5a")
    );

    let psk = Secret::from_slice(b"correct horse battery staple");
    let id_body = [&[2u8, 0, 0, 0][..], b"site.example"].concat();
    let auth = psk_auth(Prf::HmacSha256, &psk, &[1; 100], &nr, &k.sk_pi, &id_body);
    let want = hex("d38c0f44fd8d6f55f6a50760a08e9c58e2fcb0ea6667ab47ea281190ff4a4c91");
    assert!(macs_equal(auth.expose(), &want));
    assert!(!macs_equal(auth.expose(), &want[..31]));

    let c = child_keys(Prf::HmacSha256, Aead::AesGcm16_256, &k.sk_d, None, &ni, &nr)
        .expect("child keys");
    assert_eq!(
        c.initiator_to_responder.expose(),
        hex("f0e4d386b43427f8cb05c2858604f7046dd5ffd9afc07cb74e76051330ff1407d7155cc8")
    );
    assert_eq!(
        c.responder_to_initiator.expose(),
        hex("514928ab12edd66c8564d70b0ee9afe48ba7510c1729d1c4f54e3387ceedb26a48bf146a")
    );
}

fn roundtrip(aead: Aead, key: &[u8], salt: &[u8], iv: &[u8], aad: &[u8], pt: &[u8], ct: &str) {
    let k = aead.key(&Secret::new([key, salt].concat())).expect("key");
    let mut iv8 = [0u8; 8];
    iv8.copy_from_slice(iv);
    let mut buf = pt.to_vec();
    k.seal(&iv8, aad, &mut buf).expect("seal");
    assert_eq!(buf, hex(ct), "{aead:?}");
    let n = k.open(&iv8, aad, &mut buf).expect("open");
    assert_eq!(&buf[..n], pt);
    let mut tampered = hex(ct);
    tampered[3] ^= 1;
    assert_eq!(
        k.open(&iv8, aad, &mut tampered),
        Err(CryptoError::Integrity)
    );
}

#[test]
fn chacha20_poly1305_matches_rfc_8439_2_8_2_with_the_rfc_7634_nonce() {
    // RFC 7634 2: nonce = salt (the last 4 bytes of the key material) | IV.
    let key: Vec<u8> = (0x80..0xa0).collect();
    roundtrip(
        Aead::ChaCha20Poly1305,
        &key,
        &hex("07000000"),
        &hex("4041424344454647"),
        &hex("50515253c0c1c2c3c4c5c6c7"),
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691",
    );
}

#[test]
fn aes_gcm_16_matches_the_gcm_test_case_4_with_the_rfc_4106_nonce() {
    let key = hex("feffe9928665731c6d6a8f9467308308");
    let pt = hex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    );
    let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    // RFC 4106 4: nonce = salt | IV.
    let (salt, iv) = (hex("cafebabe"), hex("facedbaddecaf888"));
    roundtrip(
        Aead::AesGcm16_128,
        &key,
        &salt,
        &iv,
        &aad,
        &pt,
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47",
    );
    let key256 = [&key[..], &key[..]].concat();
    roundtrip(
        Aead::AesGcm16_256,
        &key256,
        &salt,
        &iv,
        &aad,
        &pt,
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b",
    );
}

#[test]
fn aead_key_material_of_the_wrong_length_is_refused() {
    assert!(Aead::AesGcm16_128.key(&Secret::new(vec![0; 16])).is_err());
    assert_eq!(Aead::AesGcm16_128.keymat_len(), 20);
    assert_eq!(Aead::AesGcm16_256.keymat_len(), 36);
    assert_eq!(Aead::ChaCha20Poly1305.keymat_len(), 36);
}

#[test]
fn ecp_groups_agree_on_the_reference_shared_secret() {
    let cases = [
        (
            DhGroup::Ecp256,
            "66923754662b8af865bbf2a89dc1edaf7b19647544fd5b1ed4f14e2f886d8adf87747fc97e99a347aeef966318ec1a24e721d7cef7371c20c50adf5358d8030a",
            "3ad3861a95621392516bb593ef05583ed2e5866f5cb6260a3017237fd89b90afd0961c7e37075a6791a39c61f56295b02b6d26567b615e60aa41ee1c8e83388d",
            "0879f690650bf5eb722858bf183c9cd07b5438b8cdb873966f5fad9538a67ba9",
        ),
        (
            DhGroup::Ecp384,
            "78ffcb64de114d38f5dc61dbacf237ed5ec18becd45b6f94461e241a23587e861cb299d26023cce7c20b08feb37761feb20129bcfac8c13822d305d5b8567e174746d7a3435d06fd47461a397cb12ffcd86cf0d4eedf52adb1818fc09c4c654f",
            "72ccde33753762245e015da92e48fa028495522dc42356c7e3df51dcf56a5e19de742acd3a19f79af372dc9705f560d857b90511a0406ac137be61b69599ce4c86c1c5310aedcc4ff0b04abc93ae5c63d15e4a0157cf6ae7ba5fac85e7de6662",
            "a9183809b45771e3cd67a639bae95e51c7fde4d8957c54ca58960b42fd2e6fe330765e160f332d19cc9da71ff7cf80a4",
        ),
    ];
    for (group, pub_a, pub_b, shared) in cases {
        let a = group.generate(&mut Repeat(0x41)).expect("a");
        let b = group.generate(&mut Repeat(0x42)).expect("b");
        assert_eq!(a.public(), hex(pub_a), "{group:?}");
        assert_eq!(b.public(), hex(pub_b), "{group:?}");
        assert_eq!(a.agree(b.public()).expect("agree").expose(), hex(shared));
        assert_eq!(b.agree(a.public()).expect("agree").expose(), hex(shared));
    }
}

#[test]
fn modp_2048_agrees_on_the_reference_shared_secret() {
    let a = DhGroup::Modp2048.generate(&mut Repeat(0x41)).expect("a");
    let b = DhGroup::Modp2048.generate(&mut Repeat(0x42)).expect("b");
    assert_eq!(a.public().len(), 256);
    assert_eq!(
        sha256(a.public()),
        hex("68d19f36b7640eb3102b5ec0ec43436b05a67da4faf03ca2ed3c2e61dfdab772")
    );
    let s = a.agree(b.public()).expect("agree");
    assert_eq!(s.len(), 256);
    assert_eq!(
        sha256(s.expose()),
        hex("ef8bf41f7bcc57d7b50a28e167fd0f5e6de1a0333937c4ef38b99abe86dfa435")
    );
    assert_eq!(b.agree(a.public()).expect("agree"), s);
}

#[test]
fn curve25519_matches_rfc_7748_5_2() {
    struct Bytes(Vec<u8>);
    impl Entropy for Bytes {
        fn fill(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
            out.copy_from_slice(&self.0);
            Ok(())
        }
    }
    let a = DhGroup::Curve25519
        .generate(&mut Bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        )))
        .expect("a");
    let b = DhGroup::Curve25519
        .generate(&mut Bytes(hex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        )))
        .expect("b");
    assert_eq!(
        a.public(),
        hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    let want = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(a.agree(b.public()).expect("agree").expose(), want);
    assert_eq!(b.agree(a.public()).expect("agree").expose(), want);
}

#[test]
fn invalid_peer_public_values_are_refused() {
    for group in [
        DhGroup::Modp2048,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Curve25519,
    ] {
        let k = group.generate(&mut Repeat(0x41)).expect("key");
        // Wrong length.
        assert_eq!(k.agree(&[1, 2, 3]), Err(CryptoError::InvalidPublicValue));
        // All zero: y = 0 (MODP), not on the curve (ECP), a low-order point (X25519).
        let zero = vec![0; group.public_len()];
        assert_eq!(
            k.agree(&zero),
            Err(CryptoError::InvalidPublicValue),
            "{group:?}"
        );
    }
    // MODP: y = 1 and y = p - 1 are refused.
    let k = DhGroup::Modp2048.generate(&mut Repeat(0x41)).expect("key");
    let mut one = vec![0; 256];
    one[255] = 1;
    assert_eq!(k.agree(&one), Err(CryptoError::InvalidPublicValue));
    let mut p_minus_1 = vec![0xff; 256];
    p_minus_1[255] = 0xfe;
    assert_eq!(k.agree(&p_minus_1), Err(CryptoError::InvalidPublicValue));
}

#[test]
fn secrets_never_show_in_debug_output() {
    let s = Secret::from_slice(b"hunter2");
    assert_eq!(format!("{s:?}"), "Secret(7 bytes)");
    let k = DhGroup::Curve25519.generate(&mut Repeat(9)).expect("key");
    assert_eq!(format!("{k:?}"), "DhPrivate(Curve25519)");
    let a = Aead::ChaCha20Poly1305
        .key(&Secret::new(vec![7; 36]))
        .expect("key");
    assert_eq!(format!("{a:?}"), "AeadKey(ChaCha20Poly1305)");
}
