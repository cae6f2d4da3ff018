//! Issue 16's failover benchmark, run by `worker/bench/failover.sh` (ignored by the test
//! command: it takes minutes and its numbers belong in BENCHMARKS.md, not in assertions). It
//! uses the lab of [`crate::ha_lab`] and a 100 Hz ping from the VNet host to the host behind the
//! site: the time without traffic is the gap between the last reply through the old instance and
//! the first through the new one (10 ms resolution). Every round must recover; a round that does
//! not fails the run.

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

#[test]
#[ignore = "a benchmark: worker/bench/failover.sh runs it as root"]
fn bench_failover_site_to_site_kill_9_and_drain() {
    if let Some(why) = ha_skip_reason() {
        panic!("cannot run the failover benchmark: {why}");
    }
    let mut ha = Ha::new("q", 18097, 2, hub_topology);
    ha.start(0);
    ha.lab
        .wait_for("w1 to run the gateway", Duration::from_secs(30), || {
            crate::server_lab::read_status(&ha.workers[0].status)["gateways"][0]["name"] == "hub-gw"
        });
    ha.start(1);
    ha.wait_roles(0, 1, Duration::from_secs(40));
    ha.start_site("to-branch");
    assert!(ha.reachable(&ha.vnet, SITE_HOST, 30), "{}", ha.lab.logs());

    let mut active = 0;
    let (mut gaps, mut lost) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        let standby = 1 - active;
        let pinger = Pinger::start(&ha.vnet, SITE_HOST, 100, 8);
        std::thread::sleep(Duration::from_secs(2));
        let at = unix_now();
        ha.kill9(active);
        let ping = pinger.finish();
        let gap = ping.gap_around(at).unwrap_or(f64::INFINITY);
        assert!(
            gap.is_finite(),
            "no recovery after kill -9\n{}",
            ha.lab.logs()
        );
        gaps.push(gap);
        lost.push(ping.lost());
        ha.start(active);
        ha.wait_roles(standby, active, Duration::from_secs(40));
        active = standby;
    }
    summary("S2S unplanned (kill -9)", &mut gaps, &lost);

    let (mut gaps, mut lost, mut retrans) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds() {
        let standby = 1 - active;
        let name = ha.workers[active].name.clone();
        let pinger = Pinger::start(&ha.vnet, SITE_HOST, 100, 7);
        let stream = Stream::start(&ha.site, SITE_HOST, &ha.vnet, 5);
        std::thread::sleep(Duration::from_secs(2));
        ha.server
            .post(&format!("/workers/{name}/drain"), &serde_json::json!({}));
        ha.wait_roles(standby, active, Duration::from_secs(20));
        let stream = stream.finish();
        let ping = pinger.finish();
        assert!(stream.ok, "a drain broke the TCP stream: {}", stream.error);
        gaps.push(ping.longest_gap());
        lost.push(ping.lost());
        retrans.push(stream.retransmits);
        ha.server
            .post(&format!("/workers/{name}/undrain"), &serde_json::json!({}));
        active = standby;
    }
    summary("S2S planned drain", &mut gaps, &lost);
    println!("RESULT S2S drain: iperf3 retransmits per round {retrans:?}, no stream broke");
}
