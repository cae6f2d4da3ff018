//! Issue #16: the failover state machine of a redundant gateway's two instances
//! (`core::failover`), on a virtual clock: heartbeats, takeover, the term rule, handover, and
//! what untrusted bytes can (not) do.

use std::time::{Duration, Instant, SystemTime};

use isthmus_shared::instances::{HeartbeatKey, InstanceDesired, InstanceRole};
use isthmus_shared::model::QualifiedName;
use isthmus_worker::core::failover::wire::{self, BootId, Heartbeat, WireError};
use isthmus_worker::core::failover::{
    Failover, FailoverError, FailoverEvent, HeartbeatError, StepDownReason, TakeoverReason,
    claimed_gateway, ranks_above,
};
use proptest::prelude::*;

const INTERVAL: Duration = Duration::from_millis(200);
const DETECTION: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);

fn gw() -> QualifiedName {
    QualifiedName::new("contoso", "gw")
}

fn key() -> HeartbeatKey {
    HeartbeatKey::new([0x42; 32])
}

/// Instance `instance`'s desired state: `active` designated at `term`, default timing.
fn desired(instance: u8, active: u8, term: u64) -> InstanceDesired {
    InstanceDesired {
        instance,
        active,
        term,
        // Never used as a destination: these tests send nothing anywhere.
        partner: format!("127.0.0.1:{}", 51900 + u16::from(1 - instance))
            .parse()
            .expect("addr"),
        key: key(),
        interval_ms: 200,
        misses: 5,
        handover: false,
    }
}

fn boot(n: u8) -> BootId {
    BootId([n; 16])
}

fn instance(i: u8, active: u8, term: u64, b: u8, now: Instant) -> Failover {
    Failover::new(gw(), &desired(i, active, term), boot(b), now).expect("instance")
}

fn events(f: &mut Failover) -> Vec<FailoverEvent> {
    std::iter::from_fn(|| f.poll_event()).collect()
}

fn transmits(f: &mut Failover) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| f.poll_transmit())
        .map(|t| t.payload)
        .collect()
}

/// Hands every queued heartbeat of `from` to `to` at `now`; only a first contact (a run that
/// has not echoed `to`'s yet) may be refused.
fn deliver(from: &mut Failover, to: &mut Failover, now: Instant) {
    for p in transmits(from) {
        match to.handle_heartbeat(&p, now) {
            Ok(()) | Err(HeartbeatError::Unconfirmed) => {}
            Err(e) => panic!("a genuine heartbeat refused: {e}"),
        }
    }
}

/// Runs both instances' timers from `from` to `until` on a lossless, instant network, calling
/// `check` after every step.
fn run(
    a: &mut Failover,
    b: &mut Failover,
    from: Instant,
    until: Instant,
    mut check: impl FnMut(&Failover, &Failover, Instant),
) {
    let mut now = from;
    for _ in 0..1_000_000 {
        a.handle_timeout(now);
        b.handle_timeout(now);
        for _ in 0..100 {
            let (pa, pb) = (transmits(a), transmits(b));
            if pa.is_empty() && pb.is_empty() {
                break;
            }
            for p in pa {
                let _ = b.handle_heartbeat(&p, now);
            }
            for p in pb {
                let _ = a.handle_heartbeat(&p, now);
            }
        }
        check(a, b, now);
        if now >= until {
            return;
        }
        now = a.poll_timeout().min(b.poll_timeout()).clamp(now, until);
    }
    panic!("no progress");
}

/// Instance 0 active and instance 1 standby under term `term`, started at `t0`, once each has
/// counted the other (one round trip plus a quarter interval); returns when the standby last
/// heard the active one.
fn pair(t0: Instant, term: u64) -> (Failover, Failover, Instant) {
    let mut a = instance(0, 0, term, 1, t0);
    let mut b = instance(1, 0, term, 2, t0);
    let mut heard = None;
    let mut seen = 0;
    run(
        &mut a,
        &mut b,
        t0,
        t0 + Duration::from_millis(100),
        |_, b, now| {
            if b.accepted() > seen {
                seen = b.accepted();
                heard = Some(now);
            }
        },
    );
    assert!(a.accepted() >= 1 && b.accepted() >= 1, "{a:?} {b:?}");
    assert!(events(&mut a).is_empty() && events(&mut b).is_empty());
    (a, b, heard.expect("heard"))
}

