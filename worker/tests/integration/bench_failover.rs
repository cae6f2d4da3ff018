//! Issue 16's failover benchmark, run by `worker/bench/failover.sh` (ignored by the test
//! command: it takes minutes and its numbers belong in BENCHMARKS.md, not in assertions). It
//! uses the full lab of [`crate::ha_lab::Full`]: the hub gateway redundant on w1 and w2 with a
//! wireguard-go site (S2S), a wireguard-go point-to-site client (P2S) and a VNet-to-VNet pair to
//! a spoke whose gateway runs alone on w3 (V2V). Three 100 Hz pings run through the hub gateway
//! at once, one per kind: from the VNet host to the host behind the site, from the client to
//! the VNet host, from the spoke's host to the VNet host. The time without traffic is the gap
//! between the last reply through the old instance and the first through the new one (10 ms
//! resolution). Every round must recover; a round that does not fails the run.

use std::time::Duration;

use crate::ha_lab::*;

fn rounds() -> usize {
    std::env::var("ISTHMUS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn summary(what: &str, gaps: &mut [f64], lost: &[u64]) {
    gaps.sort_by(f64::total_cmp);
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(f64::NAN);
    let worst = gaps.last().copied().unwrap_or(f64::NAN);
    let all: Vec<String> = gaps.iter().map(|g| format!("{g:.3}")).collect();
    println!(
        "RESULT {what}: median {median:.3} s, worst {worst:.3} s without traffic over {} rounds [{}]; pings lost per round {lost:?}",
        gaps.len(),
        all.join(", ")
    );
}

/// One ping per kind: (kind, from namespace, to address).
fn pings(f: &Full) -> [(&'static str, String, &'static str); 3] {
    [
        ("S2S", f.ha.vnet.clone(), SITE_HOST),
        ("P2S", f.client.clone(), VNET_HOST),
        ("V2V", f.spoke.clone(), VNET_HOST),
    ]
}

#[test]
#[ignore = "a benchmark: worker/bench/failover.sh runs it as root"]
fn bench_failover_s2s_p2s_v2v_kill_9_and_drain() {
    if let Some(why) = ha_skip_reason() {
        panic!("cannot run the failover benchmark: {why}");
    }
    let mut f = Full::new("q", 18097);
    let kinds = pings(&f);
    let mut active = 0;
    let mut gaps: [Vec<f64>; 3] = Default::default();
    let mut lost: [Vec<u64>; 3] = Default::default();
    for _ in 0..rounds() {
        let standby = 1 - active;
        let pingers: Vec<Pinger> = kinds
            .iter()
            .map(|(_, ns, to)| Pinger::start(ns, to, 100, 8))
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        let at = unix_now();
        f.ha.kill9(active);
        for (k, p) in pingers.into_iter().enumerate() {
            let ping = p.finish();
            // The longest gap of the run, which spans the kill (a reply or two still in flight
            // at the kill would hide it from the gap around that instant).
            let gap = ping
                .gap_around(at)
                .map_or(f64::INFINITY, |g| g.max(ping.longest_gap()));
            assert!(
                gap.is_finite(),
                "{}: no recovery after kill -9\n{}",
                kinds[k].0,
                f.ha.diagnose()
            );
            gaps[k].push(gap);
            lost[k].push(ping.lost());
        }
        f.ha.start(active);
        f.ha.wait_roles(standby, active, Duration::from_secs(40));
        // The restarted worker's standby learns the client's endpoint from the server.
        std::thread::sleep(Duration::from_secs(2));
        active = standby;
    }
    for (k, (kind, _, _)) in kinds.iter().enumerate() {
        summary(
            &format!("{kind} unplanned (kill -9)"),
            &mut gaps[k],
            &lost[k],
        );
    }

    // The baseline of a drain round: the same stream and pings, no drain (iperf3 fills the
    // tunnel, so a saturated path drops and retransmits by itself).
    let mut base_lost: [Vec<u64>; 3] = Default::default();
    let mut base_retrans = Vec::new();
    for _ in 0..rounds() {
        let pingers: Vec<Pinger> = kinds
            .iter()
            .map(|(_, ns, to)| Pinger::start(ns, to, 100, 7))
            .collect();
        let stream = Stream::start(&f.ha.site, SITE_HOST, &f.ha.vnet, 5);
        let stream = stream.finish();
        assert!(stream.ok, "the baseline stream broke: {}", stream.error);
        base_retrans.push(stream.retransmits);
        for (k, p) in pingers.into_iter().enumerate() {
            base_lost[k].push(p.finish().lost());
        }
    }
    for (k, (kind, _, _)) in kinds.iter().enumerate() {
        println!(
            "RESULT {kind} baseline (same stream, no drain): pings lost per round {:?}",
            base_lost[k]
        );
    }
    println!("RESULT baseline iperf3 retransmits per round (no drain) {base_retrans:?}");

    let mut gaps: [Vec<f64>; 3] = Default::default();
    let mut lost: [Vec<u64>; 3] = Default::default();
    let mut retrans = Vec::new();
    for _ in 0..rounds() {
        let standby = 1 - active;
        let name = f.ha.workers[active].name.clone();
        let pingers: Vec<Pinger> = kinds
            .iter()
            .map(|(_, ns, to)| Pinger::start(ns, to, 100, 7))
            .collect();
        let stream = Stream::start(&f.ha.site, SITE_HOST, &f.ha.vnet, 5);
        std::thread::sleep(Duration::from_secs(2));
        f.ha.server
            .post(&format!("/workers/{name}/drain"), &serde_json::json!({}));
        f.ha.wait_roles(standby, active, Duration::from_secs(20));
        let stream = stream.finish();
        assert!(stream.ok, "a drain broke the TCP stream: {}", stream.error);
        retrans.push(stream.retransmits);
        for (k, p) in pingers.into_iter().enumerate() {
            let ping = p.finish();
            if ping.longest_gap() > 1.0 && std::env::var_os("ISTHMUS_BENCH_EXPLAIN").is_some() {
                println!("SLOW {} drain round\n{}", kinds[k].0, f.ha.diagnose());
            }
            gaps[k].push(ping.longest_gap());
            lost[k].push(ping.lost());
        }
        f.ha.server
            .post(&format!("/workers/{name}/undrain"), &serde_json::json!({}));
        active = standby;
    }
    for (k, (kind, _, _)) in kinds.iter().enumerate() {
        summary(&format!("{kind} planned drain"), &mut gaps[k], &lost[k]);
    }
    println!(
        "RESULT drain under an iperf3 stream (VNet host to site): retransmits per round {retrans:?}, no stream broke"
    );
}
