/// Shapes a long list of operations into one etcd transaction that the server accepts.
///
/// etcd limits a transaction to `--max-txn-ops` operations (128 by default) per
/// level, and a nested transaction (etcd ≥ 3.3) gets the budget its parent left:
/// a level with `w` operations leaves `limit - w` for the levels below it. With
/// `d` levels of width `w ≤ limit / d` one transaction holds `w^d` operations:
/// 128 flat, 4 096 with two levels, 74 088 with three. All of them still commit
/// at one revision, so readers see all or nothing.
package enum TransactionLayout {
    /// The deepest nesting tried.
    package static let maxDepth = 6

    /// `operations` as-is when they fit one level, else grouped into nested transactions.
    package static func nest(_ operations: [EtcdOperation], maxOperations: Int) throws(TransactionLayoutError) -> [EtcdOperation] {
        guard operations.count > maxOperations else { return operations }
        for depth in 2...maxDepth {
            let width = maxOperations / depth
            guard width >= 2 else { break }
            if capacity(width: width, depth: depth) >= operations.count {
                return group(operations[...], width: width, depth: depth)
            }
        }
        throw TransactionLayoutError(operations: operations.count, maxOperations: maxOperations)
    }

    /// Whether etcd would accept these operations (plus `conditions` compares) as one transaction.
    package static func fits(_ operations: [EtcdOperation], conditions: Int = 0, maxOperations: Int) -> Bool {
        let width = max(conditions, operations.count)
        guard width <= maxOperations else { return false }
        let remaining = maxOperations - width
        return operations.allSatisfy { operation in
            if case .transaction(let nested) = operation { return fits(nested, maxOperations: remaining) }
            return true
        }
    }

    private static func capacity(width: Int, depth: Int) -> Int {
        var total = 1
        for _ in 0..<depth {
            let (product, overflow) = total.multipliedReportingOverflow(by: width)
            if overflow { return Int.max }
            total = product
        }
        return total
    }

    private static func group(_ operations: ArraySlice<EtcdOperation>, width: Int, depth: Int) -> [EtcdOperation] {
        guard depth > 1 else { return Array(operations) }
        let childCapacity = capacity(width: width, depth: depth - 1)
        return stride(from: operations.startIndex, to: operations.endIndex, by: childCapacity).map { start in
            let slice = operations[start..<min(start + childCapacity, operations.endIndex)]
            return slice.count == 1 ? slice[slice.startIndex] : .transaction(group(slice, width: width, depth: depth - 1))
        }
    }
}

/// Too many operations for one transaction even when nested.
package struct TransactionLayoutError: Error, Sendable, Hashable, CustomStringConvertible {
    package var operations: Int
    package var maxOperations: Int

    package var description: String {
        "\(operations) operations do not fit one etcd transaction with --max-txn-ops \(maxOperations);"
            + " raise etcd's --max-txn-ops and ETCD_MAX_TXN_OPS"
    }
}
