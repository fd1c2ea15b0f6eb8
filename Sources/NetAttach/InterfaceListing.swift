import FoundationEssentials
import Netlink

/// One row of `kvm-launch --list-ifaces`: a link, its addresses and the selection verdict.
package struct InterfaceListingRow: Sendable, Equatable, Codable {
    package var name: String
    package var index: Int32
    package var kind: String
    /// Lower-case colon form, or empty when the link has no MAC.
    package var mac: String
    package var mtu: Int
    package var up: Bool
    /// `ADDR/PREFIX`, IPv4 first.
    package var addresses: [String]
    package var attach: Bool
    /// Empty when attached.
    package var reason: String
    /// Position in the VM's NIC order (0 = first NIC), when attached.
    package var nic: Int?
    /// Attached without an IPv4 address: the VM gets the MAC, the link and its MTU, but no DHCP answer.
    package var linkOnly: Bool

    package init(decision: InterfaceDecision, inventory: Inventory) {
        let link = decision.link
        name = link.name
        index = link.index
        kind = link.kind.rawValue
        mac = link.mac?.description ?? ""
        mtu = link.mtu
        up = link.isUp
        addresses = inventory.addresses(on: link.index).map(\.cidr)
        attach = decision.attach
        reason = decision.reason?.rawValue ?? ""
        nic = decision.order
        linkOnly = decision.attach && inventory.ipv4Addresses(on: link.index).isEmpty
    }
}

/// Renders the listing as JSON (for tools) or as an aligned table (for people).
package enum InterfaceListing {
    package static func rows(_ decisions: [InterfaceDecision], inventory: Inventory) -> [InterfaceListingRow] {
        decisions.map { InterfaceListingRow(decision: $0, inventory: inventory) }
    }

    /// A JSON array, one object per link, keys sorted.
    package static func json(_ rows: [InterfaceListingRow]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(rows)) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A table with one line per link; extra addresses continue on their own lines.
    package static func table(_ rows: [InterfaceListingRow]) -> String {
        let header = ["IDX", "NAME", "KIND", "MAC", "MTU", "STATE", "ADDRESSES", "ATTACH"]
        var lines: [[String]] = [header]
        for row in rows {
            let nic = "NIC \(row.nic.map { String($0) } ?? "?")"
            let verdict = row.attach ? (row.linkOnly ? "yes (\(nic); no IPv4: MAC and link only, no DHCP answer)" : "yes (\(nic))") : "no: \(row.reason)"
            let first = row.addresses.first ?? "-"
            lines.append([String(row.index), row.name, row.kind, row.mac.isEmpty ? "-" : row.mac, String(row.mtu),
                          row.up ? "up" : "down", first, verdict])
            for extra in row.addresses.dropFirst() {
                lines.append(["", "", "", "", "", "", extra, ""])
            }
        }
        var widths = Array(repeating: 0, count: header.count)
        for line in lines { for (column, cell) in line.enumerated() { widths[column] = max(widths[column], cell.count) } }
        return lines.map { line in
            var text = line.enumerated().map { column, cell in
                column == line.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
            while text.last?.isWhitespace == true { text.removeLast() }
            return text
        }.joined(separator: "\n")
    }
}
