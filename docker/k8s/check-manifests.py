"""Checks of docker/k8s/*.yaml that the API schemas cannot make: the launcher container is set up the way
kvm-launch needs (privileged, /dev/kvm, the disk at /image, probes on `kvm-launch status`), the grace period
covers kvm-launch's graceful shutdown, every reference (volume, ConfigMap, Service) resolves inside the
manifest, files named by ETCD_CACERT/ETCD_CERT/ETCD_KEY are mounted, what `kvm-launch config render`
writes lands on a volume the launcher container shares, and the user data `kvm-launch config user-data` writes is
on such a volume and named by the launcher's CLOUD_INIT_USER_DATA.

Usage: python3 check-manifests.py MANIFEST...    Exit status 1 when any check fails.
"""

import re
import sys

import yaml

QEMU_QUIT_SECONDS = 5          # kvm-launch's QMP quit after the power-off timeout
DEFAULT_SHUTDOWN_TIMEOUT = 20  # VM_SHUTDOWN_TIMEOUT's default
DEFAULT_GRACE_PERIOD = 30      # Kubernetes' default terminationGracePeriodSeconds
STATUS_COMMAND = ["kvm-launch", "status"]
BOOLEANS = {"yes", "y", "true", "1", "on", "no", "n", "false", "0", "off"}
WORKLOADS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"}


class Report:
    def __init__(self, path):
        self.path = path
        self.problems = []
        self.checks = 0

    def expect(self, condition, where, problem):
        self.checks += 1
        if not condition:
            self.problems.append(f"{self.path}: {where}: {problem}")


def pod_templates(documents):
    for doc in documents:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name", "?")
        if kind == "Pod":
            yield doc, f"Pod/{name}", doc.get("spec", {})
        elif kind in WORKLOADS:
            yield doc, f"{kind}/{name}", doc["spec"]["template"].get("spec", {})


def is_launcher(container):
    """A container that runs the VM: the kvm-launch image with its entrypoint and no subcommand."""
    if "kvm-launch" not in container.get("image", "") or container.get("command"):
        return False
    args = container.get("args", [])
    return not (args and args[0] in ("config", "status"))


def env_value(container, name, config_maps):
    for item in container.get("env", []):
        if item["name"] == name:
            return item.get("value")
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref and name in config_maps.get(ref["name"], {}):
            return config_maps[ref["name"]][name]
    return None


def mounted(container, path):
    """The volumeMount that holds path, or None."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") or "/"
        if path == root or path.startswith(root + "/"):
            if best is None or len(root) > len(best["mountPath"]):
                best = mount
    return best


def check_file(path):
    report = Report(path)
    with open(path) as stream:
        documents = [doc for doc in yaml.safe_load_all(stream) if doc]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in documents if d.get("kind") == "ConfigMap"}
    services = {d["metadata"]["name"] for d in documents if d.get("kind") == "Service"}

    for workload, where, spec in pod_templates(documents):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in workload.get("spec", {}).get("volumeClaimTemplates", [])}
        if workload.get("kind") == "StatefulSet":
            name = workload["spec"].get("serviceName")
            report.expect(name in services, where, f"serviceName {name!r} is not a Service in this file")
        containers = spec.get("containers", [])
        every = spec.get("initContainers", []) + containers
        launchers = [c for c in containers if is_launcher(c)]
        report.expect(launchers, where, "no container runs the kvm-launch entrypoint")

        for container in every:
            cwhere = f"{where} container {container['name']}"
            for mount in container.get("volumeMounts", []):
                report.expect(mount["name"] in volumes or mount["name"] in claims, cwhere,
                              f"volumeMount {mount['name']!r} names no volume or volumeClaimTemplate")
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef")
                if ref and not ref.get("optional"):
                    report.expect(ref["name"] in config_maps, cwhere, f"ConfigMap {ref['name']!r} is not in this file")
            for variable in ("ETCD_CACERT", "ETCD_CERT", "ETCD_KEY"):
                file = env_value(container, variable, config_maps)
                if file:
                    report.expect(mounted(container, file) is not None, cwhere,
                                  f"{variable}={file} but no volume is mounted there")
            script = " ".join(container.get("command", []) + container.get("args", []))
            for directory in re.findall(r"kvm-launch config render [^\n]*?--into\s+(\S+)", script):
                mount = mounted(container, directory)
                report.expect(mount is not None, cwhere, f"renders into {directory}, which is on no volume")
                if mount:
                    report.expect(all(any(m["name"] == mount["name"] for m in l.get("volumeMounts", []))
                                      for l in launchers), cwhere,
                                  f"renders into volume {mount['name']!r}, which the launcher container does not mount")
            for output in re.findall(r"kvm-launch config user-data [^\n]*?--output\s+(\S+)", script):
                mount = mounted(container, output)
                report.expect(mount is not None, cwhere, f"writes user data to {output}, which is on no volume")
                report.expect(all(env_value(l, "CLOUD_INIT_USER_DATA", config_maps) == output and mounted(l, output) is not None
                                  and mounted(l, output)["name"] == (mount or {}).get("name") for l in launchers), cwhere,
                              f"writes user data to {output}, but the launcher container's CLOUD_INIT_USER_DATA does not name it on the same volume")

        for container in launchers:
            cwhere = f"{where} container {container['name']}"
            report.expect(container.get("securityContext", {}).get("privileged") is True, cwhere,
                          "must be privileged (netlink changes to the pod's interfaces, macvtap, /dev/kvm)")
            auto = env_value(container, "AUTO_ATTACH", config_maps)
            report.expect(auto is not None and auto.strip().lower() in BOOLEANS, cwhere,
                          f"AUTO_ATTACH must be set to yes or no (is {auto!r})")
            for probe in ("readinessProbe", "livenessProbe"):
                command = container.get(probe, {}).get("exec", {}).get("command")
                report.expect(command == STATUS_COMMAND, cwhere, f"{probe} must exec {STATUS_COMMAND} (is {command})")
            if "startupProbe" in container:
                command = container["startupProbe"].get("exec", {}).get("command")
                report.expect(command == STATUS_COMMAND, cwhere, f"startupProbe must exec {STATUS_COMMAND} (is {command})")
            timeout = int(env_value(container, "VM_SHUTDOWN_TIMEOUT", config_maps) or DEFAULT_SHUTDOWN_TIMEOUT)
            grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD)
            report.expect(grace >= timeout + QEMU_QUIT_SECONDS, where,
                          f"terminationGracePeriodSeconds {grace} < VM_SHUTDOWN_TIMEOUT {timeout} + {QEMU_QUIT_SECONDS} s "
                          "for QEMU to quit: the kubelet would SIGKILL the VM")
            disk = mounted(container, "/image/image.qcow2")
            report.expect(disk is not None and (disk["name"] in claims or "persistentVolumeClaim" in volumes.get(disk["name"], {})),
                          cwhere, "/image must be a persistent volume (volumeClaimTemplates or persistentVolumeClaim)")
            kvm = mounted(container, "/dev/kvm")
            report.expect(kvm is not None and volumes.get(kvm["name"], {}).get("hostPath", {}).get("path") == "/dev/kvm",
                          cwhere, "/dev/kvm must be mounted from the node (hostPath /dev/kvm)")
    return report


def main(paths):
    failed = False
    for path in paths:
        report = check_file(path)
        for problem in report.problems:
            print(problem)
        failed = failed or bool(report.problems)
        print(f"check-manifests: {path}: {report.checks - len(report.problems)}/{report.checks} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