/// A heartbeat of instance `instance` with the given contents, MACed under `k`.
#[allow(clippy::too_many_arguments)]
fn forge(
    instance: u8,
    term: u64,
    role: InstanceRole,
    seq: u64,
    b: u8,
    echo: Option<(BootId, u64)>,
    k: &HeartbeatKey,
) -> Vec<u8> {
    let hb = Heartbeat {
        gateway: gw(),
        instance,
        term,
        role,
        boot: boot(b),
        seq,
        handover: false,
        handover_ack: false,
        echo,
    };
    wire::encode(&hb, &wire::mac_key(k)).expect("encode")
}

fn seq_of(bytes: &[u8]) -> u64 {
    wire::parse(bytes)
        .and_then(|u| u.verify(&wire::mac_key(&key())))
        .expect("genuine")
        .seq
}

#[test]
fn standby_never_becomes_active_while_heartbeats_arrive() {
    let t0 = Instant::now();
    let mut a = instance(0, 0, 1, 1, t0);
    let mut b = instance(1, 0, 1, 2, t0);
    // Two minutes of virtual time; the shell drops three heartbeats of every four: a gap of
    // four intervals, 800 ms, stays under the 1 s detection time.
    let mut now = t0;
    let mut sent = 0u32;
    while now < t0 + Duration::from_secs(120) {
        a.handle_timeout(now);
        b.handle_timeout(now);
        for p in transmits(&mut a) {
            if sent.is_multiple_of(4) {
                match b.handle_heartbeat(&p, now) {
                    // The first contact: A's first heartbeat echoes nothing yet.
                    Err(HeartbeatError::Unconfirmed) if sent == 0 => {}
                    r => r.expect("genuine"),
                }
            }
            sent += 1;
        }
        deliver(&mut b, &mut a, now);
        assert_eq!(b.role(), InstanceRole::Standby, "at {:?}", now - t0);
        assert_eq!(a.role(), InstanceRole::Active);
        now = a.poll_timeout().min(b.poll_timeout());
    }
    assert!(events(&mut a).is_empty());
    assert!(events(&mut b).is_empty());
    assert_eq!(b.term(), 1);
    assert!(b.accepted() >= 140, "{}", b.accepted());
    assert!(b.partner_alive(now) && a.partner_alive(now));
    assert_eq!(b.rejects().total(), b.rejects().unconfirmed);
    assert!(b.rejects().unconfirmed <= 1);
}

#[test]
fn takeover_after_exactly_the_configured_silence_not_one_tick_earlier() {
    let t0 = Instant::now();
    let (_a, mut b, heard) = pair(t0, 3);
    // The active instance dies after its last heartbeat. The standby's timers run at every
    // deadline it asks for and one nanosecond before the detection time ends.
    let mut now = heard;
    while now < heard + DETECTION - NS {
        b.handle_timeout(now);
        assert_eq!(b.role(), InstanceRole::Standby, "at {:?}", now - heard);
        now = b.poll_timeout().min(heard + DETECTION - NS);
    }
    b.handle_timeout(heard + DETECTION - NS);
    assert_eq!(b.role(), InstanceRole::Standby);
    assert!(events(&mut b).is_empty());
    assert_eq!(b.poll_timeout(), heard + DETECTION, "the deadline is exact");
    b.handle_timeout(heard + DETECTION);
    assert_eq!(b.role(), InstanceRole::Active);
    assert_eq!(b.term(), 4, "highest term seen + 1");
    assert_eq!(
        events(&mut b),
        vec![FailoverEvent::TookOver {
            gateway: gw(),
            term: 4,
            reason: TakeoverReason::Silence
        }]
    );

    // Another configuration: 3 × 50 ms; the silence counts from the standby's start when the
    // partner never appears.
    let mut d = desired(1, 0, 1);
    d.interval_ms = 50;
    d.misses = 3;
    let mut c = Failover::new(gw(), &d, boot(3), t0).expect("instance");
    assert_eq!(c.detection(), Duration::from_millis(150));
    c.handle_timeout(t0 + Duration::from_millis(150) - NS);
    assert_eq!(c.role(), InstanceRole::Standby);
    c.handle_timeout(t0 + Duration::from_millis(150));
    assert_eq!(c.role(), InstanceRole::Active);
}

