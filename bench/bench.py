#!/usr/bin/env python3
"""kvm-launch benchmarks (make bench). Standard library only; run as root.

    bench/bench.py [--quick] [--only SECTION,...] [--runs N]

Sections: startup, setup, dhcp, boot, net, footprint, config, multiqueue, backends, image (footprint runs inside net's
macvtap boot); optional, only with --only: compute (the compute node image up to nova-compute's AMQP connection;
make compute-image).
Every figure is the median of repeated runs with min and max; a ratio compares medians measured in
the same run. Raw samples, logs and the table go to bench/results/<timestamp>/; the table is also
printed. See bench/README.md for what each figure means. Nothing here passes or fails.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RELEASE = os.path.join(ROOT, ".build", "release")
KVM_LAUNCH = os.path.join(RELEASE, "kvm-launch")
GUEST = os.path.join(ROOT, "image", "out", "test-guest.qcow2")
CLASSIC = os.path.join(BENCH, "classic-setup.sh")
# The original container's own entrypoint (bbvainnotech/kvm, Apache-2.0), run from where it lies, never copied into
# the project; on machines without vhost-net a temporary copy has `vhost=on` turned into `vhost=off` (see startvm_script).
STARTVM = os.environ.get("STARTVM", os.path.normpath(os.path.join(ROOT, "..", "shared", "reference", "bbva-kvm", "startvm")))
SNIFFER = os.path.join(BENCH, "dhcp_sniffer.py")
FIXTURE = os.path.join(ROOT, "scripts", "fixture.sh")
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
IPERF3_ARGS = ["-fw_cfg", "name=opt/kvmlaunch/iperf3,string=1"]


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchFailure(Exception):
    """A benchmark step could not be carried out; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# Statistics and the table


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "samples": values}


def least_squares_slope(points):
    """Slope and intercept of the least-squares line through (x, y) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def number(value, digits=None):
    if value is None:
        return "–"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    return f"{value:,.{digits}f}"


class Table:
    """Rows of the results table: section, figure, median, min, max, unit, runs, comparison."""

    def __init__(self):
        self.rows = []
        self.headlines = []

    def add(self, section, figure, stats, unit, comparison="", scale=1.0, digits=None, headline=False):
        """`headline`: the row is also one of the README's (``summary()``, `bench/update-readme.py`)."""
        if headline:
            self.headlines.append(len(self.rows))
        if stats is None:
            self.rows.append((section, figure, "–", "–", "–", unit, "0", comparison or "not measured"))
            return
        self.rows.append((section, figure, number(stats["median"] * scale, digits), number(stats["min"] * scale, digits),
                          number(stats["max"] * scale, digits), unit, str(stats["n"]), comparison))

    def summary(self):
        """The README's table: the headline rows, median (min–max) and the same-run comparison."""
        lines = ["| figure | kvm-launch, median (min–max) | baseline, same run |", "| --- | --- | --- |"]
        for index in self.headlines:
            section, figure, median, low, high, unit, runs, comparison = self.rows[index]
            value = "not measured" if median == "–" else f"{median} {unit} ({low}–{high})".replace(" ()", "")
            lines.append(f"| {section}: {figure} | {value} | {comparison} |")
        return "\n".join(lines)

    def note(self, section, figure, text):
        self.rows.append((section, figure, "", "", "", "", "", text))

    def markdown(self):
        lines = ["| section | figure | median | min | max | unit | runs | comparison (same run) |",
                 "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |"]
        for row in self.rows:
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)


def ratio(a, b):
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def times(value):
    return "–" if value is None else f"{value:.2f}×"


# ---------------------------------------------------------------------------------------------
# Processes, namespaces and fixtures


class Harness:
    """Everything a run creates, so that it is all removed at the end, also on failure or ^C."""

    def __init__(self, directory):
        self.directory = directory
        self.namespaces = []
        self.processes = []
        self.counter = 0
        self.tag = f"klb{os.getpid() % 100000}"

    def path(self, *parts):
        path = os.path.join(self.directory, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def unique(self, kind):
        self.counter += 1
        return f"{self.tag}-{kind}{self.counter}"

    def run(self, argv, timeout=60, check=True, **kwargs):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise BenchFailure(f"{' '.join(argv[:6])} failed ({result.returncode}): {result.stderr.strip()[:300]}")
        return result

    def spawn(self, argv, **kwargs):
        process = subprocess.Popen(argv, **kwargs)
        self.processes.append(process)
        return process

    def namespace(self, kind):
        name = self.unique(kind)
        self.run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        return name

    def kill_namespace_processes(self, name):
        result = self.run(["ip", "netns", "pids", name], check=False)
        for pid in result.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def delete_namespace(self, name):
        if name not in self.namespaces:
            return
        self.kill_namespace_processes(name)
        self.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
        self.namespaces.remove(name)

    def delete_container(self, ct, net):
        """Deletes a container namespace and its peer namespace, and waits until the kernel has really
        torn the container down: that happens later, in a work queue holding the RTNL lock, and would
        stall the next measured run's first netlink request. The peers in `net` vanish when it is done."""
        self.kill_namespace_processes(ct)
        self.delete_namespace(ct)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            links = self.run(["ip", "-n", net, "-o", "link", "show", "type", "veth"], check=False).stdout
            if not links.strip():
                break
            time.sleep(0.02)
        self.delete_namespace(net)
        self.settle()

    def settle(self):
        """Waits until the kernel finished tearing down deleted namespaces: their cleanup holds the
        RTNL lock, which would otherwise delay the next measured run's first netlink request."""
        if not hasattr(self, "probe_namespace"):
            self.probe_namespace = self.namespace("probe")
        for _ in range(50):
            began = time.monotonic()
            self.run(["ip", "-n", self.probe_namespace, "link", "set", "lo", "up"])
            if time.monotonic() - began < 0.010:
                return
            time.sleep(0.02)

    def stop(self, process, timeout=5):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def cleanup(self):
        for process in self.processes:
            if process.poll() is None:
                try:
                    process.kill()
                    process.wait(timeout=5)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
        for name in list(self.namespaces):
            self.delete_namespace(name)


def ip_batch(h, namespace, commands):
    path = h.path("tmp", f"batch-{namespace}")
    with open(path, "w") as batch:
        batch.write("\n".join(commands) + "\n")
    h.run(["ip", "-n", namespace, "-batch", path])


# The simulated container is scripts/fixture.sh's (shared with make demo and make test-container):
# interface i is 10.(FIXTURE_BASE + i).0.2/24, its peer in the network namespace 10.(FIXTURE_BASE + i).0.1.
FIXTURE_BASE = 64


def guest_address(i):
    return f"10.{FIXTURE_BASE + i}.0.2"


def peer_address(i):
    return f"10.{FIXTURE_BASE + i}.0.1"


def make_container(h, interfaces, resolv=True):
    """A container namespace with `interfaces` veths (eth0..), each with a /24 address, to a
    network namespace holding the peers (p0..); default route via p0's address."""
    net, ct = h.unique("net"), h.unique("ct")
    h.namespaces += [net, ct]
    h.run(["bash", FIXTURE, "container", ct, net, str(interfaces), str(FIXTURE_BASE)] + (["bench.example"] if resolv else []))
    return ct, net


def link_state(h, namespace):
    """{name: (mac, sorted IPv4 addresses)} of the namespace's links."""
    links = json.loads(h.run(["ip", "-n", namespace, "-j", "addr", "show"]).stdout)
    return {link["ifname"]: (link.get("address"), sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                                          if a.get("family") == "inet"))
            for link in links}


def read_mark(path, deadline):
    """The stub's line: (CLOCK_REALTIME ns, pid, descriptors, argument count), waiting until `deadline`."""
    while True:
        try:
            with open(path) as mark:
                text = mark.read()
            if text.endswith("\n"):
                stamp, pid, descriptors, arguments = text.split()
                seconds, fraction = stamp.split(".")
                return int(seconds) * 1_000_000_000 + int(fraction), int(pid), int(descriptors), int(arguments)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.002)


