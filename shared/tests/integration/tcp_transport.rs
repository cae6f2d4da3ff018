//! P2S-4: the framing of the point-to-site TCP transport.

use isthmus_shared::tcp_transport::*;
use proptest::prelude::*;

#[test]
fn p2s_4_hello_round_trips_and_rejects_other_streams() {
    let h = Hello {
        gateway_port: 51820,
    };
    let bytes = h.encode();
    assert_eq!(&bytes[..4], b"IWG1");
    assert_eq!(&bytes[4..6], &51820u16.to_be_bytes());
    assert_eq!(Hello::decode(&bytes), Ok(h));
    // A TLS-wrapped HTTP client talking to the port by mistake.
    assert_eq!(Hello::decode(b"GET / HT"), Err(HelloError::BadMagic));
    let mut future = bytes;
    future[7] = 1;
    assert_eq!(Hello::decode(&future), Err(HelloError::Reserved));
    for r in [HelloReply::Accepted, HelloReply::UnknownGateway] {
        assert_eq!(HelloReply::from_byte(r.to_byte()), Some(r));
    }
    assert_eq!(HelloReply::from_byte(7), None);
}

#[test]
fn p2s_4_only_wireguard_shaped_frames_are_relayed() {
    let msg = |t: u8, len: usize| {
        let mut v = vec![0u8; len];
        v[0] = t;
        v
    };
    assert!(is_wireguard_message(&msg(1, 148)));
    assert!(is_wireguard_message(&msg(2, 92)));
    assert!(is_wireguard_message(&msg(3, 64)));
    assert!(is_wireguard_message(&msg(4, 32)), "a keepalive");
    assert!(is_wireguard_message(&msg(4, 32 + 1424)));
    assert!(
        is_wireguard_message(&msg(4, 32 + 28)),
        "unpadded data, as boringtun sends it"
    );
    for bad in [
        msg(1, 147),
        msg(2, 148),
        msg(3, 92),
        msg(4, 31),
        msg(5, 148),
        msg(0, 148),
        Vec::new(),
        vec![1, 0, 0],
    ] {
        assert!(
            !is_wireguard_message(&bad),
            "{:?}",
            &bad[..bad.len().min(8)]
        );
    }
    let mut reserved = msg(1, 148);
    reserved[2] = 1;
    assert!(!is_wireguard_message(&reserved));
}

#[test]
fn p2s_4_frame_header_is_big_endian_and_bounded() {
    assert_eq!(frame_header(0), Some([0, 0]));
    assert_eq!(frame_header(148), Some([0, 148]));
    assert_eq!(frame_header(0x1234), Some([0x12, 0x34]));
    assert_eq!(frame_header(MAX_FRAME), Some([0xff, 0xff]));
    assert_eq!(frame_header(MAX_FRAME + 1), None);
}

proptest! {
    #[test]
    fn p2s_4_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = is_wireguard_message(&bytes);
        if let Some(h) = bytes.first_chunk::<HELLO_LEN>()
            && let Ok(hello) = Hello::decode(h)
        {
            prop_assert_eq!(&hello.encode(), h);
        }
    }
}