#[test]
fn forged_replayed_other_gateway_reflected_and_truncated_heartbeats_change_nothing() {
    let t0 = Instant::now();
    let mut a = instance(0, 0, 1, 1, t0);
    let mut b = instance(1, 0, 1, 2, t0);
    // First contact: A's first heartbeat echoes nothing, so B does not count it yet, but
    // answers at once with an echo; A counts that, and A's next heartbeat counts at B.
    a.handle_timeout(t0);
    let first = transmits(&mut a);
    assert_eq!(
        b.handle_heartbeat(&first[0], t0),
        Err(HeartbeatError::Unconfirmed)
    );
    deliver(&mut b, &mut a, t0);
    assert_eq!(a.accepted(), 1);
    let heard = t0 + INTERVAL;
    a.handle_timeout(heard);
    let genuine = transmits(&mut a);
    assert_eq!(genuine.len(), 1);
    b.handle_heartbeat(&genuine[0], heard).expect("genuine");
    let wrong = HeartbeatKey::new([0x43; 32]);
    let mut other = Heartbeat {
        gateway: QualifiedName::new("contoso", "other"),
        instance: 0,
        term: 1,
        role: InstanceRole::Active,
        boot: boot(1),
        seq: 99,
        handover: true,
        handover_ack: false,
        echo: Some((boot(2), 1)),
    };
    let other_gateway = wire::encode(&other, &wire::mac_key(&key())).expect("encode");
    other.gateway = gw();
    let forged = wire::encode(&other, &wire::mac_key(&wrong)).expect("encode");
    let mut flipped = genuine[0].clone();
    flipped[20] ^= 1; // the sequence number: the MAC no longer verifies
    let reflected = forge(1, 9, InstanceRole::Active, 100, 7, None, &key());
    // Every 100 ms until the detection time: none of these keeps the standby from taking over,
    // or makes it take over sooner (the forged handover flag).
    let mut now = heard;
    while now < heard + DETECTION {
        now += Duration::from_millis(100);
        let g = &genuine[0];
        let cases: [(&[u8], HeartbeatError); 8] = [
            (&forged, HeartbeatError::Forged),
            (&flipped, HeartbeatError::Forged),
            (g, HeartbeatError::Replayed),
            (&first[0], HeartbeatError::Replayed),
            (&other_gateway, HeartbeatError::OtherGateway),
            (&reflected, HeartbeatError::Reflected),
            (
                &g[..g.len() - 1],
                HeartbeatError::Malformed(WireError::Length(g.len() - 1)),
            ),
            (&g[..10], HeartbeatError::Malformed(WireError::Length(10))),
        ];
        for (bytes, want) in cases {
            assert_eq!(b.handle_heartbeat(bytes, now), Err(want));
        }
        if now < heard + DETECTION {
            b.handle_timeout(now);
            assert_eq!(b.role(), InstanceRole::Standby);
        }
    }
    b.handle_timeout(heard + DETECTION);
    assert_eq!(
        b.role(),
        InstanceRole::Active,
        "the silence counted from the genuine one"
    );
    let r = b.rejects();
    assert_eq!(
        (
            r.forged,
            r.replayed,
            r.other_gateway,
            r.reflected,
            r.malformed,
            r.unconfirmed
        ),
        (20, 20, 10, 10, 20, 1)
    );
    assert_eq!(b.accepted(), 1);
    assert_eq!(b.status(now).rejected, r);

    // An active instance: a forged or replayed "higher term" changes nothing either.
    let ours = |seq| Some((boot(1), seq));
    let hi = forge(1, 50, InstanceRole::Active, 1, 9, ours(2), &wrong);
    assert_eq!(a.handle_heartbeat(&hi, now), Err(HeartbeatError::Forged));
    // The partner restarts as boot 9: it counts once it echoes A's run.
    let unechoed = forge(1, 1, InstanceRole::Standby, 1, 9, None, &key());
    assert_eq!(
        a.handle_heartbeat(&unechoed, now),
        Err(HeartbeatError::Unconfirmed)
    );
    let other_run_of_a = forge(
        1,
        1,
        InstanceRole::Standby,
        2,
        9,
        Some((boot(77), 5)),
        &key(),
    );
    assert_eq!(
        a.handle_heartbeat(&other_run_of_a, now),
        Err(HeartbeatError::Unconfirmed)
    );
    let real = forge(1, 1, InstanceRole::Standby, 5, 9, ours(2), &key());
    a.handle_heartbeat(&real, now)
        .expect("the restarted partner");
    assert_eq!(
        a.handle_heartbeat(&real, now),
        Err(HeartbeatError::Replayed)
    );
    let lower_seq = forge(1, 50, InstanceRole::Active, 4, 9, ours(2), &key());
    assert_eq!(
        a.handle_heartbeat(&lower_seq, now),
        Err(HeartbeatError::Replayed)
    );
    // It restarts again (boot 10) and echoes a newer heartbeat of A; its earlier run's
    // heartbeats are now replays, whatever their sequence numbers: their echoes are older.
    a.handle_heartbeat(
        &forge(1, 1, InstanceRole::Standby, 1, 10, ours(3), &key()),
        now,
    )
    .expect("a new run");
    let old_run = forge(1, 50, InstanceRole::Active, 1000, 9, ours(2), &key());
    assert_eq!(
        a.handle_heartbeat(&old_run, now),
        Err(HeartbeatError::Replayed)
    );
    // And B's first run, long gone, too.
    let first_b = forge(1, 50, InstanceRole::Active, 1000, 2, ours(1), &key());
    assert_eq!(
        a.handle_heartbeat(&first_b, now),
        Err(HeartbeatError::Replayed)
    );
    assert_eq!(a.role(), InstanceRole::Active);
    assert_eq!(a.term(), 1);
    assert!(events(&mut a).is_empty());
}