def descendants(pid):
    """Every descendant pid of `pid` (from /proc/*/task/*/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    for child in children.read().split():
                        found.append(int(child))
                        queue.append(int(child))
        except FileNotFoundError:
            continue
    return found


def process_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except FileNotFoundError:
        return None


def find_descendant(pid, name, deadline):
    while time.monotonic() < deadline:
        for child in descendants(pid):
            if process_name(child) == name:
                return child
        time.sleep(0.01)
    return None


class LineReader:
    """Reads a process's output on a thread, stamping each line with CLOCK_REALTIME."""

    def __init__(self, stream, keep_to=None):
        self.lines = []
        self.condition = threading.Condition()
        self.keep_to = keep_to
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        with open(self.keep_to, "w") if self.keep_to else open(os.devnull, "w") as copy:
            for raw in iter(stream.readline, b""):
                stamp = time.time_ns()
                line = raw.decode(errors="replace").rstrip("\r\n")
                copy.write(line + "\n")
                with self.condition:
                    self.lines.append((stamp, line))
                    self.condition.notify_all()

    def wait_for(self, pattern, deadline, alive=None):
        """The (stamp, line) of the first line matching `pattern`, or None at the deadline."""
        regex = re.compile(pattern)
        index = 0
        with self.condition:
            while True:
                while index < len(self.lines):
                    if regex.search(self.lines[index][1]):
                        return self.lines[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (alive is not None and not alive()):
                    return None
                self.condition.wait(min(remaining, 0.2))


def start_sniffer(h, namespace, interface=None):
    argv = ["ip", "netns", "exec", namespace, sys.executable, SNIFFER] + (["--interface", interface] if interface else [])
    process = h.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    reader = LineReader(process.stdout)
    if reader.wait_for(r'"ready"', time.monotonic() + 10) is None:
        raise BenchFailure(f"the DHCP sniffer did not start in {namespace}")
    return process, reader


def sniffed(reader):
    packets = []
    for _, line in reader.lines:
        record = json.loads(line)
        if "xid" in record:
            packets.append(record)
    return packets


def blank_disk(h):
    path = h.path("disks", "blank.qcow2")
    if not os.path.exists(path):
        h.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "64M"])
    return path


def overlay(h):
    # The backing file next to the overlay: kvm-launch follows backing files only inside the image's folder.
    base = h.path("disks", "test-guest.qcow2")
    if not os.path.exists(base):
        shutil.copyfile(GUEST, base)
    path = h.path("disks", h.unique("disk") + ".qcow2")
    h.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "test-guest.qcow2", "-F", "qcow2", path])
    return path


def base_environment(run_dir, extra):
    environment = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "AUTO_ATTACH": "yes",
                   "KVM_LAUNCH_RUN_DIR": run_dir, "DNS_SERVERS": peer_address(0), "VM_MEMORY": "256M"}
    environment.update(extra)
    return environment


# ---------------------------------------------------------------------------------------------
# 1. Setup latency: kvm-launch start until QEMU starts, against the classic shell script


