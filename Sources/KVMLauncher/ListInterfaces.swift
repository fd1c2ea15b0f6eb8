import FoundationEssentials
import LaunchConfiguration
import NetAttach
import Netlink

/// `kvm-launch --list-ifaces [--json]`: what would be attached, and why not. Changes nothing.
struct ListInterfaces {
    var environment: [String: String]
    var json: Bool

    func run() throws {
        let configuration = try LaunchCheck.configuration(environment: environment, arguments: [], requireSelection: false)
        let inventory: Inventory
        let decisions: [InterfaceDecision]
        do {
            inventory = try Inventory.read(from: try NetlinkSocket())
            decisions = try InterfaceSelection.decide(inventory, selection: configuration.selection)
        } catch {
            throw LaunchFailure("\(error)")
        }
        let rows = InterfaceListing.rows(decisions, inventory: inventory)
        if json {
            print(InterfaceListing.json(rows))
        } else {
            print(InterfaceListing.table(rows))
            print("\nNIC order: \(InterfaceSelection.nicOrderRule).")
            if configuration.selection == nil {
                print("\nAUTO_ATTACH is not set: set AUTO_ATTACH=yes (or AUTO_ATTACH=no with ATTACH_IFACES) to launch.")
            }
        }
        for warning in configuration.warnings {
            writeToStandardError("kvm-launch: warning: \(warning)\n")
        }
    }
}