#[test]
fn a_late_heartbeat_of_an_earlier_run_never_locks_the_live_partner_out() {
    // A datagram of the partner's previous run arrives late at an instance that restarted and
    // never knew that run: it is not counted, and the live run keeps counting.
    let t0 = Instant::now();
    let (mut a, mut b, _) = pair(t0, 1);
    let before = t0 + Duration::from_secs(1);
    run(&mut a, &mut b, t0, before, |_, _, _| {});
    a.handle_timeout(before + INTERVAL);
    let late = transmits(&mut a);
    // B restarts; A carries on.
    let mut b = instance(1, 0, 1, 3, before + INTERVAL);
    let mut last = 0;
    run(
        &mut a,
        &mut b,
        before + INTERVAL,
        before + Duration::from_secs(10),
        |a, b, now| {
            assert!(a.is_active() && !b.is_active(), "at {:?}", now - t0);
            last = b.accepted();
        },
    );
    for p in &late {
        assert!(
            b.handle_heartbeat(p, before + Duration::from_secs(10))
                .is_err()
        );
    }
    let counted = b.accepted();
    assert!(counted >= 40, "{counted}");
    run(
        &mut a,
        &mut b,
        before + Duration::from_secs(10),
        before + Duration::from_secs(12),
        |a, b, _| assert!(a.is_active() && !b.is_active()),
    );
    assert!(b.accepted() >= counted + 9, "{} {counted}", b.accepted());
    assert!(last > 0);
}