def setup_once(h, stub, implementation, mode, interfaces, check_restore=False):
    ct, net = make_container(h, interfaces, resolv=False)
    run_dir = h.path("setup", h.unique("run"))
    mark = os.path.join(run_dir, "mark")
    os.makedirs(run_dir, exist_ok=True)
    environment = base_environment(run_dir, {
        "USE_NET_BRIDGES": "yes" if mode == "bridge" else "no", "VM_IMAGE": blank_disk(h), "LAUNCHER": stub,
        "KLB_MARK": mark, "KLB_STUB": "exit"})
    if implementation == "kvm-launch":
        argv = ["ip", "netns", "exec", ct, KVM_LAUNCH]
    elif implementation == "classic":
        argv = ["ip", "netns", "exec", ct, "bash", CLASSIC, mode, os.path.join(run_dir, "classic")]
    elif implementation == "startvm":
        argv = ["ip", "netns", "exec", ct, "bash", startvm_script(h)]
        environment.update(startvm_environment(run_dir, mode))
    else:  # the floor: the same spawn path straight into the stub
        argv = ["ip", "netns", "exec", ct, stub]
    nodes_before = startvm_nodes() if implementation == "startvm" else None
    before = link_state(h, ct) if check_restore else None
    with open(os.path.join(run_dir, "log"), "w") as output:
        start = time.time_ns()
        process = h.spawn(argv, env=environment, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        try:
            status = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            raise BenchFailure(f"{implementation} {mode} with {interfaces} interfaces did not finish in 120 s; see {run_dir}/log")
        end = time.time_ns()
    if nodes_before is not None:
        remove_startvm_nodes(nodes_before)
    stamp = read_mark(mark, time.monotonic() + 1)
    if status != 0 or stamp is None:
        raise BenchFailure(f"{implementation} {mode} with {interfaces} interfaces failed (exit {status}); see {run_dir}/log")
    expected = interfaces if implementation == "kvm-launch" or mode == "macvtap" and implementation in ("classic", "startvm") else 0
    if stamp[2] < expected:
        raise BenchFailure(f"{implementation} {mode}: QEMU got {stamp[2]} descriptors for {interfaces} interfaces")
    if check_restore and implementation == "kvm-launch":
        after = link_state(h, ct)
        if before != after:
            raise BenchFailure(f"kvm-launch did not restore the container ({mode}, {interfaces} interfaces): {before} != {after}")
    h.delete_container(ct, net)
    shutil.rmtree(run_dir, ignore_errors=True)
    return (stamp[0] - start) / 1e6, (end - stamp[0]) / 1e6 if implementation == "kvm-launch" else None


def startvm_script(h):
    """The original `startvm`: its own path, or (no /dev/vhost-net here) a temporary copy with vhost=off."""
    if os.path.exists("/dev/vhost-net"):
        return STARTVM
    path = h.path("tmp", "startvm-vhost-off")
    if not os.path.exists(path):
        with open(STARTVM) as original, open(path, "w") as patched:
            patched.write(original.read().replace("vhost=on", "vhost=off"))
    return path


def startvm_environment(run_dir, mode):
    """startvm's own settings, pointed at this run: dnsmasq's files in the run directory (its defaults are the
    machine's /run and /var/lib/misc), qemu's bridge.conf there too."""
    return {"AUTO_ATTACH": "yes", "USE_NET_BRIDGES": "yes" if mode == "bridge" else "no", "DEBUG": "no",
            "DNSMASQ": shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "QEMU_CONF_DIR": run_dir,
            "DNSMASQ_OPTS": f"--conf-file=/dev/null --user=root --pid-file={run_dir}/dnsmasq.pid --dhcp-leasefile={run_dir}/leases"}


def startvm_nodes():
    """The /dev/macvtap… device nodes startvm makes (in the machine's /dev: it was written for a container's)."""
    return {name for name in os.listdir("/dev") if re.fullmatch(r"macvtap[0-9a-f]{6}", name)}


def remove_startvm_nodes(before):
    for name in startvm_nodes() - before:
        try:
            os.unlink(os.path.join("/dev", name))
        except FileNotFoundError:
            pass


def bench_setup(h, stub, runs, sizes, results, table):
    modes = ["macvtap", "bridge"]
    samples = {}
    floor = []
    anchor = os.path.exists(STARTVM)
    if not anchor:
        log(f"setup latency: no original startvm at {STARTVM} (set STARTVM): measured without it")
    for run in range(runs):
        log(f"setup latency: round {run + 1}/{runs}")
        floor.append(setup_once(h, stub, "floor", "macvtap", 1)[0])
        for interfaces in sizes:
            for mode in modes:
                order = ["kvm-launch", "classic"] + (["startvm"] if anchor else [])
                order = order if run % 2 == 0 else list(reversed(order))
                for implementation in order:
                    setup, teardown = setup_once(h, stub, implementation, mode, interfaces, check_restore=run == 0)
                    samples.setdefault((implementation, mode, interfaces), []).append(setup)
                    if teardown is not None:
                        samples.setdefault(("teardown", mode, interfaces), []).append(teardown)
    section = "setup latency (start → QEMU exec)"
    results["setup"] = {"floor_ms": floor, "samples_ms": {f"{k[0]} {k[1]} {k[2]}": v for k, v in samples.items()}}
    table.add(section, "spawn floor: `ip netns exec` → stub, no launcher", summary(floor), "ms")
    for mode in modes:
        for interfaces in sizes:
            ours = summary(samples[("kvm-launch", mode, interfaces)])
            classic = summary(samples[("classic", mode, interfaces)])
            table.add(section, f"kvm-launch, {mode}, {interfaces} interface{'s' if interfaces > 1 else ''}", ours, "ms", headline=mode == "macvtap", comparison=
                      f"classic script {number(classic['median'])} ms (min {number(classic['min'])}, max {number(classic['max'])}): "
                      f"kvm-launch takes {times(ratio(ours, classic))} of it")
        for interfaces in sizes:
            ours = summary(samples[("kvm-launch", mode, interfaces)])
            original = summary(samples.get(("startvm", mode, interfaces), []))
            if original is None:
                table.note(section, f"original startvm (bbvainnotech/kvm), {mode}, {interfaces} interface{'s' if interfaces > 1 else ''}",
                           f"not measured: no startvm at {STARTVM}")
                continue
            table.add(section, f"original startvm (bbvainnotech/kvm{', vhost=off' if not os.path.exists('/dev/vhost-net') else ''}), "
                      f"{mode}, {interfaces} interface{'s' if interfaces > 1 else ''}", original, "ms", headline=mode == "macvtap", comparison=
                      f"kvm-launch {number(ours['median'])} ms: kvm-launch takes {times(ratio(ours, original))} of it; "
                      f"above the spawn floor {number(ours['median'] - statistics.median(floor))} vs "
                      f"{number(original['median'] - statistics.median(floor))} ms")
        for implementation in ["kvm-launch", "classic"] + (["startvm"] if anchor else []):
            medians = [(n, statistics.median(samples[(implementation, mode, n)])) for n in sizes]
            slope, intercept = least_squares_slope(medians)
            per_run = [least_squares_slope([(n, samples[(implementation, mode, n)][r]) for n in sizes])[0] for r in range(runs)]
            # Linear growth: the cost per interface between the last two sizes matches the one before.
            (n0, t0), (n1, t1), (n2, t2) = medians[0], medians[-2], medians[-1]
            early, late = (t1 - t0) / (n1 - n0), (t2 - t1) / (n2 - n1)
            growth = late / early if early > 0 else None
            results["setup"][f"slope {implementation} {mode}"] = {"ms_per_interface": slope, "intercept_ms": intercept,
                                                                   "per_run": per_run, "growth": growth, "medians": medians}
            verdict = f"fixed part (intercept) {number(intercept)} ms" + ("" if growth is None else (
                f"; cost per interface {n1}→{n2} ÷ {n0}→{n1} = {growth:.2f} "
                f"({'linear' if growth < 1.5 else 'grows faster than linear'})"))
            table.add(section, f"{implementation}, {mode}: cost per extra interface (least-squares slope)",
                      summary(per_run), "ms/interface", verdict)
        for interfaces in [sizes[0], sizes[-1]]:
            table.add("teardown (QEMU exit → container restored, kvm-launch exits)",
                      f"kvm-launch, {mode}, {interfaces} interface{'s' if interfaces > 1 else ''}",
                      summary(samples[("teardown", mode, interfaces)]), "ms", "the classic script restores nothing", headline=True)


# ---------------------------------------------------------------------------------------------
# 2. DHCP: a real client's DISCOVER → accepted ACK, and the server's own work per packet


def dhcp_exchanges(packets, client_mac):
    """Per transaction: DISCOVER out → OFFER in → REQUEST out → ACK in, as seen by the client."""
    by_xid = {}
    for packet in packets:
        if packet["chaddr"] != client_mac:
            continue
        key = (packet["type"], packet["dir"])
        by_xid.setdefault(packet["xid"], {}).setdefault(key, packet["t"])
    exchanges = []
    for steps in by_xid.values():
        try:
            discover, offer = steps[(1, "out")], steps[(2, "in")]
            request, ack = steps[(3, "out")], steps[(5, "in")]
        except KeyError:
            continue
        exchanges.append({"total": (ack - discover) / 1e6, "offer": (offer - discover) / 1e6,
                          "client": (request - offer) / 1e6, "ack": (ack - request) / 1e6})
    return exchanges


def rss_kib(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status in KiB: VmRSS (all resident pages), RssAnon (the
    process's own heap and stacks), RssFile (mapped files, shared with every process mapping them)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def dhcp_server_run(h, stub, server, clients):
    ct, net = make_container(h, 1, resolv=False)
    guest_mac = link_state(h, ct)["eth0"][0]
    run_dir = h.path("dhcp", h.unique("run"))
    os.makedirs(run_dir, exist_ok=True)
    mark = os.path.join(run_dir, "mark")
    environment = base_environment(run_dir, {
        "USE_NET_BRIDGES": "yes", "VM_IMAGE": blank_disk(h), "LAUNCHER": stub, "KLB_MARK": mark, "KLB_STUB": "hold"})
    if server == "kvm-launch":
        argv = ["ip", "netns", "exec", ct, KVM_LAUNCH]
    else:
        argv = ["ip", "netns", "exec", ct, "bash", CLASSIC, "bridge", os.path.join(run_dir, "classic")]
    output = open(os.path.join(run_dir, "log"), "w")
    launcher = h.spawn(argv, env=environment, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    stamp = read_mark(mark, time.monotonic() + 60)
    if stamp is None:
        raise BenchFailure(f"{server} did not start its stub QEMU in 60 s; see {run_dir}/log")
    # The peer becomes the VM: it takes the MAC the server leases to and asks for an address.
    h.run(["ip", "-n", net, "addr", "flush", "dev", "p0"])
    h.run(["ip", "-n", net, "link", "set", "p0", "address", guest_mac])
    # One lease first, not counted: a new bridge port forwards only once the kernel saw its carrier.
    h.run(["ip", "netns", "exec", net, "busybox", "udhcpc", "-i", "p0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", "/bin/true"],
          check=False, timeout=20)
    sniffer, reader = start_sniffer(h, net, "p0")
    accepted = 0
    for _ in range(clients):
        result = h.run(["ip", "netns", "exec", net, "busybox", "udhcpc", "-i", "p0", "-f", "-q", "-n", "-t", "3", "-T", "1",
                        "-s", "/bin/true"], check=False, timeout=20)
        if result.returncode == 0 and f"lease of {guest_address(0)} obtained" in result.stdout + result.stderr:
            accepted += 1
        time.sleep(0.05)
    time.sleep(0.2)
    h.stop(sniffer)
    footprint = None
    if server == "dnsmasq":
        pids = [int(p) for p in h.run(["ip", "netns", "pids", ct]).stdout.split()]
        footprint = [(rss_kib(p), rss_kib(p, "RssAnon")) for p in pids if process_name(p) == "dnsmasq"]
    os.kill(stamp[1], signal.SIGTERM)
    try:
        launcher.wait(timeout=30)
    except subprocess.TimeoutExpired:
        launcher.kill()
    output.close()
    h.delete_container(ct, net)
    exchanges = dhcp_exchanges(sniffed(reader), guest_mac)
    if accepted < clients or len(exchanges) < clients:
        raise BenchFailure(f"{server}: {accepted} of {clients} udhcpc runs got the lease, {len(exchanges)} full exchanges seen; see {run_dir}/log")
    return exchanges, footprint


def bench_dhcp(h, stub, clients, results, table):
    section = "DHCP, busybox udhcpc on the peer"
    log(f"DHCP: {clients} leases from kvm-launch, then from dnsmasq")
    ours, _ = dhcp_server_run(h, stub, "kvm-launch", clients)
    theirs, dnsmasq_rss = dhcp_server_run(h, stub, "dnsmasq", clients)
    results["dhcp"] = {"kvm-launch": ours, "dnsmasq": theirs, "dnsmasq_rss_kib": dnsmasq_rss}
    for key, label in [("total", "DISCOVER → accepted ACK (client's view)"), ("offer", "DISCOVER → OFFER (server turnaround)"),
                       ("ack", "REQUEST → ACK (server turnaround)"), ("client", "OFFER → REQUEST (udhcpc itself)")]:
        a, b = summary([e[key] for e in ours]), summary([e[key] for e in theirs])
        table.add(section, f"kvm-launch: {label}", a, "ms",
                  f"dnsmasq {number(b['median'])} ms (min {number(b['min'])}, max {number(b['max'])}): {times(ratio(a, b))}")
    log("DHCP: the server's own work per packet (DHCPBench)")
    result = subprocess.run([os.path.join(RELEASE, "DHCPBench"), "--json"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise BenchFailure(f"DHCPBench failed: {result.stderr.strip()}")
    figures = json.loads(result.stdout)
    results["dhcp"]["DHCPBench"] = figures
    loopback = figures["baseline: UDP send+recv on loopback"]
    for name in ["process DISCOVER -> OFFER frame", "process REQUEST -> ACK frame", "decode DISCOVER only"]:
        figure = figures[name]
        table.add("DHCP server work per packet (DHCPBench, in process)", name.replace("->", "→"),
                  {"median": figure["median"] / 1000, "min": figure["min"] / 1000, "max": figure["max"] / 1000, "n": figure["runs"]},
                  "µs", f"one UDP datagram sent and received on loopback: {number(loopback['median'] / 1000)} µs "
                        f"({figure['median'] / loopback['median']:.2f}× of it)")
    relay = figures.get("DNS relay open+close, one interface")
    if relay:
        table.add("DNS relay per interface (DHCPBench, in process)", "open and close its sockets",
                  {"median": relay["median"] / 1000, "min": relay["min"] / 1000, "max": relay["max"] / 1000, "n": relay["runs"]},
                  "µs", "budget: 1 ms per interface (issue 11)")


# ---------------------------------------------------------------------------------------------
# 3. Time to a reachable guest, and the guest sessions net/footprint use


def kvm_usable():
    """(usable, reason): what kvm-launch's VM_ACCEL=auto decides, told from the same facts."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm is missing"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as error:
        return False, f"/dev/kvm does not open ({error.strerror})"
    with open("/proc/cpuinfo") as cpuinfo:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    if "vmx" not in flags and "svm" not in flags:
        return False, "/dev/kvm opens but the CPU shows neither vmx nor svm (nested/paravirtual KVM), so kvm-launch picks TCG"
    return True, "KVM usable"


class GuestSession:
    """kvm-launch as PID 1 of a PID namespace in a container namespace, booting the test guest
    (like make demo), with every moment of interest stamped."""

    def __init__(self, h, stub, mode="macvtap", accel="tcg", qemu_args=(), sniff=True, ping=True, extra_env=None):
        self.h = h
        self.ct, self.net = make_container(h, 1)
        self.run_dir = h.path("guest", h.unique("run"))
        os.makedirs(self.run_dir, exist_ok=True)
        self.mark = os.path.join(self.run_dir, "mark")
        h.run(["ip", "netns", "exec", self.net, "sysctl", "-qw", "net.ipv4.neigh.p0.retrans_time_ms=10"])
        self.sniffer = self.sniffer_reader = None
        if sniff:
            self.sniffer, self.sniffer_reader = start_sniffer(h, self.ct)
        self.pinger = self.ping_reader = None
        if ping:
            self.pinger = h.spawn(["ip", "netns", "exec", self.net, "ping", "-D", "-n", "-i", "0.01", "-W", "1", "-w", "300",
                                   guest_address(0)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.ping_reader = LineReader(self.pinger.stdout)
        environment = base_environment(os.path.join(self.run_dir, "run"), {
            "USE_NET_BRIDGES": "yes" if mode == "bridge" else "no", "VM_IMAGE": overlay(h), "VM_ACCEL": accel,
            "LAUNCHER": stub, "KLB_MARK": self.mark, "KLB_STUB": f"exec:{QEMU}", "VM_SHUTDOWN_TIMEOUT": "20"})
        environment.pop("DNS_SERVERS")
        environment.update(extra_env or {})
        self.stderr = open(os.path.join(self.run_dir, "launcher.log"), "w")
        self.qmp_ready = None
        self.start = time.time_ns()
        self.process = h.spawn(["ip", "netns", "exec", self.ct, "unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                                KVM_LAUNCH] + list(qemu_args),
                               env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.console = LineReader(self.process.stdout, keep_to=os.path.join(self.run_dir, "console.log"))
        threading.Thread(target=self._watch_qmp, daemon=True).start()

    def _watch_qmp(self):
        """QEMU's QMP socket is an abstract unix socket of the container's network namespace
        (`@kvm-launch/qmp/pidns-…`): seen in /proc/PID/net/unix of any process in that namespace."""
        deadline = time.monotonic() + 300
        launcher = find_descendant(self.process.pid, "kvm-launch", time.monotonic() + 10)
        if launcher is None:
            return
        table = f"/proc/{launcher}/net/unix"
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with open(table) as sockets:
                    if "@kvm-launch/qmp/" in sockets.read():
                        self.qmp_ready = time.time_ns()
                        return
            except OSError:
                return
            time.sleep(0.001)

    def alive(self):
        return self.process.poll() is None

    def wait_console(self, pattern, seconds):
        found = self.console.wait_for(pattern, time.monotonic() + seconds, self.alive)
        if found is None:
            raise BenchFailure(f"no '{pattern}' on the guest console within {seconds} s; see {self.run_dir}")
        return found[0]

    def first_ping(self, seconds):
        """The first reply after QEMU started: until the attach moved the address, the container
        itself answers the peer (with the same MAC), so earlier replies do not count."""
        deadline = time.monotonic() + seconds
        stamp = read_mark(self.mark, deadline)
        if stamp is None:
            raise BenchFailure(f"QEMU did not start within {seconds} s; see {self.run_dir}")
        pattern = re.compile(r"^\[(\d+)\.(\d+)\].*bytes from")
        index = 0
        with self.ping_reader.condition:
            while time.monotonic() < deadline and self.alive():
                for _, line in self.ping_reader.lines[index:]:
                    index += 1
                    match = pattern.match(line)
                    if match:
                        reply = int(match.group(1)) * 1_000_000_000 + int(match.group(2).ljust(9, "0")[:9])
                        if reply > stamp[0]:
                            return reply
                self.ping_reader.condition.wait(0.2)
        raise BenchFailure(f"the peer got no ping reply from the guest within {seconds} s; see {self.run_dir}")

    def launcher_pid(self):
        return find_descendant(self.process.pid, "kvm-launch", time.monotonic() + 5)

    def timeline(self):
        stamp = read_mark(self.mark, time.monotonic() + 1)
        packets = sniffed(self.sniffer_reader) if self.sniffer_reader else []
        def first(kind, after):
            return min((p["t"] for p in packets if p["type"] == kind and (after is None or p["t"] >= after)), default=None)
        discover = first(1, None)
        offer = first(2, discover)
        request = first(3, offer)
        ack = first(5, request)
        server = (offer - discover) + (ack - request) if None not in (discover, offer, request, ack) else None
        return {"start": self.start, "qemu_exec": stamp[0] if stamp else None, "qmp": self.qmp_ready,
                "discover": discover, "ack": ack, "server": server}

    def stop(self):
        """SIGTERM to kvm-launch, as `docker stop` does; returns the graceful stop time in ms."""
        for process in [self.pinger, self.sniffer]:
            if process:
                self.h.stop(process)
        pid = self.launcher_pid()
        began = time.monotonic()
        elapsed = None
        if pid and self.alive():
            os.kill(pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
                elapsed = (time.monotonic() - began) * 1000
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.h.stop(self.process)
        self.stderr.close()
        self.h.delete_container(self.ct, self.net)
        return elapsed


def bench_boot(h, stub, runs, results, table):
    usable, reason = kvm_usable()
    accelerators = ["tcg"] + (["kvm"] if usable else [])
    results["boot"] = {"kvm": reason}
    section = "time to a reachable guest (test guest, macvtap)"
    for accel in accelerators:
        phases = {k: [] for k in ["launcher", "qemu", "guest", "dhcp", "server", "reply", "total", "ready", "stop"]}
        for run in range(runs):
            log(f"reachable guest: {accel.upper()} run {run + 1}/{runs}")
            session = GuestSession(h, stub, accel=accel)
            try:
                reply = session.first_ping(240)
                ready = session.wait_console("KVMLAUNCH-READY", 120)
                t = session.timeline()
                if None in t.values():
                    raise BenchFailure(f"incomplete timeline {t}; see {session.run_dir}")
                phases["launcher"].append((t["qemu_exec"] - t["start"]) / 1e6)
                phases["qemu"].append((t["qmp"] - t["qemu_exec"]) / 1e6)
                phases["guest"].append((t["discover"] - t["qmp"]) / 1e6)
                phases["dhcp"].append((t["ack"] - t["discover"]) / 1e6)
                phases["server"].append(t["server"] / 1e6)
                phases["reply"].append((reply - t["ack"]) / 1e6)
                phases["total"].append((reply - t["start"]) / 1e6)
                phases["ready"].append((ready - t["start"]) / 1e6)
            finally:
                phases["stop"].append(session.stop())
        results["boot"][accel] = phases
        name = accel.upper()
        total = summary(phases["total"])
        table.add(section, f"{name}: start → first ping reply at the peer", total, "s", scale=1e-3, headline=True)
        for key, label in [("launcher", "launcher: start → QEMU exec"), ("qemu", "QEMU start: exec → QMP socket up"),
                           ("guest", "guest boot: QMP up → first DHCPDISCOVER"), ("dhcp", "DHCP: DISCOVER → ACK sent"),
                           ("server", "of which kvm-launch's DHCP server (DISCOVER→OFFER + REQUEST→ACK)"),
                           ("reply", "address up: ACK → first ping reply")]:
            part = summary(phases[key])
            share = f"{100 * part['median'] / total['median']:.1f} % of the total (medians)" if part and total else ""
            table.add(section, f"{name}: {label}", part, "ms", share)
        table.add(section, f"{name}: start → KVMLAUNCH-READY on the console", summary(phases["ready"]), "s", scale=1e-3)
        table.add(section, f"{name}: graceful stop (SIGTERM → kvm-launch exited, container restored)", summary(phases["stop"]), "s", scale=1e-3)
    if not usable:
        table.note(section, "KVM", f"not measured: {reason}")


# ---------------------------------------------------------------------------------------------
# 4. Throughput and latency guest ↔ peer; 5. footprint while the VM idles


def iperf3(h, namespace, address, port, seconds, reverse, streams=1):
    """Mbit/s received in one iperf3 TCP test. Between tests the iperf3 server re-opens its
    listening socket (slowly, under TCG), so a test that could not start — refused, or reset by
    slirp, which accepts for the guest before the guest listens — is retried a few times."""
    argv = ["ip", "netns", "exec", namespace, "iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-J"]
    if streams > 1:
        argv += ["-P", str(streams)]
    deadline = time.monotonic() + 60
    while True:
        result = h.run(argv + (["-R"] if reverse else []), check=False, timeout=seconds + 30)
        try:
            report = json.loads(result.stdout)
        except ValueError:
            report = {}
        if result.returncode == 0 or report.get("intervals") or time.monotonic() > deadline:
            break
        # "busy": the server still holds the control connection of a test that never started.
        time.sleep(2 if "busy" in report.get("error", "") else 0.25)
    time.sleep(0.5)  # let the server listen again before the next test
    try:
        report = json.loads(result.stdout)
        return report["end"]["sum_received"]["bits_per_second"] / 1e6
    except (ValueError, KeyError) as error:
        raise BenchFailure(f"iperf3 to {address}:{port} failed: {result.stdout[-300:]} {result.stderr[-300:]}") from error


def ping_samples(h, namespace, address, count):
    result = h.run(["ip", "netns", "exec", namespace, "ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", address],
                   check=False, timeout=count + 20)
    samples = [float(m) for m in re.findall(r"time=([\d.]+) ms", result.stdout)]
    if len(samples) < count // 2:
        raise BenchFailure(f"ping {address}: only {len(samples)} of {count} replies")
    return samples


def wait_for_iperf3(h, namespace, address, port, seconds=60):
    """The guest prints KVMLAUNCH-IPERF3 once `iperf3 -s -D` forked; wait until it accepts a test."""
    deadline = time.monotonic() + seconds
    while True:
        result = h.run(["ip", "netns", "exec", namespace, "iperf3", "-c", address, "-p", str(port), "-t", "1", "-J"],
                       check=False, timeout=30)
        if result.returncode == 0:
            time.sleep(0.5)
            return
        if time.monotonic() > deadline:
            raise BenchFailure(f"iperf3 server at {address}:{port} not reachable: {result.stdout[-300:]}")
        time.sleep(0.5)


def measure_link(h, namespace, address, port, runs, seconds, pings):
    wait_for_iperf3(h, namespace, address, port)
    figures = {"peer → guest": [], "guest → peer": []}
    for _ in range(runs):
        figures["peer → guest"].append(iperf3(h, namespace, address, port, seconds, reverse=False))
        figures["guest → peer"].append(iperf3(h, namespace, address, port, seconds, reverse=True))
    figures["rtt"] = ping_samples(h, namespace, address, pings) if pings else []
    return figures


def qemu_vcpu_threads(session):
    """QEMU's TCG vCPU threads ("CPU n/TCG" with multi-threaded TCG, one "ALL CPUs/TCG" without)."""
    launcher = session.launcher_pid()
    qemu = find_descendant(launcher, "qemu-system-x86", time.monotonic() + 5) if launcher else None
    names = []
    for task in os.listdir(f"/proc/{qemu}/task") if qemu else []:
        try:
            with open(f"/proc/{qemu}/task/{task}/comm") as comm:
                names.append(comm.read().strip())
        except FileNotFoundError:
            continue
    return sorted(name for name in names if "TCG" in name or "KVM" in name)


def bench_multiqueue(h, stub, runs, seconds, results, table):
    """VM_NET_QUEUES: TCP both ways with 4 parallel streams, 2 vCPUs, single queue against two
    queues, macvtap, in the same run (sessions interleaved per run)."""
    samples = {}
    threads = {}
    for run in range(runs):
        for queues in ([1, 2] if run % 2 == 0 else [2, 1]):
            log(f"multiqueue: run {run + 1}/{runs}, VM_NET_QUEUES={queues}, VM_CPUS=2, macvtap, 4 streams")
            # `-name debug-threads=on` (merged with kvm-launch's -name) names QEMU's vCPU threads, which shows whether
            # TCG runs multi-threaded: `-accel tcg,thread=multi` cannot be given next to kvm-launch's `-machine accel=`,
            # and multi-threaded TCG is QEMU's default for an x86 guest on an x86 host.
            session = GuestSession(h, stub, mode="macvtap", qemu_args=IPERF3_ARGS + ["-name", "debug-threads=on"], sniff=False, ping=False,
                                   extra_env={"VM_CPUS": "2", "VM_NET_QUEUES": str(queues), "VM_MEMORY": "512M"})
            try:
                session.wait_console("KVMLAUNCH-IPERF3", 300)
                session.wait_console("KVMLAUNCH-READY", 120)
                threads[queues] = qemu_vcpu_threads(session)
                wait_for_iperf3(h, session.net, guest_address(0), 5201)
                for reverse, label in [(False, "peer → guest"), (True, "guest → peer")]:
                    samples.setdefault((queues, label), []).append(
                        iperf3(h, session.net, guest_address(0), 5201, seconds, reverse, streams=4))
            finally:
                session.stop()
    results["multiqueue"] = {"samples_mbit": {f"{q} {label}": v for (q, label), v in samples.items()},
                             "vcpu_threads": {str(q): v for q, v in threads.items()}}
    section = "multiqueue virtio-net (VM_CPUS=2, macvtap, TCG, 4 TCP streams)"
    mttcg = all(len(v) >= 2 for v in threads.values())
    for label in ["peer → guest", "guest → peer"]:
        single, multi = summary(samples.get((1, label), [])), summary(samples.get((2, label), []))
        table.add(section, f"{label}, VM_NET_QUEUES=1", single, "Mbit/s")
        table.add(section, f"{label}, VM_NET_QUEUES=2", multi, "Mbit/s",
                  f"{times(ratio(multi, single))} of single queue; QEMU vCPU threads: {', '.join(threads.get(2, [])) or '?'}"
                  + ("" if mttcg else " (not multi-threaded TCG: one thread runs both vCPUs)"))


def cpu_and_switches(pid):
    """(CPU ns, context switches, threads) summed over every thread of `pid`."""
    cpu = switches = threads = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                cpu += int(schedstat.read().split()[0])
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            threads += 1
        except FileNotFoundError:
            continue
    return cpu, switches, threads


def idle_footprint(session, seconds, window):
    launcher = session.launcher_pid()
    qemu = find_descendant(launcher, "qemu-system-x86", time.monotonic() + 5) if launcher else None
    if not launcher or not qemu:
        raise BenchFailure("cannot find the kvm-launch and QEMU processes to watch")
    rss, anon, cpu, switches, qemu_cpu = [], [], [], [], []
    previous, previous_qemu = cpu_and_switches(launcher), cpu_and_switches(qemu)
    threads = previous[2]
    for _ in range(int(seconds / window)):
        for _ in range(int(window)):
            time.sleep(1)
            rss.append(rss_kib(launcher) / 1024)
            anon.append(rss_kib(launcher, "RssAnon") / 1024)
        current, current_qemu = cpu_and_switches(launcher), cpu_and_switches(qemu)
        cpu.append((current[0] - previous[0]) / 1e6)
        switches.append(current[1] - previous[1])
        qemu_cpu.append((current_qemu[0] - previous_qemu[0]) / 1e6)
        previous, previous_qemu = current, current_qemu
    return {"rss_mib": rss, "anon_mib": anon, "cpu_ms": cpu, "switches": switches, "qemu_cpu_ms": qemu_cpu, "threads": threads,
            "window_s": window}


def bench_net(h, stub, runs, seconds, pings, footprint_seconds, results, table):
    links = {}
    log("throughput: veth ↔ veth between two namespaces (the ceiling)")
    a, b = h.namespace("veth"), h.namespace("veth")
    ip_batch(h, a, [f"link add v0 type veth peer name v1 netns {b}", "addr add 10.99.0.1/24 dev v0", "link set v0 up", "link set lo up"])
    ip_batch(h, b, ["addr add 10.99.0.2/24 dev v1", "link set v1 up", "link set lo up"])
    server = h.spawn(["ip", "netns", "exec", b, "iperf3", "-s", "-p", "5201"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    links["veth"] = measure_link(h, a, "10.99.0.2", 5201, runs, seconds, pings)
    h.stop(server)
    h.delete_namespace(a)
    h.delete_namespace(b)

    for mode in ["macvtap", "bridge"]:
        log(f"throughput: kvm-launch {mode}, test guest under TCG")
        session = GuestSession(h, stub, mode=mode, qemu_args=IPERF3_ARGS, sniff=False, ping=False)
        try:
            session.wait_console("KVMLAUNCH-IPERF3", 240)
            session.wait_console("KVMLAUNCH-READY", 60)
            if mode == "macvtap" and footprint_seconds:
                log(f"footprint: kvm-launch while the VM idles for {footprint_seconds} s")
                time.sleep(2)
                results["footprint"] = idle_footprint(session, footprint_seconds, 10)
            links[mode] = measure_link(h, session.net, guest_address(0), 5201, runs, seconds, pings)
        finally:
            session.stop()

    log("throughput: QEMU user-mode networking (slirp, hostfwd), test guest under TCG, no kvm-launch")
    namespace = h.namespace("user")
    h.run(["ip", "-n", namespace, "link", "set", "lo", "up"])
    run_dir = h.path("guest", h.unique("user"))
    os.makedirs(run_dir, exist_ok=True)
    qemu = h.spawn(["ip", "netns", "exec", namespace, QEMU, "-nodefaults", "-no-user-config", "-machine", "type=q35,accel=tcg",
                    "-m", "256", "-smp", "1", "-cpu", "max", "-drive", f"file={overlay(h)},if=virtio,format=qcow2",
                    "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:15201-:5201", "-device", "virtio-net-pci,netdev=net0",
                    "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console", "-display", "none"] + IPERF3_ARGS,
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    console = LineReader(qemu.stdout, keep_to=os.path.join(run_dir, "console.log"))
    try:
        if console.wait_for("KVMLAUNCH-READY", time.monotonic() + 240, lambda: qemu.poll() is None) is None:
            raise BenchFailure(f"the user-mode guest did not get ready; see {run_dir}/console.log")
        links["user"] = measure_link(h, namespace, "127.0.0.1", 15201, runs, seconds, 0)
    finally:
        h.stop(qemu)
        h.delete_namespace(namespace)

    results["net"] = links
    section = "guest ↔ peer network (TCG guest, iperf3 TCP, ping)"
    labels = {"veth": "veth ↔ veth, two namespaces (ceiling)", "macvtap": "kvm-launch macvtap",
              "bridge": "kvm-launch bridge + tap", "user": "QEMU user-mode (slirp hostfwd), no kvm-launch"}
    for direction in ["peer → guest", "guest → peer"]:
        ceiling = summary(links["veth"][direction])
        for name in ["veth", "macvtap", "bridge", "user"]:
            stats = summary(links[name][direction])
            table.add(section, f"TCP {direction}: {labels[name]}", stats, "Mbit/s",
                      "" if name == "veth" else f"{times(ratio(stats, ceiling))} of veth")
    ceiling = summary(links["veth"]["rtt"])
    for name in ["veth", "macvtap", "bridge"]:
        stats = summary(links[name]["rtt"])
        table.add(section, f"ping RTT: {labels[name]}", stats, "ms", "" if name == "veth" else f"{times(ratio(stats, ceiling))} of veth")
    table.note(section, f"ping RTT: {labels['user']}", "not measurable: slirp carries no ICMP to the guest from outside")


def report_footprint(results, table):
    data = results.get("footprint")
    section = "kvm-launch footprint, VM idle (TCG, macvtap, 1 interface)"
    if not data:
        table.note(section, "footprint", "not measured")
        return
    window = data["window_s"]
    dnsmasq = results.get("dhcp", {}).get("dnsmasq_rss_kib")
    rss, anon = summary(data["rss_mib"]), summary(data["anon_mib"])
    if dnsmasq:
        dnsmasq_rss, dnsmasq_anon = dnsmasq[0][0] / 1024, dnsmasq[0][1] / 1024
        table.add(section, "resident memory (VmRSS), sampled every second", rss, "MiB",
                  f"dnsmasq, the classic DHCP server for one interface: {number(dnsmasq_rss)} MiB ({times(rss['median'] / dnsmasq_rss)})")
        table.add(section, "of which its own (RssAnon: heap, stacks; the rest is the mapped executable and libraries)", anon, "MiB",
                  f"dnsmasq: {number(dnsmasq_anon)} MiB ({times(anon['median'] / dnsmasq_anon)})")
    else:
        table.add(section, "resident memory (VmRSS), sampled every second", rss, "MiB")
        table.add(section, "of which its own (RssAnon: heap, stacks; the rest is the mapped executable and libraries)", anon, "MiB")
    cpu = summary(data["cpu_ms"])
    qemu = summary(data["qemu_cpu_ms"])
    table.add(section, f"CPU time per {window} s window", cpu, "ms",
              f"QEMU in the same windows: {number(qemu['median'])} ms ({100 * cpu['median'] / qemu['median']:.3f} % of it)")
    switches = summary(data["switches"])
    table.add(section, f"context switches per {window} s window, all {data['threads']} threads", switches, "",
              f"{switches['median'] / window:.1f} wake-ups per second (0 would mean nothing wakes up while the VM runs)")


# ---------------------------------------------------------------------------------------------
# 7. VM_BACKEND=qemu against VM_BACKEND=libvirt (issue 13), and the images' sizes


def qemu_running(launcher, disk):
    """Whether the VM's QEMU runs under the launcher: a qemu-system descendant that opens the disk (the direct
    path names it as /dev/fdset/N, libvirt by its path). libvirtd daemonizes QEMU, which is re-parented to
    kvm-launch (the subreaper); the QEMU libvirtd runs first to probe capabilities names no disk."""
    for pid in descendants(launcher):
        if not (process_name(pid) or "").startswith("qemu-system"):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                words = cmdline.read()
        except OSError:
            continue
        if disk.encode() in words or b"/dev/fdset/" in words:
            return True
    return False


def backend_once(h, backend):
    """kvm-launch with VM_BACKEND=`backend` booting the test guest in a fresh container namespace (TCG):
    (start → a QEMU process running the disk, start → first ping reply on the container's address), seconds."""
    ct, net = make_container(h, 1)
    run_dir = h.path("backends", h.unique("run"))
    os.makedirs(run_dir, exist_ok=True)
    disk = overlay(h)
    environment = base_environment(os.path.join(run_dir, "run"), {"VM_ACCEL": "tcg", "VM_IMAGE": disk, "VM_BACKEND": backend})
    environment.pop("DNS_SERVERS")
    with open(os.path.join(run_dir, "launcher.log"), "w") as output:
        start = time.monotonic()
        process = h.spawn(["ip", "netns", "exec", ct, KVM_LAUNCH], env=environment, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        qemu = ping = None
        deadline = start + 300
        try:
            while time.monotonic() < deadline and process.poll() is None:
                if qemu is None and qemu_running(process.pid, disk):
                    qemu = time.monotonic() - start
                # The container's own address answers until kvm-launch moves it: count a reply only once QEMU runs.
                if qemu is not None and h.run(["ip", "netns", "exec", net, "ping", "-c", "1", "-W", "0.1", "-q", guest_address(0)],
                                              check=False).returncode == 0:
                    ping = time.monotonic() - start
                    break
                if qemu is None:
                    time.sleep(0.01)
        finally:
            h.stop(process, timeout=60)
    h.delete_container(ct, net)
    if qemu is None or ping is None:
        raise BenchFailure(f"VM_BACKEND={backend}: {'no QEMU process' if qemu is None else 'no ping reply'} within 300 s; see {run_dir}/launcher.log")
    return qemu, ping


def bench_backends(h, runs, results, table):
    section = "VM_BACKEND=qemu and VM_BACKEND=libvirt (test guest, TCG, interleaved in the same run)"
    samples = {"qemu": {"qemu": [], "ping": []}, "libvirt": {"qemu": [], "ping": []}}
    for run in range(runs):
        for backend in (["qemu", "libvirt"] if run % 2 == 0 else ["libvirt", "qemu"]):
            log(f"backends: {backend} run {run + 1}/{runs}")
            qemu, ping = backend_once(h, backend)
            samples[backend]["qemu"].append(qemu)
            samples[backend]["ping"].append(ping)
    results["backends"] = samples
    for key, label in [("qemu", "start → QEMU process running"), ("ping", "start → first ping reply from the guest")]:
        direct, libvirt = summary(samples["qemu"][key]), summary(samples["libvirt"][key])
        table.add(section, f"libvirt: {label}", libvirt, "s", headline=True, comparison=
                  f"qemu (direct) {number(direct['median'])} s (min {number(direct['min'])}, max {number(direct['max'])}): "
                  f"libvirt adds {number(libvirt['median'] - direct['median'])} s")
        table.add(section, f"qemu (direct): {label}", direct, "s")


def bench_image(results, table):
    section = "container images (make image: podman, uncompressed)"
    script = os.path.join(ROOT, "docker", "image-size.sh")
    tags = [os.environ.get("IMAGE", "localhost/kvm-launch:latest"), os.environ.get("LIBVIRT_IMAGE", "localhost/kvm-launch:libvirt")]
    result = subprocess.run([script, "--json"] + tags, capture_output=True, text=True, timeout=120)
    sizes = json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else {}
    results["image"] = sizes
    if len(sizes) < 2:
        raise BenchFailure(f"the images are missing (make image builds both): {result.stderr.strip()[:200]}")
    (default, parts), (_, libvirt) = list(sizes.items())[:2]
    mb = lambda value: {"median": value / 1e6, "min": value / 1e6, "max": value / 1e6, "n": 1}
    table.add(section, "default image (VM_BACKEND=qemu): total", mb(parts["total"]), "MB", digits=1, headline=True, comparison=
              f"target ≤ 150 MB (issue 15); 290 MB on Debian's base (commit 0d0e5d5), 385 MB with libvirt in every image")
    for part, value in parts.items():
        if part != "total" and value >= 100_000:
            table.add(section, f"default image: {part}", mb(value), "MB")
    table.add(section, "libvirt image (kvm-launch:libvirt): total", mb(libvirt["total"]), "MB", digits=1, headline=True, comparison=
              f"the default image + {number((libvirt['total'] - parts['total']) / 1e6)} MB")
    for part, value in libvirt.items():
        if part != "total" and value >= 100_000 and parts.get(part) != value:
            table.add(section, f"libvirt image: {part}", mb(value), "MB")


def exec_costs(argv, count):
    """Means over `count` runs of argv (stdout and stderr discarded): wall time from spawn to reaped, CPU time
    (user + system, the kernel's task clock as wait4 reports it) and minor page faults, per run."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        wall = cpu = faults = 0.0
        for _ in range(count):
            start = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, {}, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                                                (os.POSIX_SPAWN_DUP2, devnull, 2)])
            _, _, usage = os.wait4(pid, 0)
            wall += time.perf_counter() - start
            cpu += usage.ru_utime + usage.ru_stime
            faults += usage.ru_minflt
        return wall / count, cpu / count, faults / count
    finally:
        os.close(devnull)


def bench_startup(rounds, results, table):
    """Issue 15's start-up target: `kvm-launch --version` against a C program's floor and another static Swift
    program (the config agent: FoundationEssentials, swift-nio, BoringSSL), interleaved round by round."""
    log("start-up: kvm-launch --version, /bin/true, kvm-launch-config --help")
    programs = {"kvm-launch --version": [KVM_LAUNCH, "--version"],
                "/bin/true (the floor of any exec)": ["/bin/true"],
                "kvm-launch-config --help (static Swift with swift-nio and BoringSSL)": [os.path.join(RELEASE, "kvm-launch-config"), "--help"]}
    samples = {name: {"wall": [], "cpu": [], "faults": []} for name in programs}
    for _ in range(rounds):
        for name, argv in programs.items():
            wall, cpu, faults = exec_costs(argv, 50)
            samples[name]["wall"].append(wall * 1000)
            samples[name]["cpu"].append(cpu * 1000)
            samples[name]["faults"].append(faults)
    results["startup"] = samples
    section = "start-up (issue 15), each figure the mean of 50 runs, rounds interleaved"
    launcher, floor, foundation = (samples[name] for name in programs)
    med = lambda values: statistics.median(values)
    table.add(section, "kvm-launch --version: CPU time (user + system)", summary(launcher["cpu"]), "ms", headline=True, comparison=
              f"target ≤ 2 ms; /bin/true {number(med(floor['cpu']))} ms, kvm-launch-config --help "
              f"{number(med(foundation['cpu']))} ms")
    table.add(section, "kvm-launch --version: spawn → reaped", summary(launcher["wall"]), "ms", comparison=
              f"/bin/true {number(med(floor['wall']))} ms, kvm-launch-config --help {number(med(foundation['wall']))} ms")
    table.add(section, "kvm-launch --version: minor page faults", summary(launcher["faults"]), "", digits=0, comparison=
              f"/bin/true {number(med(floor['faults']), 0)}, kvm-launch-config --help {number(med(foundation['faults']), 0)}")
    table.note(section, "executable sizes", f"kvm-launch {number(os.path.getsize(KVM_LAUNCH) / 1e6, 1)} MB, kvm-launch-config "
               f"{number(os.path.getsize(os.path.join(RELEASE, 'kvm-launch-config')) / 1e6, 1)} MB (release, static, unstripped; "
               f"the image ships them stripped)")


# ---------------------------------------------------------------------------------------------
# 6. Config agent (bench/ConfigAgentBench)


def bench_config(runs, results, table):
    log("config agent: 10,000 keys against a real etcd (ConfigAgentBench)")
    result = subprocess.run([os.path.join(RELEASE, "ConfigAgentBench"), "--keys", "10000", "--runs", str(runs), "--baseline-runs", "3"],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise BenchFailure(f"ConfigAgentBench failed: {result.stderr.strip()}")
    results["config"] = result.stdout
    figures = {}
    for line in result.stdout.splitlines():
        match = re.match(r"(.*?)\s+runs=(\d+)\s+median ([\d.]+)s\s+min ([\d.]+)s\s+max ([\d.]+)s", line)
        if match:
            figures[match.group(1).strip()] = {"median": float(match.group(3)), "min": float(match.group(4)),
                                               "max": float(match.group(5)), "n": int(match.group(2))}
    load = figures.get("load (one transaction)")
    baseline = figures.get("baseline (delete + PUT per key)")
    render = next((v for k, v in figures.items() if k.startswith("read + render")), None)
    render_name = next((k for k in figures if k.startswith("read + render")), "read + render")
    section = "config agent, 10,000 keys, real etcd"
    table.add(section, "load: the whole tree in one transaction", load, "s", headline=True, comparison=
              f"one PUT per key: {number(baseline['median'])} s; load takes {times(ratio(load, baseline))} of it" if baseline else "")
    table.add(section, render_name, render, "s")


# ---------------------------------------------------------------------------------------------


def machine():
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown")
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) // 1024
    usable, reason = kvm_usable()
    qemu = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    libraries = subprocess.run(["ldd", KVM_LAUNCH], capture_output=True, text=True).stdout
    linkage = "dynamic" if "libswiftCore" in libraries else "static"
    return {"cpus": os.cpu_count(), "cpu": model, "memory_mib": memory, "kernel": platform.release(),
            "accelerator": "KVM" if usable else f"TCG ({reason})", "vhost_net": os.path.exists("/dev/vhost-net"),
            "qemu": qemu, "commit": commit, "stdlib": linkage, "load": os.getloadavg()[0], "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ---------------------------------------------------------------------------------------------
# compute (optional, --only compute): container start -> nova-compute's AMQP connection open


COMPUTE_IMAGE = os.path.join(ROOT, "image", "out", "compute-node.qcow2")
RABBIT_BIN = "/usr/lib/rabbitmq/bin"


def bench_compute(h, results, table):
    """The compute node image (image/compute) booted by kvm-launch from etcd (user data made by
    `kvm-launch config user-data`), a real etcd and RabbitMQ in the network namespace: the time from the
    launcher's start to nova-compute's AMQP connection as RabbitMQ lists it, with the console's milestones
    (first kernel line, cloud-init's files written; the rest is the services' start, nova-compute's mostly) to say
    what dominates. One run, under TCG (the
    figure is for this project's machine, where KVM cannot run the guest)."""
    agent = os.path.join(RELEASE, "kvm-launch-config")
    for path in [COMPUTE_IMAGE, agent, "/usr/bin/etcd", f"{RABBIT_BIN}/rabbitmq-server"]:
        if not os.path.exists(path):
            raise BenchFailure(f"{path} is missing (make compute-image; Debian's etcd-server and rabbitmq-server)")
    ct, net = make_container(h, 1)
    vm, node = guest_address(0), peer_address(0)
    work = os.path.dirname(h.path("compute", "x"))
    h.spawn(["ip", "netns", "exec", net, "etcd", "--name", "b", "--data-dir", f"{work}/etcd",
             "--listen-client-urls", f"http://{node}:2379", "--advertise-client-urls", f"http://{node}:2379",
             "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
             "--initial-cluster", "b=http://127.0.0.1:2380"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rabbit = {**os.environ, "HOME": work, "RABBITMQ_NODENAME": f"{h.tag}@localhost", "RABBITMQ_MNESIA_BASE": f"{work}/mnesia",
              "RABBITMQ_LOG_BASE": f"{work}/log", "RABBITMQ_LOGS": "-", "RABBITMQ_CONF_ENV_FILE": f"{work}/env.conf",
              "RABBITMQ_CONFIG_FILE": f"{work}/rabbitmq.conf", "RABBITMQ_ENABLED_PLUGINS_FILE": f"{work}/plugins",
              "RABBITMQ_PID_FILE": f"{work}/beam.pid", "ERL_EPMD_ADDRESS": "127.0.0.1"}
    for name in ["env.conf", "rabbitmq.conf"]:
        open(f"{work}/{name}", "w").close()
    h.spawn(["ip", "netns", "exec", net, "epmd"], env=rabbit, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h.spawn(["ip", "netns", "exec", net, f"{RABBIT_BIN}/rabbitmq-server"], env=rabbit,
            stdout=open(f"{work}/rabbitmq.log", "w"), stderr=subprocess.STDOUT)

    def ctl(*argv, timeout=120, check=True):
        return h.run(["ip", "netns", "exec", net, f"{RABBIT_BIN}/rabbitmqctl", "-n", rabbit["RABBITMQ_NODENAME"], *argv],
                     timeout=timeout, env=rabbit, check=check)

    password = f"bench{os.getpid()}"
    data = f"{work}/config"
    reference = os.path.join(ROOT, "Tests", "ConfigAgentTests", "Fixtures", "reference")
    for part in ["general", "nova"]:
        shutil.copytree(os.path.join(reference, part), f"{data}/{part}")
    os.makedirs(f"{data}/zz-bench")
    with open(f"{data}/zz-bench/overrides", "w") as overrides:
        url = "rabbit://$RABBIT_USERID:$RABBIT_PASSWORD@$RABBIT_HOSTNAME:5672/"
        overrides.write(f"general/RABBIT_HOSTNAME={node}\ngeneral/RABBIT_PASSWORD={password}\ngeneral/SELECTED_NETWORK={vm}/24\n"
                        "compute/nova/nova.conf/DEFAULT/my_ip=$MY_IP\ncompute/neutron/openvswitch_agent.ini/ovs/local_ip=$MY_IP\n"
                        f"compute/nova/nova.conf/DEFAULT/transport_url={url}\ncompute/neutron/neutron.conf/DEFAULT/transport_url={url}\n"
                        "compute/nova/nova.conf/libvirt/virt_type=qemu\ncompute/nova/nova.conf/libvirt/cpu_mode=none\n"
                        "compute/nova/nova.conf/libvirt/connection_uri=qemu:///system\n")
    etcd_env = {"PATH": os.environ["PATH"], "ETCD_ENDPOINTS": f"http://{node}:2379", "ETCD_TIMEOUT": "5"}
    for attempt in range(30):
        if h.run(["ip", "netns", "exec", net, agent, "load", "--legacy", data], env=etcd_env, check=attempt == 29).returncode == 0:
            break
        time.sleep(1)
    for attempt in range(60):  # the node answers only once it is registered with epmd
        if ctl("await_startup", "--timeout", "60", timeout=90, check=attempt == 59).returncode == 0:
            break
        time.sleep(2)
    ctl("add_user", "rabbit", password)
    ctl("set_permissions", "-p", "/", "rabbit", ".*", ".*", ".*")
    h.run(["ip", "netns", "exec", ct, agent, "user-data", "--output", f"{work}/user-data",
           "compute/nova/nova.conf=/etc/nova/etcd/nova.conf", "compute/neutron/neutron.conf=/etc/neutron/etcd/neutron.conf",
           "compute/neutron/openvswitch_agent.ini=/etc/neutron/etcd/openvswitch_agent.ini"], env={**etcd_env, "MY_IP": vm})
    disks = os.path.dirname(h.path("disks", "compute", "x"))
    shutil.copy(COMPUTE_IMAGE, f"{disks}/compute-node.qcow2")
    h.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "compute-node.qcow2", "-F", "qcow2", f"{disks}/disk.qcow2"])

    env = base_environment(h.path("compute", "run"), {
        "AUTO_ATTACH": "yes", "VM_IMAGE": f"{disks}/disk.qcow2", "VM_ACCEL": "tcg", "VM_MEMORY": "2048M",
        "VM_CPUS": "2", "VM_HOSTNAME": "compute-bench", "VM_SHUTDOWN_TIMEOUT": "240", "CLOUD_INIT_USER_DATA": f"{work}/user-data",
        "ETCD_ENDPOINTS": f"http://{node}:2379"})
    began = time.time_ns()
    launcher = h.spawn(["ip", "netns", "exec", ct, KVM_LAUNCH], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=open(f"{work}/kvm-launch.log", "w"))
    console = LineReader(launcher.stdout, keep_to=f"{work}/console.log")
    connected = None
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline and launcher.poll() is None:
        listed = ctl("list_connections", "--no-table-headers", "--silent", "client_properties").stdout
        if "nova-compute" in listed:
            connected = time.time_ns()
            break
        time.sleep(2)
    exited_early = launcher.poll()
    milestones = {}
    # systemd's status lines are coloured and cut ("cloud-init.servic…"); nova-compute's own start is not on the console.
    for name, pattern in [("first kernel line", r"Linux version"), ("cloud-init wrote the files", r"Finished.*cloud-init\.servic")]:
        found = console.wait_for(pattern, time.monotonic())
        if found:
            milestones[name] = (found[0] - began) / 1e9
    launcher.send_signal(signal.SIGTERM)
    try:
        status = launcher.wait(timeout=420)
    except subprocess.TimeoutExpired:
        status = None
    results["compute"] = {"amqp_s": None if connected is None else (connected - began) / 1e9, "milestones": milestones,
                          "exit": status, "accelerator": env["VM_ACCEL"]}
    if connected is None:
        why = "within 30 min" if exited_early is None else f"before kvm-launch exited (status {exited_early})"
        raise BenchFailure(f"no AMQP connection from nova-compute {why} (console: {work}/console.log, {work}/kvm-launch.log)")
    seconds = (connected - began) / 1e9
    table.add("compute", f"container start → nova-compute's AMQP connection open ({env['VM_ACCEL']})",
              summary([seconds]), "s", ", ".join(f"{k} at {v:.0f} s" for k, v in milestones.items()), digits=0)
    h.delete_container(ct, net)


def main():
    parser = argparse.ArgumentParser(description="kvm-launch benchmarks (see bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter waits: to check the harness, not for numbers")
    parser.add_argument("--only", default="startup,setup,dhcp,boot,net,footprint,config,multiqueue,backends,image", help="comma-separated sections")
    parser.add_argument("--runs", type=int, help="runs per point (default 5, --quick 2)")
    parser.add_argument("--sizes", help="interface counts of the setup section, comma-separated (default 1,4,16,64: issue 15's sizes, 64 the most NICs kvm-launch gives a VM; --quick 1,4,16)")
    parser.add_argument("--stub", default=os.path.join(BENCH, "results", "bin", "qemu-stub"), help="the compiled qemu-stub")
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: run as root (network namespaces, macvtap, QEMU)", file=sys.stderr)
        return 1
    sections = set(options.only.split(","))
    runs = options.runs or (2 if options.quick else 5)
    for path in [KVM_LAUNCH, GUEST, options.stub]:
        if not os.path.exists(path):
            print(f"bench: {path} is missing; run `make bench` (it builds everything first)", file=sys.stderr)
            return 1

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    directory = os.path.join(BENCH, "results", stamp)
    os.makedirs(directory, exist_ok=True)
    h = Harness(directory)
    results = {"machine": machine(), "runs": runs}
    table = Table()

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    began = time.monotonic()
    failures = []

    def attempt(name, body):
        """Runs one section; a failure is reported in the table and the other sections still run."""
        try:
            body()
        except BenchFailure as failure:
            log(f"{name} failed: {failure}")
            failures.append(name)
            table.note(name, "not measured", f"the benchmark failed: {failure}")

    try:
        if "startup" in sections:
            attempt("startup", lambda: bench_startup(5 if not options.quick else 2, results, table))
        if "setup" in sections:
            sizes = [int(n) for n in options.sizes.split(",")] if options.sizes else [1, 4, 16, 64] if not options.quick else [1, 4, 16]
            attempt("setup", lambda: bench_setup(h, options.stub, runs, sizes, results, table))
        if "dhcp" in sections:
            attempt("dhcp", lambda: bench_dhcp(h, options.stub, 20 if not options.quick else 3, results, table))
        if "boot" in sections:
            attempt("boot", lambda: bench_boot(h, options.stub, runs, results, table))
        if "net" in sections or "footprint" in sections:
            attempt("net", lambda: bench_net(h, options.stub, 3 if not options.quick else 1, 2, 50,
                                             (60 if not options.quick else 20) if "footprint" in sections else 0, results, table))
            report_footprint(results, table)
        if "multiqueue" in sections:
            attempt("multiqueue", lambda: bench_multiqueue(h, options.stub, 2 if not options.quick else 1, 5 if not options.quick else 2,
                                                           results, table))
        if "config" in sections:
            attempt("config", lambda: bench_config(runs, results, table))
        if "backends" in sections:
            attempt("backends", lambda: bench_backends(h, 3 if not options.quick else 1, results, table))
        if "image" in sections:
            attempt("image", lambda: bench_image(results, table))
        if "compute" in sections:  # optional, not in the default list: minutes under TCG
            attempt("compute", lambda: bench_compute(h, results, table))
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        h.cleanup()
        shutil.rmtree(os.path.join(directory, "tmp"), ignore_errors=True)
        shutil.rmtree(os.path.join(directory, "disks"), ignore_errors=True)
        with open(os.path.join(directory, "raw.json"), "w") as raw:
            json.dump(results, raw, indent=1, default=str)

    m = results["machine"]
    header = (f"Machine: {m['cpus']} × {m['cpu']}, {m['memory_mib']} MiB, Linux {m['kernel']}, guest acceleration {m['accelerator']}, "
              f"vhost-net {'available' if m['vhost_net'] else 'absent'}, {m['qemu']}; kvm-launch {m['commit']} (release build, {m['stdlib']} Swift standard library), {m['date']}. "
              f"Load average (1 min) {m['load']:.1f} before and {os.getloadavg()[0]:.1f} after: the machine is shared. "
              f"`make bench` took {(time.monotonic() - began) / 60:.1f} min for the measurements.")
    text = header + "\n\n" + table.markdown() + "\n"
    with open(os.path.join(directory, "table.md"), "w") as output:
        output.write(text)
    # The README's table (bench/update-readme.py puts it there): the headline rows.
    with open(os.path.join(directory, "readme.md"), "w") as output:
        output.write(header + "\n\n" + table.summary() + "\n")
    shutil.copy(os.path.join(directory, "readme.md"), os.path.join(BENCH, "results", "latest-readme.md"))
    shutil.copy(os.path.join(directory, "table.md"), os.path.join(BENCH, "results", "latest.md"))
    print(text)
    log(f"raw samples and logs: {directory}")
    if failures:
        log(f"sections that could not be measured: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailure as failure:
        print(f"bench: {failure}", file=sys.stderr)
        sys.exit(1)
