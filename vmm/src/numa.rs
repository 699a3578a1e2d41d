//! How a VM's RAM is divided between its NUMA nodes, for every backend
//! that lays memory out itself (the own VMM's SRAT, the aarch64 device
//! tree): equal slices in node order, the last taking the remainder.

/// Each node's slice of `bytes` of RAM as `(node, offset, length)`, the
/// offset counted from the start of RAM.
pub fn node_slices(bytes: u64, nodes: u32) -> Vec<(u32, u64, u64)> {
    let nodes = nodes.max(1);
    let per_node = bytes / u64::from(nodes);
    (0..nodes)
        .map(|node| {
            let offset = u64::from(node) * per_node;
            let len = if node + 1 == nodes {
                bytes - offset
            } else {
                per_node
            };
            (node, offset, len)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_slices_and_the_remainder_last() {
        assert_eq!(node_slices(1 << 30, 1), vec![(0, 0, 1 << 30)]);
        assert_eq!(
            node_slices(1000, 3),
            vec![(0, 0, 333), (1, 333, 333), (2, 666, 334)]
        );
        assert_eq!(node_slices(10, 0), vec![(0, 0, 10)]);
    }
}
