//! Prefix (CIDR) helpers shared by the LPM table, the validator, routes and the desired state.
//!
//! Below both [`crate::lpm`] and [`crate::validate`]: it depends on nothing but `ipnet`.

use ipnet::IpNet;

/// Total order on prefixes: IPv4 before IPv6, then network address, then prefix length.
pub fn net_order(a: &IpNet, b: &IpNet) -> std::cmp::Ordering {
    match (a, b) {
        (IpNet::V4(x), IpNet::V4(y)) => {
            (x.network(), x.prefix_len()).cmp(&(y.network(), y.prefix_len()))
        }
        (IpNet::V6(x), IpNet::V6(y)) => {
            (x.network(), x.prefix_len()).cmp(&(y.network(), y.prefix_len()))
        }
        (IpNet::V4(_), IpNet::V6(_)) => std::cmp::Ordering::Less,
        (IpNet::V6(_), IpNet::V4(_)) => std::cmp::Ordering::Greater,
    }
}

/// Overlapping pairs (by tag) in a list of canonical prefixes: sort + stack sweep.
pub fn nested_pairs(items: &mut [(IpNet, usize)]) -> Vec<(usize, usize)> {
    items.sort_by(|x, y| net_order(&x.0, &y.0).then(x.1.cmp(&y.1)));
    let mut stack: Vec<(IpNet, usize)> = Vec::new();
    let mut out = Vec::new();
    for &(p, i) in items.iter() {
        while stack.last().is_some_and(|top| !top.0.contains(&p)) {
            stack.pop();
        }
        out.extend(stack.iter().map(|&(_, j)| (j, i)));
        stack.push((p, i));
    }
    out
}

/// Whether two prefixes overlap (share at least one address). Symmetric; IPv4 never overlaps
/// IPv6.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b) || b.contains(&a)
}