#[test]
fn the_shell_finds_the_claimed_gateway_without_the_key() {
    let bytes = forge(0, 1, InstanceRole::Active, 1, 1, None, &key());
    assert_eq!(claimed_gateway(&bytes), Ok(("contoso", "gw")));
    assert_eq!(claimed_gateway(b"ISHB"), Err(WireError::Length(4)));
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(claimed_gateway(&bad), Err(WireError::Magic));
    let mut bad = bytes.clone();
    bad[5] = 0x80;
    assert_eq!(claimed_gateway(&bad), Err(WireError::Flags(0x80)));
    let mut bad = bytes;
    bad[6] = 2;
    assert_eq!(claimed_gateway(&bad), Err(WireError::Instance(2)));
    let long = Failover::new(
        QualifiedName::new("t", "x".repeat(256)),
        &desired(0, 0, 1),
        boot(1),
        Instant::now(),
    );
    assert!(matches!(
        long,
        Err(FailoverError::Name(WireError::NameTooLong))
    ));
}

#[test]
fn the_term_rule_leaves_exactly_one_active_when_the_old_active_returns() {
    let t0 = Instant::now();
    let (_a, mut b, heard) = pair(t0, 1);
    // A's worker is killed: B takes over under term 2.
    b.handle_timeout(heard + DETECTION);
    assert_eq!((b.role(), b.term()), (InstanceRole::Active, 2));
    assert_eq!(events(&mut b).len(), 1);
    // A restarts with the server's stale desired state (active, term 1) and a new boot id.
    let back = t0 + Duration::from_secs(5);
    let mut a = instance(0, 0, 1, 3, back);
    assert!(a.is_active());
    let mut stepped = None;
    run(
        &mut a,
        &mut b,
        back,
        back + Duration::from_secs(60),
        |a, b, now| {
            assert!(b.is_active(), "B stays active throughout");
            if !a.is_active() && stepped.is_none() {
                stepped = Some(now - back);
            }
            if stepped.is_some() {
                assert!(!a.is_active(), "A stays standby");
            }
        },
    );
    let stepped = stepped.expect("A stepped down");
    assert!(stepped <= INTERVAL / 4, "one round trip: {stepped:?}");
    assert_eq!((a.role(), a.term()), (InstanceRole::Standby, 2));
    assert_eq!(
        events(&mut a),
        vec![FailoverEvent::SteppedDown {
            gateway: gw(),
            term: 2,
            reason: StepDownReason::HigherTerm
        }]
    );
    assert!(events(&mut b).is_empty());

    // Equal terms: the lower index wins.
    assert!(ranks_above((5, 0), (5, 1)));
    assert!(!ranks_above((5, 1), (5, 0)));
    assert!(ranks_above((6, 1), (5, 0)));
    let mut x = instance(0, 0, 7, 4, t0);
    let mut y = instance(1, 1, 7, 5, t0);
    assert!(x.is_active() && y.is_active());
    run(
        &mut x,
        &mut y,
        t0,
        t0 + Duration::from_secs(1),
        |_, _, _| {},
    );
    assert!(x.is_active());
    assert!(!y.is_active());
    assert_eq!(x.term(), 7);
}

#[test]
fn a_server_desired_state_with_a_higher_term_overrides_and_a_stale_one_does_not() {
    let t0 = Instant::now();
    let (mut a, mut b, now) = pair(t0, 4);
    // The server moves the active role to B under term 5; A is cut off from the server.
    b.apply(&desired(1, 1, 5), now).expect("apply");
    assert_eq!((b.role(), b.term()), (InstanceRole::Active, 5));
    assert_eq!(
        events(&mut b),
        vec![FailoverEvent::TookOver {
            gateway: gw(),
            term: 5,
            reason: TakeoverReason::Server
        }]
    );
    // B's heartbeat (sent at once) makes A step down: the server's word reaches A through B.
    deliver(&mut b, &mut a, now);
    assert_eq!((a.role(), a.term()), (InstanceRole::Standby, 5));
    // A stale desired state (term 4, A active) arrives late at A: ignored.
    a.apply(&desired(0, 0, 4), now).expect("apply");
    assert_eq!(a.role(), InstanceRole::Standby);
    // The server's term 6 makes A active again, and B steps down on A's heartbeat.
    a.apply(&desired(0, 0, 6), now).expect("apply");
    assert_eq!(
        events(&mut a),
        vec![
            FailoverEvent::SteppedDown {
                gateway: gw(),
                term: 5,
                reason: StepDownReason::HigherTerm
            },
            FailoverEvent::TookOver {
                gateway: gw(),
                term: 6,
                reason: TakeoverReason::Server
            }
        ]
    );
    assert!(a.is_active());
    deliver(&mut a, &mut b, now);
    assert!(!b.is_active());
    assert_eq!(
        events(&mut b),
        vec![FailoverEvent::SteppedDown {
            gateway: gw(),
            term: 6,
            reason: StepDownReason::HigherTerm
        }]
    );
    assert_eq!(
        a.apply(&desired(1, 0, 9), now),
        Err(FailoverError::InstanceChanged {
            running: 0,
            desired: 1
        })
    );
    let mut bad = desired(0, 0, 9);
    bad.misses = 0;
    assert!(matches!(a.apply(&bad, now), Err(FailoverError::Desired(_))));
    assert_eq!(a.term(), 6, "refused desired states change nothing");
    assert_eq!(a.status(now).term, 6);
    assert!(a.status(now).partner_alive);
}

