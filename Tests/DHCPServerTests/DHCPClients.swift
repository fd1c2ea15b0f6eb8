import TestSupport
import DHCPServer
import Foundation
import NetworkTypes

/// A real DHCP client run once, in the foreground, inside a fixture's client namespace.
/// Each writes its resolver settings into the fixture's temp directory, never the host's.
enum DHCPClient: String, CaseIterable, Sendable {
    /// busybox udhcpc with a test script that applies what it is given (`-s`).
    case udhcpc
    /// ISC dhclient with Debian's own /sbin/dhclient-script and its RFC 3442 exit hook;
    /// /etc/resolv.conf is a bind mount of a temp file over the private /etc overlay.
    case dhclient
    /// dhcpcd, which configures addresses, routes and MTU itself; its hook (`-c`) only writes resolv.conf.
    case dhcpcd

    /// Variations some scenarios need.
    struct Options: Sendable {
        /// False keeps the give-up time short for the no-answer cases.
        var patient = true
        /// udhcpc: once bound, ask for a renewal (SIGUSR1 from the script: a unicast REQUEST
        /// from the leased address), and exit when it is acknowledged.
        var renewOnce = false
        /// dhcpcd: probe the offered address with ARP (RFC 5227) before using it.
        var arpProbe = false
    }

    /// Runs the client until it is bound (exit 0) or gives up after a few seconds (non-zero).
    func acquire(on fixture: VethFixture, _ options: Options = Options()) async throws -> ProcessResult {
        let patient = options.patient
        let dir = fixture.tempDirectory
        let resolv = "\(dir)/resolv.conf"
        try writeFile(resolv, "")
        let interface = fixture.clientInterface
        switch self {
        case .udhcpc:
            let script = "\(dir)/udhcpc.script"
            try writeFile(script, Self.udhcpcScript(resolv: resolv, renewOnce: options.renewOnce), executable: true)
            // -f foreground, -n give up after -t tries -T 1 s apart, -q quit once bound (unless renewing).
            let arguments = ["udhcpc", "-f", "-n", "-i", interface, "-s", script, "-t", patient ? "4" : "2", "-T", "1",
                             "-O", "search", "-O", "staticroutes", "-O", "mtu"]
            return try await fixture.inClient(arguments + (options.renewOnce ? [] : ["-q"]), timeout: 20)
        case .dhclient:
            let config = "\(dir)/dhclient.conf"
            try writeFile(config, Self.dhclientConfig(timeout: patient ? 10 : 3))
            // dhclient forks into the background once bound; leaving the PID namespace ends that daemon.
            return try await fixture.inClient(
                ["dhclient", "-4", "-1", "-v", "-cf", config, "-lf", "\(dir)/dhclient.leases", "-pf", "\(dir)/dhclient.pid", interface],
                setup: "mount --bind \(resolv) /etc/resolv.conf",
                timeout: 25)
        case .dhcpcd:
            let config = "\(dir)/dhcpcd.conf"
            let hook = "\(dir)/dhcpcd.hook"
            try writeFile(config, Self.dhcpcdConfig(arpProbe: options.arpProbe))
            try writeFile(hook, Self.dhcpcdHook(resolv: resolv), executable: true)
            // Private /run and /var/lib/dhcpcd: no pid file, control socket or lease leaks to the host.
            return try await fixture.inClient(
                ["dhcpcd", "-f", config, "-c", hook, "-4", "-1", "-w", "-p", "-t", patient ? "10" : "3", interface],
                setup: "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib/dhcpcd",
                timeout: 25)
        }
    }

    /// What the client wrote as its resolver configuration.
    func resolvConf(of fixture: VethFixture) -> String {
        (try? String(contentsOfFile: "\(fixture.tempDirectory)/resolv.conf", encoding: .utf8)) ?? ""
    }

    /// Applies udhcpc's environment the way a distribution script would, including option 121
    /// (`$staticroutes`: pairs of DEST/PREFIX GATEWAY, 0.0.0.0 meaning on-link) and option 119.
    static func udhcpcScript(resolv: String, renewOnce: Bool) -> String {
        """
        #!/bin/sh
        reason="$1"
        case "$reason" in
        deconfig)
            ip -4 addr flush dev "$interface"
            ip link set dev "$interface" up
            ;;
        bound|renew)
            [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
            ip -4 addr flush dev "$interface"
            ip -4 addr add "$ip/$mask" dev "$interface" || exit 1
            if [ -n "$staticroutes" ]; then
                set -- $staticroutes
                while [ $# -ge 2 ]; do
                    if [ "$2" = 0.0.0.0 ]; then
                        ip -4 route add "$1" dev "$interface" || exit 1
                    else
                        ip -4 route add "$1" via "$2" dev "$interface" || exit 1
                    fi
                    shift 2
                done
            elif [ -n "$router" ]; then
                for gateway in $router; do
                    ip -4 route add default via "$gateway" dev "$interface" || exit 1
                    break
                done
            fi
            {
                [ -n "$domain" ] && echo "domain $domain"
                [ -n "$search" ] && echo "search $search"
                for server in $dns; do echo "nameserver $server"; done
            } > "\(resolv)"
            \(renewOnce ? #"[ "$reason" = bound ] && kill -USR1 $PPID; [ "$reason" = renew ] && echo "$ip" > "\#(resolv).renewed" && kill -TERM $PPID"# : ":")
            ;;
        esac
        exit 0

        """
    }

    static func dhclientConfig(timeout: Int) -> String {
        """
        option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
        timeout \(timeout);
        retry 1;
        initial-interval 1;
        request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
                domain-search, host-name, interface-mtu, rfc3442-classless-static-routes;

        """
    }

    static func dhcpcdConfig(arpProbe: Bool) -> String {
        """
        ipv4only
        noipv4ll
        \(arpProbe ? "" : "noarp")
        nohook resolv.conf, hostname, ntp, timesyncd
        option domain_name_servers, domain_name, domain_search, host_name
        option classless_static_routes, interface_mtu

        """
    }

    static func dhcpcdHook(resolv: String) -> String {
        """
        #!/bin/sh
        case "$reason" in
        BOUND|REBOOT|RENEW|REBIND)
            {
                [ -n "$new_domain_name" ] && echo "domain $new_domain_name"
                [ -n "$new_domain_search" ] && echo "search $new_domain_search"
                for server in $new_domain_name_servers; do echo "nameserver $server"; done
            } > "\(resolv)"
            ;;
        esac
        exit 0

        """
    }
}