#[test]
fn handover_completes_in_one_round_trip() {
    let t0 = Instant::now();
    let (mut a, mut b, e) = pair(t0, 1);
    // Half-way between two heartbeats, so no timer helps: the drain starts.
    let drain = e + Duration::from_millis(100);
    let one_way = Duration::from_millis(3);
    assert_eq!(b.start_handover(drain), Err(FailoverError::NotActive));
    a.start_handover(drain).expect("active");
    assert!(a.handover_pending());
    deliver(&mut a, &mut b, drain + one_way);
    assert_eq!((b.role(), b.term()), (InstanceRole::Active, 2));
    assert_eq!(
        events(&mut b),
        vec![FailoverEvent::TookOver {
            gateway: gw(),
            term: 2,
            reason: TakeoverReason::Handover
        }]
    );
    deliver(&mut b, &mut a, drain + 2 * one_way);
    assert_eq!((a.role(), a.term()), (InstanceRole::Standby, 2));
    assert!(!a.handover_pending());
    assert_eq!(
        events(&mut a),
        vec![FailoverEvent::SteppedDown {
            gateway: gw(),
            term: 2,
            reason: StepDownReason::Handover
        }]
    );
    // Roles stay put afterwards.
    run(
        &mut a,
        &mut b,
        drain + 2 * one_way,
        drain + Duration::from_secs(10),
        |a, b, _| assert!(b.is_active() && !a.is_active()),
    );
    assert!(events(&mut a).is_empty() && events(&mut b).is_empty());
}

#[test]
fn a_wall_clock_jump_does_not_cause_a_takeover() {
    // The host's wall clock jumps an hour forward and back while its monotonic clock runs on:
    // the state machine is only ever given the monotonic one.
    let t0 = Instant::now();
    let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut a = instance(0, 0, 1, 1, t0);
    let mut b = instance(1, 0, 1, 2, t0);
    let mut now = t0;
    let mut wall = wall0;
    for step in 0..200u32 {
        wall = match step % 50 {
            10 => wall + Duration::from_secs(3600),
            30 => wall - Duration::from_secs(3600),
            _ => wall + INTERVAL,
        };
        a.handle_timeout(now);
        b.handle_timeout(now);
        deliver(&mut a, &mut b, now);
        deliver(&mut b, &mut a, now);
        assert!(!b.is_active(), "step {step}, wall clock {wall:?}");
        now += INTERVAL;
    }
    assert!(events(&mut b).is_empty());
    assert!(b.accepted() >= 198, "{}", b.accepted());
    // The detection timer counts the monotonic time since the last heartbeat, whatever the wall
    // clock did meanwhile.
    let last = now - INTERVAL;
    b.handle_timeout(last + DETECTION - NS);
    assert!(!b.is_active());
    // A `now` that goes backwards (a broken shell) moves no deadline and panics nothing.
    b.handle_timeout(t0);
    assert!(!b.is_active());
    assert_eq!(b.poll_timeout().min(last + DETECTION), last + DETECTION);
    b.handle_timeout(last + DETECTION);
    assert!(b.is_active());
    // No timestamp travels: the same state gives the same bytes at any wall-clock time.
    let mut p = instance(0, 0, 1, 9, t0);
    let mut q = instance(0, 0, 1, 9, t0 + Duration::from_secs(7));
    p.handle_timeout(t0);
    q.handle_timeout(t0 + Duration::from_secs(7));
    assert_eq!(transmits(&mut p), transmits(&mut q));
}

/// What the network does between the instances during one step of the random run.
#[derive(Debug, Clone, Copy)]
enum Link {
    Up,
    Down,
    Lossy,
}

#[derive(Debug, Clone)]
enum Op {
    /// Time passes with these links (0 → 1, 1 → 0) and this one-way delay (plus jitter).
    Run {
        ms: u64,
        links: [Link; 2],
        delay_ms: u64,
    },
    /// The worker of instance `i` restarts with the server's initial (stale) desired state.
    Restart(u8),
    /// A drain of instance `i` (refused unless it is active).
    Handover(u8),
    /// The server, reaching instance `i` only, designates `active` under a new term.
    Server { to: u8, active: u8 },
}

fn link() -> impl Strategy<Value = Link> {
    prop_oneof![Just(Link::Up), Just(Link::Down), Just(Link::Lossy)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..2500, [link(), link()], 0u64..250)
            .prop_map(|(ms, links, delay_ms)| Op::Run { ms, links, delay_ms }),
        1 => (0u8..2).prop_map(Op::Restart),
        1 => (0u8..2).prop_map(Op::Handover),
        1 => (0u8..2, 0u8..2).prop_map(|(to, active)| Op::Server { to, active }),
    ]
}

/// Two instances, the datagrams in flight, and a virtual clock.
struct Sim {
    now: Instant,
    nodes: [Failover; 2],
    /// (arrival, receiver, bytes), in sending order.
    flight: Vec<(Instant, usize, Vec<u8>)>,
    boots: u8,
    rng: u64,
    events: usize,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let now = Instant::now();
        Self {
            now,
            nodes: [instance(0, 0, 1, 0, now), instance(1, 0, 1, 1, now)],
            flight: Vec::new(),
            boots: 2,
            rng: seed | 1,
            events: 0,
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: deterministic per proptest case.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn active(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_active()).count()
    }

    /// Runs until `until`, calling `check` after every step.
    fn run(
        &mut self,
        until: Instant,
        links: [Link; 2],
        delay: Duration,
        mut check: impl FnMut(&Sim),
    ) {
        for _ in 0..1_000_000 {
            let due: Vec<(usize, Vec<u8>)> = {
                let now = self.now;
                let (due, rest) = std::mem::take(&mut self.flight)
                    .into_iter()
                    .partition(|(at, _, _)| *at <= now);
                self.flight = rest;
                due.into_iter().map(|(_, to, p)| (to, p)).collect()
            };
            for (to, p) in due {
                // Late or duplicated datagrams may be refused; they must never panic.
                let _ = self.nodes[to].handle_heartbeat(&p, self.now);
            }
            for n in &mut self.nodes {
                n.handle_timeout(self.now);
            }
            for (from, link) in links.iter().enumerate() {
                while let Some(t) = self.nodes[from].poll_transmit() {
                    let pass = match link {
                        Link::Up => true,
                        Link::Down => false,
                        Link::Lossy => self.next_rand().is_multiple_of(2),
                    };
                    if pass {
                        let jitter = Duration::from_millis(self.next_rand() % 50);
                        self.flight
                            .push((self.now + delay + jitter, 1 - from, t.payload));
                    }
                }
                while self.nodes[from].poll_event().is_some() {
                    self.events += 1;
                }
            }
            check(self);
            if self.now >= until {
                return;
            }
            let next = self
                .flight
                .iter()
                .map(|(at, _, _)| *at)
                .chain(self.nodes.iter().map(|n| n.poll_timeout()))
                .min()
                .unwrap_or(until);
            self.now = next.clamp(self.now, until);
        }
        panic!("the simulation does not make progress");
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Run {
                ms,
                links,
                delay_ms,
            } => {
                let until = self.now + Duration::from_millis(ms);
                self.run(until, links, Duration::from_millis(delay_ms), |_| {});
            }
            Op::Restart(i) => {
                self.boots = self.boots.wrapping_add(1);
                self.nodes[usize::from(i)] = instance(i, 0, 1, self.boots, self.now);
            }
            Op::Handover(i) => {
                let _ = self.nodes[usize::from(i)].start_handover(self.now);
            }
            Op::Server { to, active } => {
                let term = self.nodes[0]
                    .highest_term()
                    .max(self.nodes[1].highest_term())
                    + 1;
                let d = desired(to, active, term);
                self.nodes[usize::from(to)]
                    .apply(&d, self.now)
                    .expect("valid");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Reference model: whatever happened before (loss, delay, reordering, partitions one way
    /// or both, restarts with stale terms, drains, a server reaching one side), once heartbeats
    /// flow both ways for one detection time (plus the in-flight and conflict-resolution slack)
    /// at most one instance is active, then exactly one, and the roles no longer change.
    #[test]
    fn exactly_one_active_after_heartbeats_flow_both_ways(
        ops in proptest::collection::vec(op(), 0..40),
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::new(seed);
        for o in &ops {
            sim.apply(o);
        }
        let healed = sim.now;
        let max_delay = Duration::from_millis(300);
        let settle = healed + max_delay + DETECTION + INTERVAL + max_delay;
        let end = healed + 3 * DETECTION + 2 * max_delay;
        let mut worst = 0;
        let mut events_at_settle = None;
        sim.run(end, [Link::Up, Link::Up], Duration::from_millis(20), |s| {
            if s.now >= settle {
                worst = worst.max(s.active());
                events_at_settle.get_or_insert(s.events);
            }
        });
        prop_assert!(worst <= 1, "{} active after {:?}", worst, ops);
        prop_assert_eq!(sim.active(), 1, "{:?}", sim.nodes);
        prop_assert_eq!(events_at_settle, Some(sim.events), "roles changed after settling");
    }

    /// Arbitrary bytes never panic the parser or the state machine, and change nothing.
    #[test]
    fn arbitrary_bytes_never_panic_and_change_nothing(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        header in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut f = instance(1, 0, 1, 2, t0);
        let mut bytes = bytes;
        if header && bytes.len() >= 9 {
            // Past the magic and version checks, so the length and name checks get exercised.
            bytes[..5].copy_from_slice(b"ISHB\x01");
        }
        let _ = claimed_gateway(&bytes);
        prop_assert!(f.handle_heartbeat(&bytes, t0).is_err());
        prop_assert_eq!(f.rejects().total(), 1);
        prop_assert_eq!(f.role(), InstanceRole::Standby);
        prop_assert_eq!(f.term(), 1);
    }

    /// A genuine heartbeat with any byte changed or cut is refused.
    #[test]
    fn a_changed_or_cut_heartbeat_is_refused(at in 0usize..1000, xor in 1u8..=255, cut in any::<bool>()) {
        let t0 = Instant::now();
        // Echoes the receiver's run, so it counts at once.
        let genuine = forge(0, 3, InstanceRole::Active, 1, 1, Some((boot(2), 1)), &key());
        let at = at % genuine.len();
        let mut bytes = genuine.clone();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] ^= xor;
        }
        let mut f = instance(1, 0, 1, 2, t0);
        prop_assert!(f.handle_heartbeat(&bytes, t0).is_err());
        prop_assert_eq!(f.accepted(), 0);
        prop_assert!(f.handle_heartbeat(&genuine, t0).is_ok());
    }
}

#[test]
fn a_queue_of_unsent_heartbeats_stays_bounded() {
    let t0 = Instant::now();
    let mut a = instance(0, 0, 1, 1, t0);
    let mut now = t0;
    for _ in 0..1000 {
        a.handle_timeout(now);
        now += INTERVAL;
    }
    // The newest survive.
    let seqs: Vec<u64> = transmits(&mut a).iter().map(|p| seq_of(p)).collect();
    assert_eq!(seqs, (993..=1000).collect::<Vec<_>>());
}
